package arborhttp

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/arborgo/arbor"
)

// Probe is the question a ProbeHandler answers.
type Probe int

const (
	// Liveness asks whether the tree is live (arbor.Health.Live): a
	// Kubernetes liveness probe, whose failure restarts the container.
	Liveness Probe = iota
	// Readiness asks whether the tree is ready (arbor.Health.Ready): a
	// Kubernetes readiness or startup probe, whose failure takes the pod out
	// of service.
	Readiness
)

// name is the probe's name in kube-apiserver's style, used in the verbose
// body's last line.
func (p Probe) name() string {
	switch p {
	case Liveness:
		return "livez"
	case Readiness:
		return "readyz"
	}
	return "Probe(" + strconv.Itoa(int(p)) + ")"
}

// A ProbeOption configures a ProbeHandler.
type ProbeOption interface{ apply(*probeConfig) }

type probeConfig struct {
	errors bool
}

type probeOption func(*probeConfig)

func (f probeOption) apply(c *probeConfig) { f(c) }

// WithErrors makes a ProbeHandler print each failing check's error
// (arbor.Check.Err) after its reason. Errors may hold whatever a worker put
// in them; leave this off where the probe can be reached by untrusted
// clients.
func WithErrors() ProbeOption {
	return probeOption(func(c *probeConfig) { c.errors = true })
}

// ProbeHandler returns an http.Handler that answers probe p about the tree
// under s, in the style of kube-apiserver's /livez and /readyz: status 200 and
// the body "ok" when the answer is yes, status 503 and one line per check
// ("[+]root ok", "[-]root/db failed: restarting") followed by "livez check
// failed" or "readyz check failed" when it is no. With the query parameter
// verbose, it lists every check in both cases and ends with "... check
// passed" on success. Reasons are state names such as "stuck" or
// "restarting"; workers' errors and stacks are never shown unless
// WithErrors is given. Names and errors holding control characters are
// quoted, so that each check stays on one line. As kube-apiserver's, it
// takes the query parameter exclude, repeatable: a check's path, such as
// "root/jobs", leaves that check and the checks below it out of the answer
// ("[+]root/jobs excluded: ok"); a path that matches no check is named in a
// warning line. The handler answers once
// every supervisor has (see arbor.Supervisor.Health); if the request's
// context ends first, the silent supervisors count as failed.
//
// A p other than Liveness and Readiness is a programming error that
// ProbeHandler does not panic on: the handler it returns answers every
// request with status 500 and a body naming the unknown probe, so that the
// probe fails, visibly, from its first request.
func ProbeHandler(s *arbor.Supervisor, p Probe, opts ...ProbeOption) http.Handler {
	var cfg probeConfig
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if p != Liveness && p != Readiness {
		msg := "arborhttp: ProbeHandler: unknown probe " + p.name()
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, msg, http.StatusInternalServerError)
		})
	}
	var shared walks
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, answered := shared.do(r.Context(), "health", func(ctx context.Context) any { return s.Health(ctx) })
		if !answered {
			return // the client gave up
		}
		h := v.(arbor.Health)
		query := r.URL.Query()
		excluded := query["exclude"]
		used := make([]bool, len(excluded))
		isExcluded := func(path string) bool {
			for i, x := range excluded {
				if path == x || strings.HasPrefix(path, x+"/") {
					used[i] = true
					return true
				}
			}
			return false
		}
		ok := true
		for _, c := range h.Checks {
			if !isExcluded(c.Path) {
				ok = ok && (p == Liveness && c.Live || p == Readiness && c.Ready)
			}
		}
		_, verbose := query["verbose"]
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		if ok && !verbose {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("ok"))
			return
		}
		var b strings.Builder
		for _, c := range h.Checks {
			cok := c.Ready
			if p == Liveness {
				cok = c.Live
			}
			if isExcluded(c.Path) {
				b.WriteString("[+]" + printable(c.Path) + " excluded: ok\n")
				continue
			}
			if cok {
				b.WriteString("[+]" + printable(c.Path) + " ok\n")
				continue
			}
			b.WriteString("[-]" + printable(c.Path) + " failed: " + c.Reason)
			if cfg.errors && c.Err != nil {
				b.WriteString(": " + printable(c.Err.Error()))
			}
			b.WriteByte('\n')
		}
		var unmatched []string
		for i, x := range excluded {
			if !used[i] {
				unmatched = append(unmatched, printable(x))
			}
		}
		if len(unmatched) > 0 {
			b.WriteString("warn: some health checks cannot be excluded: no matches for " + strings.Join(unmatched, ",") + "\n")
		}
		if ok {
			b.WriteString(p.name() + " check passed\n")
			w.WriteHeader(http.StatusOK)
		} else {
			b.WriteString(p.name() + " check failed\n")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write([]byte(b.String()))
	})
}

// printable keeps one check on one line, and text that cannot deceive a
// reader: it quotes text holding anything not safely printable
// (strconv.IsPrint: control and C1 characters, line separators,
// bidirectional overrides) or invalid UTF-8. It is the same rule as the one
// arbor's Node.String applies.
func printable(s string) string {
	safe := utf8.ValidString(s)
	for _, r := range s {
		safe = safe && strconv.IsPrint(r)
	}
	if safe {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
