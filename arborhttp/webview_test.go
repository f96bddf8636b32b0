package arborhttp

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/arborgo/arbor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// viewNode is a node of tree.json as a client decodes it.
type viewNode struct {
	Path      string         `json:"path"`
	Name      string         `json:"name"`
	Kind      string         `json:"kind"`
	State     string         `json:"state"`
	Restarts  int            `json:"restarts"`
	LastError string         `json:"last_error"`
	Since     *time.Time     `json:"since"`
	NextStart *time.Time     `json:"next_start"`
	Counters  arbor.Counters `json:"counters"`
	Children  []*viewNode    `json:"children"`
}

// viewBody is tree.json as a client decodes it.
type viewBody struct {
	Time  time.Time `json:"time"`
	Live  bool      `json:"live"`
	Ready bool      `json:"ready"`
	Tree  *viewNode `json:"tree"`
}

// lines lists the node and its descendants as "path kind state".
func (n *viewNode) lines() []string {
	out := []string{n.Path + " " + n.Kind + " " + n.State}
	for _, c := range n.Children {
		out = append(out, c.lines()...)
	}
	return out
}

func (n *viewNode) find(path string) *viewNode {
	if n.Path == path {
		return n
	}
	for _, c := range n.Children {
		if f := c.find(path); f != nil {
			return f
		}
	}
	return nil
}

// viewTree builds root{db{conn, cache}, api, jobs}; conn waits an hour in
// backoff when it fails.
func viewTree(t *testing.T) (root *arbor.Supervisor, conn *worker) {
	t.Helper()
	root = arbor.New("root", arbor.WithLogger(nil))
	db := arbor.New("db", arbor.WithLogger(nil))
	conn = newWorker()
	require.NoError(t, db.Add("conn", conn, arbor.WithBackoff(arbor.ConstantBackoff(time.Hour))))
	require.NoError(t, db.Add("cache", newWorker()))
	require.NoError(t, root.Add("db", db))
	require.NoError(t, root.Add("api", newWorker()))
	require.NoError(t, root.Add("jobs", newWorker()))
	return root, conn
}

func viewGet(t *testing.T, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), method, target, nil))
	return rec
}

func decodeView(t *testing.T, rec *httptest.ResponseRecorder) viewBody {
	t.Helper()
	require.Equal(t, http.StatusOK, rec.Code)
	var v viewBody
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&v))
	require.NotNil(t, v.Tree)
	return v
}

// TestViewHandlerRoutes: the page, the JSON and the text, their content
// types and cache headers; 404 for other paths and 405 for other methods.
func TestViewHandlerRoutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, _ := viewTree(t)
		h := ViewHandler(root)
		sv := serveBG(t, root)
		for _, tc := range []struct{ method, path, ctype string }{
			{"GET", "/", "text/html; charset=utf-8"},
			{"GET", "/index.html", "text/html; charset=utf-8"},
			{"HEAD", "/", "text/html; charset=utf-8"},
			{"GET", "/tree.json", "application/json"},
			{"HEAD", "/tree.json", "application/json"},
			{"GET", "/tree.txt", "text/plain; charset=utf-8"},
		} {
			rec := viewGet(t, h, tc.method, tc.path)
			assert.Equal(t, http.StatusOK, rec.Code, tc.method+" "+tc.path)
			assert.Equal(t, tc.ctype, rec.Header().Get("Content-Type"), tc.method+" "+tc.path)
			assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"), tc.method+" "+tc.path)
			assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"), tc.method+" "+tc.path)
			assert.NotEmpty(t, rec.Header().Get("Content-Length"), tc.method+" "+tc.path)
		}
		page := viewGet(t, h, "GET", "/")
		assert.Equal(t, webviewHTML, page.Body.Bytes())
		assert.Contains(t, page.Header().Get("Content-Security-Policy"), "default-src 'none'")

		for _, p := range []string{"/x", "/tree.json/", "/index.htm", "/tree", "/arbor/", "//tree.json", "/TREE.JSON"} {
			rec := viewGet(t, h, "GET", p)
			assert.Equal(t, http.StatusNotFound, rec.Code, p)
		}
		assert.Equal(t, http.StatusNotFound, viewGet(t, h, "POST", "/nope").Code)
		for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
			for _, p := range []string{"/", "/tree.json", "/tree.txt"} {
				rec := viewGet(t, h, m, p)
				assert.Equal(t, http.StatusMethodNotAllowed, rec.Code, m+" "+p)
				assert.Equal(t, "GET, HEAD", rec.Header().Get("Allow"), m+" "+p)
			}
		}
		require.NoError(t, sv.stop())
	})
}

