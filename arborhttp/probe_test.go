package arborhttp

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/arborgo/arbor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProbeHandler: status codes and bodies of both probes, verbose or not,
// with errors hidden unless asked for.
func TestProbeHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := arbor.New("root", arbor.WithLogger(nil), arbor.WithBackoff(arbor.ConstantBackoff(time.Minute)))
		a := newWorker()
		require.NoError(t, root.Add("a", a))
		require.NoError(t, root.Add("b", newWorker()))
		get := func(h http.Handler, target string) (int, string) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
			assert.Equal(t, "text/plain; charset=utf-8", rec.Header().Get("Content-Type"))
			assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
			return rec.Code, rec.Body.String()
		}
		live := ProbeHandler(root, Liveness)
		ready := ProbeHandler(root, Readiness)
		readyErrs := ProbeHandler(root, Readiness, WithErrors())

		code, body := get(live, "/livez")
		assert.Equal(t, http.StatusServiceUnavailable, code)
		assert.Equal(t, "[-]root failed: not serving\n[-]root/a failed: not serving\n[-]root/b failed: not serving\nlivez check failed\n", body)

		sv := serveBG(t, root)
		code, body = get(live, "/livez")
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, "ok", body)
		code, body = get(live, "/livez?verbose")
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, "[+]root ok\n[+]root/a ok\n[+]root/b ok\nlivez check passed\n", body)
		code, body = get(ready, "/readyz?verbose")
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, "[+]root ok\n[+]root/a ok\n[+]root/b ok\nreadyz check passed\n", body)

		a.exit <- errors.New("password=hunter2")
		synctest.Wait()
		code, body = get(ready, "/readyz")
		assert.Equal(t, http.StatusServiceUnavailable, code)
		assert.Equal(t, "[+]root ok\n[-]root/a failed: restarting\n[+]root/b ok\nreadyz check failed\n", body)
		assert.NotContains(t, body, "hunter2", "errors are withheld by default")
		code, body = get(readyErrs, "/readyz")
		assert.Equal(t, http.StatusServiceUnavailable, code)
		assert.Contains(t, body, "[-]root/a failed: restarting: password=hunter2\n")
		code, _ = get(live, "/livez")
		assert.Equal(t, http.StatusOK, code, "restarting is not dead")
		require.NoError(t, sv.stop())
	})
}

// TestProbeHandlerPrintable: control characters in names and errors cannot
// forge lines.
func TestProbeHandlerPrintable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := arbor.New("root", arbor.WithLogger(nil), arbor.WithBackoff(arbor.ConstantBackoff(time.Minute)))
		w := newWorker()
		require.NoError(t, root.Add("a\n[+]forged ok", w))
		rec := httptest.NewRecorder()
		ProbeHandler(root, Readiness).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		assert.Equal(t, "[-]root failed: not serving\n[-]root/a\\n[+]forged ok failed: not serving\nreadyz check failed\n", rec.Body.String())

		sv := serveBG(t, root)
		w.exit <- errors.New("boom\n[+]root/x ok")
		synctest.Wait()
		rec = httptest.NewRecorder()
		ProbeHandler(root, Readiness, WithErrors()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		assert.Equal(t, "[+]root ok\n[-]root/a\\n[+]forged ok failed: restarting: boom\\n[+]root/x ok\nreadyz check failed\n", rec.Body.String())
		require.NoError(t, sv.stop())
	})
}

// TestProbeHandlerUnknown: an unknown probe does not panic; its handler
// answers every request with 500 and says why.
func TestProbeHandlerUnknown(t *testing.T) {
	root := arbor.New("root", arbor.WithLogger(nil))
	var h http.Handler
	require.NotPanics(t, func() { h = ProbeHandler(root, Probe(7), WithErrors(), nil) })
	for _, target := range []string{"/livez", "/readyz?verbose"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		assert.Equal(t, http.StatusInternalServerError, rec.Code, target)
		assert.Equal(t, "arborhttp: ProbeHandler: unknown probe Probe(7)\n", rec.Body.String(), target)
		assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"), target)
	}
}

// TestPrintable: text without control characters is kept as is; text with
// any is quoted as a Go string, without the quotes.
func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"":             "",
		"root/db":      "root/db",
		"héllo wörld":  "héllo wörld",
		"a\nb":         `a\nb`,
		"tab\there":    `tab\there`,
		"del\x7f":      `del\x7f`,
		"quote\"\r":    `quote\"\r`,
		"esc\x1b[31m!": `esc\x1b[31m!`,
	} {
		assert.Equal(t, want, printable(in), "%q", in)
	}
}

// TestPrintableQuotesDeceivingText: anything not safely printable is quoted:
// C1 controls, line separators, bidirectional overrides, invalid UTF-8.
// (Issue 11, point 12.)
func TestPrintableQuotesDeceivingText(t *testing.T) {
	for _, in := range []string{"a\u0085b", "a\u2028b", "a\u2029b", "evil\u202egnp.exe", "a\u2066b", "a\xffb", "a\tb", "a\x00b"} {
		out := printable(in)
		assert.NotEqual(t, in, out, "%q is quoted", in)
		assert.True(t, utf8.ValidString(out))
		for _, r := range out {
			assert.True(t, r >= ' ' && r < 0x7f, "%q: only ASCII printable characters after quoting, got %q", in, out)
		}
	}
	for _, in := range []string{"db", "pool-7", "élan", "日本", "a b"} {
		assert.Equal(t, in, printable(in), "%q is safe as it is", in)
	}
}

// TestProbeExcludeAndExempt: a child added WithReadinessExempt never makes
// /readyz fail, though verbose output still lists it with its reason; the
// query parameter exclude leaves a check and the checks below it out, and a
// path that matches nothing is named in a warning. (Issue 11, point 5.)
func TestProbeExcludeAndExempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := arbor.New("root", arbor.WithLogger(nil))
		api := newWorker()
		job := newWorker()
		require.NoError(t, root.Add("api", api, arbor.WithBackoff(arbor.ConstantBackoff(time.Minute))))
		require.NoError(t, root.Add("job", job, arbor.WithReadinessExempt(), arbor.WithBackoff(arbor.ConstantBackoff(time.Minute))))
		sv := serveBG(t, root)
		job.exit <- errors.New("queue empty")
		synctest.Wait()

		ready := ProbeHandler(root, Readiness)
		get := func(url string) (int, string) {
			rec := httptest.NewRecorder()
			ready.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
			return rec.Code, rec.Body.String()
		}
		code, body := get("/readyz")
		assert.Equal(t, http.StatusOK, code, "an exempt child waiting in backoff leaves the tree ready: %s", body)
		_, body = get("/readyz?verbose")
		assert.Contains(t, body, "[+]root/job ok")
		h := root.Health(t.Context())
		assert.True(t, h.Ready)
		assert.Equal(t, "restarting (exempt from readiness)", h.Checks[2].Reason)
		require.NoError(t, root.WaitReady(t.Context()), "WaitReady does not wait for an exempt child")

		// api stuck in backoff too: /readyz fails unless it is excluded.
		api.exit <- errors.New("down")
		synctest.Wait()
		code, body = get("/readyz")
		assert.Equal(t, http.StatusServiceUnavailable, code, body)
		assert.Contains(t, body, "[-]root/api failed: ")
		code, body = get("/readyz?verbose&exclude=root/api&exclude=root/nope")
		assert.Equal(t, http.StatusOK, code, body)
		assert.Contains(t, body, "[+]root/api excluded: ok")
		assert.Contains(t, body, "warn: some health checks cannot be excluded: no matches for root/nope")
		require.NoError(t, sv.stop())
	})
}
