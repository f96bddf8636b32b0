package arbor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLogRecords: one escalation makes one record at error level, carrying
// the chain; delays are logged as readable text; attribute names are the
// documented ones. (Issue 11, point 4.)
func TestLogRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		lg := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		root := New("root", WithLogger(lg), WithBackoff(ConstantBackoff(1500*time.Millisecond)))
		mid := New("mid", WithIntensity(0, time.Minute))
		w := newProbe("w", nil)
		require.NoError(t, mid.Add("w", w))
		require.NoError(t, root.Add("mid", mid))
		sv := serveBG(t, root)
		w.exit <- errors.New("refused")
		synctest.Wait()
		require.NoError(t, sv.stop())

		var errorRecords []map[string]any
		var delays []any
		documented := map[string]bool{"time": true, "level": true, "msg": true, "supervisor": true, "child": true,
			"restarts": true, "error": true, "delay": true, "stack": true, "dropped": true}
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			var rec map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
			for k := range rec {
				assert.True(t, documented[k], "undocumented attribute %q in %s", k, line)
			}
			if rec["level"] == "ERROR" {
				errorRecords = append(errorRecords, rec)
			}
			if d, ok := rec["delay"]; ok {
				delays = append(delays, d)
			}
		}
		require.Len(t, errorRecords, 1, "one escalation, one error record")
		assert.Equal(t, "arbor: restart intensity exceeded", errorRecords[0]["msg"])
		assert.Equal(t, "root/mid", errorRecords[0]["supervisor"])
		assert.Contains(t, errorRecords[0]["error"], "root/mid (more than 0 restarts in 1m0s); last failure: root/mid/w: refused")
		assert.Equal(t, []any{"1.5s"}, delays, "a duration a person can read")
	})
}

// TestNodeStringQuotesDeceivingNames: Node.String quotes names and errors
// that are not safely printable, so a child cannot fake lines of the tree or
// reverse the text around it. (Issue 11, point 12.)
func TestNodeStringQuotesDeceivingNames(t *testing.T) {
	for _, name := range []string{"a\nb", "a\u2028b", "evil\u202egnp", "a\u0085b", "a\xffb"} {
		n := &Node{Name: name, State: Running}
		out := n.String()
		assert.Equal(t, 1, strings.Count(out, "\n"), "one line for %q", name)
		for _, r := range strings.TrimSuffix(out, "\n") {
			assert.True(t, r >= ' ' && r < 0x7f, "%q rendered as %q", name, out)
		}
	}
}

// TestShutdownDeadline: with WithShutdownDeadline, a shutdown ends at the
// deadline: the children still running are declared stuck at once, without
// waiting for their own shutdown timeouts, and Serve returns them. The
// shutdown begins with an EventSupervisorStopping carrying its reason.
// (Issue 11, point 6.)
func TestShutdownDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var kinds []EventKind
		s := New("root", WithLogger(nil), WithShutdownDeadline(3*time.Second),
			WithEventHandler(func(e Event) {
				if e.Child == "" {
					kinds = append(kinds, e.Kind)
				}
			}))
		a, b, c := newProbe("a", nil), newProbe("b", nil), newProbe("c", nil)
		a.setIgnore(true)
		b.setIgnore(true)
		require.NoError(t, s.Add("a", a, WithShutdownTimeout(5*time.Second)))
		require.NoError(t, s.Add("b", b, WithShutdownTimeout(5*time.Second)))
		require.NoError(t, s.Add("c", c, WithShutdownTimeout(5*time.Second)))
		sv := serveBG(t, s)
		start := time.Now()
		err := sv.stop()
		assert.Equal(t, 3*time.Second, time.Since(start), "the deadline, not 5s + 5s")
		var stuck []string
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var se *StuckError
			require.ErrorAs(t, e, &se)
			stuck = append(stuck, se.Child)
		}
		assert.ElementsMatch(t, []string{"a", "b"}, stuck)
		assert.Equal(t, []EventKind{EventSupervisorStarted, EventSupervisorStopping, EventSupervisorStopped}, kinds)
		close(a.release)
		close(b.release)
		synctest.Wait()
		_, most, _ := a.counts()
		assert.Equal(t, 1, most)
		require.ErrorIs(t, New("x", WithShutdownDeadline(0)).Serve(t.Context()), ErrInvalid)
	})
}

// TestInvalidMessagesConsistent: bad input reads the same everywhere: one
// "arbor: invalid argument: " prefix, then where, then what. (Issue 11,
// point 4.)
func TestInvalidMessagesConsistent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		err := New("x", WithIntensity(-1, time.Second)).Serve(t.Context())
		require.ErrorIs(t, err, ErrInvalid)
		assert.Equal(t, `arbor: invalid argument: supervisor "x": negative maxRestarts -1`, err.Error())

		root := New("root")
		err = root.Add("sub", newProbe("sub", nil), WithShutdownTimeout(-time.Second))
		require.ErrorIs(t, err, ErrInvalid)
		assert.Equal(t, `arbor: invalid argument: child "sub": negative shutdown timeout -1s`, err.Error())

		err = root.Add("db", New("database", WithIntensity(-1, time.Second)))
		require.ErrorIs(t, err, ErrInvalid)
		assert.Equal(t, `arbor: invalid argument: child "db": supervisor "database": negative maxRestarts -1`, err.Error())
	})
}