// TestViewHandlerJSON: tree.json carries the time, live and ready, and the
// whole tree: a nested supervisor's children, and a child waiting in backoff
// with its error, restarts, next start and counters.
func TestViewHandlerJSON(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, conn := viewTree(t)
		h := ViewHandler(root)

		v := decodeView(t, viewGet(t, h, "GET", "/tree.json"))
		assert.False(t, v.Live, "not serving")
		assert.False(t, v.Ready)
		assert.Equal(t, "root supervisor stopped", v.Tree.lines()[0])

		started := time.Now()
		sv := serveBG(t, root)
		time.Sleep(time.Minute)
		v = decodeView(t, viewGet(t, h, "GET", "/tree.json"))
		assert.True(t, v.Time.Equal(time.Now()), "time is now: %v", v.Time)
		assert.True(t, v.Live)
		assert.True(t, v.Ready)
		assert.Equal(t, []string{
			"root supervisor running",
			"root/db supervisor running",
			"root/db/conn worker running",
			"root/db/cache worker running",
			"root/api worker running",
			"root/jobs worker running",
		}, v.Tree.lines())
		for _, p := range []string{"root", "root/db", "root/db/conn", "root/api"} {
			n := v.Tree.find(p)
			require.NotNil(t, n.Since, p)
			assert.True(t, n.Since.Equal(started), "%s since %v", p, n.Since)
		}
		assert.Equal(t, "conn", v.Tree.find("root/db/conn").Name)

		conn.exit <- errors.New("connection refused")
		synctest.Wait()
		failed := time.Now()
		time.Sleep(time.Second)
		v = decodeView(t, viewGet(t, h, "GET", "/tree.json"))
		assert.True(t, v.Live, "restarting in backoff is live")
		assert.False(t, v.Ready, "and not ready")
		c := v.Tree.find("root/db/conn")
		require.NotNil(t, c)
		assert.Equal(t, "restarting", c.State)
		assert.Equal(t, "connection refused", c.LastError)
		assert.Zero(t, c.Restarts, "not restarted yet")
		require.NotNil(t, c.NextStart)
		assert.True(t, c.NextStart.Equal(failed.Add(time.Hour)), "next start %v", c.NextStart)
		require.NotNil(t, c.Since)
		assert.True(t, c.Since.Equal(failed), "since %v", c.Since)
		assert.Equal(t, arbor.Counters{Starts: 1, Failures: 1}, c.Counters)
		assert.Equal(t, "running", v.Tree.find("root/db/cache").State)
		assert.Nil(t, v.Tree.find("root/api").NextStart)
		assert.Empty(t, v.Tree.find("root/api").LastError)

		time.Sleep(time.Hour)
		synctest.Wait()
		v = decodeView(t, viewGet(t, h, "GET", "/tree.json"))
		c = v.Tree.find("root/db/conn")
		assert.Equal(t, "running", c.State)
		assert.Equal(t, 1, c.Restarts)
		assert.Equal(t, "connection refused", c.LastError, "the last error stays")
		assert.Nil(t, c.NextStart)
		assert.Equal(t, arbor.Counters{Starts: 2, Failures: 1, Restarts: 1}, c.Counters)
		assert.True(t, v.Ready)

		require.NoError(t, sv.stop())
		v = decodeView(t, viewGet(t, h, "GET", "/tree.json"))
		assert.False(t, v.Live)
		assert.Equal(t, "root supervisor stopped", v.Tree.lines()[0])
	})
}

// TestViewHandlerText: tree.txt is Node.String.
func TestViewHandlerText(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, conn := viewTree(t)
		h := ViewHandler(root)
		sv := serveBG(t, root)
		conn.exit <- errors.New("connection refused")
		synctest.Wait()
		rec := viewGet(t, h, "GET", "/tree.txt")
		require.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, root.Tree(t.Context()).String(), rec.Body.String())
		assert.Equal(t, "root [supervisor] running\n"+
			"├─ db [supervisor] running\n"+
			"│  ├─ conn restarting, next start in 1h0m0s: connection refused\n"+
			"│  └─ cache running\n"+
			"├─ api running\n"+
			"└─ jobs running\n", rec.Body.String())
		require.NoError(t, sv.stop())
	})
}

