package arborhttp

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/arborgo/arbor"
)

// webviewHTML is the page ViewHandler serves: HTML, CSS and JavaScript in
// one file, with no external assets.
//
//go:embed webview.html
var webviewHTML []byte

// webviewCSP is the page's Content-Security-Policy: its one inline script and
// its one inline style sheet are allowed by their hashes, so that markup
// that found its way into the page could run nothing; the script may fetch
// from the page's own origin only.
var webviewCSP = "default-src 'none'; " +
	"script-src " + inlineHash(webviewHTML, "<script>", "</script>") + "; " +
	"style-src " + inlineHash(webviewHTML, "<style>", "</style>") + "; " +
	"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// inlineHash returns the CSP source ('sha256-...') of the text between the
// first open and the next end in page.
func inlineHash(page []byte, open, end string) string {
	_, after, ok := bytes.Cut(page, []byte(open))
	body, _, ok2 := bytes.Cut(after, []byte(end))
	if !ok || !ok2 {
		panic("arborhttp: webview.html lacks " + open)
	}
	sum := sha256.Sum256(body)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// viewHead is the body of tree.json before its tree:
// {"time": ..., "live": ..., "ready": ..., "tree": <the tree>}.
type viewHead struct {
	Time  time.Time `json:"time"`
	Live  bool      `json:"live"`
	Ready bool      `json:"ready"`
}

// viewParts is tree.json in parts, written one after the other, so that the
// tree's JSON, the bulk of it, is never copied.
type viewParts [3][]byte

// ViewHandler returns an http.Handler that serves a live view of the tree
// under s, for people: a page that shows every supervisor and child with its
// state (coloured), how long it has been in it, its restarts, its next start
// when it waits in backoff, its counters and its last error, under a header
// saying whether the tree is live and ready. The page refreshes itself every
// second and needs nothing but the handler: no external scripts, styles or
// fonts.
//
// The handler serves, relative to where it is mounted:
//
//   - / and /index.html: the page;
//   - /tree.json: {"time": now, "live": ..., "ready": ..., "tree": ...}, the
//     tree as arbor.Node.MarshalJSON renders it and the answers of
//     arbor.Supervisor.Health, which the page polls;
//   - /tree.txt: the tree as arbor.Node.String renders it, for curl.
//
// It answers 404 to other paths and 405 to methods other than GET and HEAD.
// Mount it under a path ending in a slash, with that path stripped, since
// the page fetches tree.json relative to its own URL:
//
//	mux.Handle("/arbor/", http.StripPrefix("/arbor", arborhttp.ViewHandler(root)))
//
// and open /arbor/. The view shows workers' errors, which may hold whatever
// a worker put in them: it is an operator's tool, so do not expose it to
// untrusted clients (serve it on an internal port, or behind
// authentication). Each request asks every supervisor in turn, as
// arbor.Supervisor.Tree and Health do; if the request's context ends first,
// the silent supervisors are shown without children.
func ViewHandler(s *arbor.Supervisor) http.Handler {
	var shared walks
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var serve func(w http.ResponseWriter, r *http.Request)
		switch r.URL.Path {
		case "/", "/index.html":
			serve = servePage
		case "/tree.json":
			serve = func(w http.ResponseWriter, r *http.Request) { serveJSON(s, &shared, w, r) }
		case "/tree.txt":
			serve = func(w http.ResponseWriter, r *http.Request) { serveText(s, &shared, w, r) }
		default:
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		serve(w, r)
	})
}

func servePage(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", webviewCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Length", strconv.Itoa(len(webviewHTML)))
	_, _ = w.Write(webviewHTML)
}

// snapshot returns the tree under s and its health, for tree.json's tree
// and its live and ready header, from one walk of the tree, so that the two
// always agree.
func snapshot(ctx context.Context, s *arbor.Supervisor) (*arbor.Node, arbor.Health) {
	tree := s.Tree(ctx)
	return tree, tree.Health()
}

func serveJSON(s *arbor.Supervisor, shared *walks, w http.ResponseWriter, r *http.Request) {
	v, ok := shared.do(r.Context(), "tree.json", func(ctx context.Context) any {
		tree, health := snapshot(ctx, s)
		head, err := json.Marshal(viewHead{Time: time.Now(), Live: health.Live, Ready: health.Ready})
		if err != nil {
			return err
		}
		body, err := tree.MarshalJSON()
		if err != nil {
			return err
		}
		head = append(head[:len(head)-1], `,"tree":`...) // drop its closing brace
		return viewParts{head, body, []byte("}\n")}
	})
	if !ok {
		return // the client gave up
	}
	body, isBody := v.(viewParts)
	if !isBody {
		http.Error(w, v.(error).Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body[0])+len(body[1])+len(body[2])))
	for _, part := range body {
		_, _ = w.Write(part)
	}
}

func serveText(s *arbor.Supervisor, shared *walks, w http.ResponseWriter, r *http.Request) {
	v, ok := shared.do(r.Context(), "tree.txt", func(ctx context.Context) any { return s.Tree(ctx).String() })
	if !ok {
		return
	}
	body := v.(string)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write([]byte(body))
}