// blockingEnabled is a slog.Handler whose Enabled blocks until released.
type blockingEnabled struct {
	slog.Handler
	release chan struct{}
}

func (h blockingEnabled) Enabled(ctx context.Context, l slog.Level) bool {
	<-h.release
	return h.Handler.Enabled(ctx, l)
}

// TestLoggerEnabledOffTheSupervisor: the logger's Enabled, user code, is
// never called on a supervisor's goroutine: one that blocks does not stop
// the supervisor from starting its children. (Issue 11, point 11.)
func TestLoggerEnabledOffTheSupervisor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var buf syncBuffer
		lg := slog.New(blockingEnabled{slog.NewTextHandler(&buf, nil), release})
		s := New("root", WithLogger(lg))
		require.NoError(t, s.Add("a", newProbe("a", nil)))
		require.NoError(t, s.Add("b", newProbe("b", nil)))
		sv := serveBG(t, s)
		assert.Equal(t, []string{"a:running", "b:running"}, states(s), "started while Enabled blocks")
		close(release)
		require.NoError(t, sv.stop())
	})
}

// TestSnapshotsShared: snapshot requests that wait for a busy supervisor
// share one snapshot, and requests whose caller gave up cost none. (Issue
// 11, point 9b.)
func TestSnapshotsShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hold := make(chan struct{})
		s := New("root", WithLogger(nil))
		a := newProbe("a", nil)
		require.NoError(t, s.Add("a", a, WithRestartIf(func(error) bool { <-hold; return true })))
		for i := range 50 {
			require.NoError(t, s.Add(fmt.Sprint("w", i), newProbe("w", nil)))
		}
		sv := serveBG(t, s)
		a.exit <- errors.New("boom") // the supervisor now waits for the predicate
		synctest.Wait()

		before := snapshots.Load()
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() { assert.Len(t, s.Tree(t.Context()).Children, 51) })
		}
		for range 10 { // callers that give up
			ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
			wg.Go(func() {
				defer cancel()
				assert.Nil(t, s.Tree(ctx).Children)
			})
		}
		time.Sleep(time.Second) // the impatient callers give up meanwhile
		synctest.Wait()
		close(hold)
		wg.Wait()
		assert.Equal(t, int64(1), snapshots.Load()-before, "ten waiting requests, one snapshot; none for those that gave up")
		require.NoError(t, sv.stop())
	})
}

// TestRefusedAddFailsServe: an Add refused as invalid before Serve makes
// Serve fail with it, unless a later Add of the same name succeeded; one
// refused while serving only fails that call. (Issue 11, point 2.)
func TestRefusedAddFailsServe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil))
		_ = s.Add("db", newProbe("db", nil), WithShutdownTimeout(-1)) // unchecked, as in a hasty main
		err := s.Serve(t.Context())
		require.ErrorIs(t, err, ErrInvalid)
		assert.Equal(t, `arbor: invalid argument: supervisor "root": child "db": negative shutdown timeout -1ns`, err.Error())

		_ = s.Add("", newProbe("x", nil)) // a name that can never be added
		require.ErrorIs(t, s.Serve(t.Context()), ErrInvalid)
		sv0 := serveBG(t, s)
		require.NoError(t, sv0.stop(), "a Serve reports a refusal once; the next one runs")

		_ = s.Add("db", newProbe("db", nil), WithShutdownTimeout(-1))
		require.NoError(t, s.Add("db", newProbe("db", nil)), "fixed: the same name added right")
		sv := serveBG(t, s)
		assert.Error(t, s.Add("x", newProbe("x", nil), WithShutdownTimeout(-1)), "refused while serving")
		require.NoError(t, sv.stop())
		sv = serveBG(t, s)
		assert.Equal(t, []string{"db:running"}, states(s), "a refusal while serving does not fail the next Serve")
		require.NoError(t, sv.stop())
	})
}

// TestNestedStartingIsLive: a nested supervisor that its parent runs but
// whose Serve has not begun (or has just returned) is not ready, but live:
// probes must not restart a process that is fixing itself. (Issue 11,
// point 9a.)
func TestNestedStartingIsLive(t *testing.T) {
	for _, seen := range []State{Starting, Running, Stopping} {
		root := &Node{Path: "root", Name: "root", Kind: KindSupervisor, State: Running, sup: &supSnap{serving: true}, Children: []*Node{
			{Path: "root/inner", Name: "inner", Kind: KindSupervisor, State: seen, sup: &supSnap{serving: false}},
		}}
		h := root.Health()
		assert.True(t, h.Live, "seen %v", seen)
		assert.False(t, h.Ready, "seen %v", seen)
		assert.Equal(t, "not serving", h.Checks[1].Reason)
	}
}