// TestViewHandlerMounted: mounted as the documentation says, under a prefix
// with StripPrefix, every route answers under the prefix.
func TestViewHandlerMounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, _ := viewTree(t)
		mux := http.NewServeMux()
		mux.Handle("/arbor/", http.StripPrefix("/arbor", ViewHandler(root)))
		sv := serveBG(t, root)
		page := viewGet(t, mux, "GET", "/arbor/")
		assert.Equal(t, http.StatusOK, page.Code)
		assert.Equal(t, webviewHTML, page.Body.Bytes())
		v := decodeView(t, viewGet(t, mux, "GET", "/arbor/tree.json"))
		assert.Equal(t, "root", v.Tree.Path)
		assert.Equal(t, http.StatusOK, viewGet(t, mux, "GET", "/arbor/tree.txt").Code)
		redirect := viewGet(t, mux, "GET", "/arbor")
		assert.Equal(t, "/arbor/", redirect.Header().Get("Location"), "the mux adds the slash")
		assert.Equal(t, http.StatusNotFound, viewGet(t, mux, "GET", "/arbor/x").Code)
		require.NoError(t, sv.stop())
	})
}

// TestViewHandlerEscapes: names and errors holding markup reach the client
// as JSON strings with < and > escaped.
func TestViewHandlerEscapes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := arbor.New("root", arbor.WithLogger(nil))
		w := newWorker()
		require.NoError(t, root.Add("<b>w<i>", w, arbor.WithBackoff(arbor.ConstantBackoff(time.Hour))))
		sv := serveBG(t, root)
		w.exit <- errors.New(`<script>alert(1)</script>`)
		synctest.Wait()
		rec := viewGet(t, ViewHandler(root), "GET", "/tree.json")
		assert.NotContains(t, rec.Body.String(), "<")
		v := decodeView(t, rec)
		c := v.Tree.find("root/<b>w<i>")
		require.NotNil(t, c)
		assert.Equal(t, "<script>alert(1)</script>", c.LastError)
		require.NoError(t, sv.stop())
	})
}

// TestViewPageSelfContained: the page loads nothing from elsewhere, fetches
// tree.json relative to its own URL, marks nodes with data-path and
// data-state, sets text only as text, and its inline script and style are
// the ones the Content-Security-Policy allows.
func TestViewPageSelfContained(t *testing.T) {
	page := string(webviewHTML)
	assert.NotContains(t, page, "http://")
	assert.NotContains(t, page, "https://")
	assert.NotContains(t, page, "//", "no protocol-relative URLs (comments use none either)")
	assert.NotRegexp(t, `(?i)<(script|link|img|iframe)[^>]*\ssrc=`, page)
	assert.NotRegexp(t, `(?i)@import|url\(`, page)
	assert.Contains(t, page, `fetch("tree.json"`)
	assert.Contains(t, page, `"data-path"`)
	assert.Contains(t, page, `"data-state"`)
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		assert.NotContains(t, page, bad)
	}
	assert.Equal(t, 1, strings.Count(page, "<script"), "one inline script")
	assert.Equal(t, 1, strings.Count(page, "<style"), "one inline style sheet")

	csp := webviewCSP
	for _, tag := range []string{"script", "style"} {
		m := regexp.MustCompile(`(?s)<` + tag + `>(.*?)</` + tag + `>`).FindStringSubmatch(page)
		require.NotNil(t, m, tag)
		sum := sha256.Sum256([]byte(m[1]))
		assert.Contains(t, csp, tag+"-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	}
	assert.Contains(t, csp, "connect-src 'self'")
	assert.NotContains(t, csp, "unsafe")
}

// TestViewKeysRowsByPath: the page keys its rows by node path, unique in a
// tree since names cannot hold '/', not by names joined with NUL, which
// names may hold: two nodes could share a row and one vanish. (Issue 11,
// point 12.)
func TestViewKeysRowsByPath(t *testing.T) {
	page := string(webviewHTML)
	assert.Contains(t, page, "flatten(kids[i], kids[i].path,")
	assert.Contains(t, page, "flatten(data.tree, data.tree.path,")
	assert.NotContains(t, page, `"\u0000"`)
}
