package arbor

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// events collects events from a handler.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) handle(ev Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

// lines returns the events as "path: kind" strings, with the error when set.
func (e *events) lines() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		out = append(out, ev.String())
	}
	return out
}

// TestEventsSequence: a failure with backoff yields the exact sequence of
// events, in order, delivered before Serve returns.
func TestEventsSequence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got events
		s := New("root", WithLogger(nil), WithEventHandler(got.handle), WithBackoff(ConstantBackoff(time.Second)))
		a := newProbe("a", nil)
		require.NoError(t, s.Add("a", a))
		sv := serveBG(t, s)
		a.exit <- errors.New("boom")
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		require.NoError(t, sv.stop())
		assert.Equal(t, []string{
			"root: supervisor started",
			"root/a: child started (restarts=0)",
			"root/a: child failed (restarts=0): boom",
			"root/a: restart scheduled (restarts=0) in 1s: boom",
			"root/a: child restarted (restarts=1)",
			"root: supervisor stopping",
			"root/a: child stopped (restarts=1)",
			"root: supervisor stopped",
		}, got.lines())
		got.mu.Lock()
		defer got.mu.Unlock()
		assert.Equal(t, EventRestartScheduled, got.all[3].Kind)
		assert.Equal(t, time.Second, got.all[3].Delay)
		assert.Equal(t, got.all[0].Time.Add(time.Second), got.all[4].Time)
	})
}

// TestEventsNestedPaths: nested supervisors report with their path in the
// tree, to their own handlers and to every ancestor's.
func TestEventsNestedPaths(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var top, mid events
		root := New("root", WithLogger(nil), WithEventHandler(top.handle))
		db := New("database", WithLogger(nil), WithEventHandler(mid.handle), WithIntensity(0, time.Minute))
		conn := newProbe("conn", nil)
		require.NoError(t, db.Add("conn", conn))
		require.NoError(t, root.Add("db", db))
		sv := serveBG(t, root)
		conn.exit <- errors.New("refused")
		synctest.Wait()
		require.NoError(t, sv.stop())
		want := []string{
			"root/db: supervisor started",
			"root/db/conn: child started (restarts=0)",
			"root/db/conn: child failed (restarts=0): refused",
			`root/db/conn: restart intensity exceeded (restarts=0): arbor: restart intensity exceeded: root/db (more than 0 restarts in 1m0s); last failure: root/db/conn: refused`,
			"root/db: supervisor stopping: " + `arbor: restart intensity exceeded: root/db (more than 0 restarts in 1m0s); last failure: root/db/conn: refused`,
			"root/db: supervisor stopped: " + `arbor: restart intensity exceeded: root/db (more than 0 restarts in 1m0s); last failure: root/db/conn: refused`,
			"root/db: supervisor started",
			"root/db/conn: child started (restarts=0)",
			"root/db: supervisor stopping",
			"root/db/conn: child stopped (restarts=0)",
			"root/db: supervisor stopped",
		}
		assert.Equal(t, want, mid.lines())
		var nested []string
		for _, l := range top.lines() {
			if strings.HasPrefix(l, "root/db") && !strings.HasPrefix(l, "root/db: child") {
				nested = append(nested, l)
			}
		}
		assert.Equal(t, want, nested, "the root's handler sees the nested events too, in the same order")
		assert.Contains(t, top.lines(), `root/db: child failed (restarts=0): `+want[5][len("root/db: supervisor stopped: "):])
		assert.Contains(t, top.lines(), "root/db: child restarted (restarts=1)")
	})
}

// TestEventsSlowHandlerFlood: a handler that blocks never blocks the
// supervisor; events beyond EventBuffer are dropped and counted, and the
// supervisor's last event is always delivered.
func TestEventsSlowHandlerFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var got events
		slow := func(e Event) {
			<-release
			got.handle(e)
		}
		s := New("root", WithLogger(nil), WithEventHandler(slow), WithIntensity(1_000_000, time.Second))
		a := newProbe("a", nil)
		require.NoError(t, s.Add("a", a))
		sv := serveBG(t, s)
		const failures = 2000 // two events each: failed, restarted
		for range failures {
			a.exit <- errors.New("boom")
		}
		synctest.Wait()
		info := s.Children()[0]
		assert.Equal(t, failures, info.Restarts, "the supervisor kept going")
		close(release)
		require.NoError(t, sv.stop())
		got.mu.Lock()
		defer got.mu.Unlock()
		delivered, dropped := len(got.all), 0
		for _, e := range got.all {
			dropped += e.Dropped
		}
		emitted := 2 + 2*failures + 3 // started, started a, failures, stopping, stopped a, stopped
		assert.Equal(t, EventSupervisorStopped, got.all[len(got.all)-1].Kind, "the last event always arrives")
		assert.Positive(t, dropped)
		assert.LessOrEqual(t, delivered, 2*EventBuffer+2, "the queue, the batch in delivery, the last event")
		assert.Equal(t, emitted, delivered+dropped, "every event is delivered or counted")
	})
}

// TestEventsPanickingHandler: a handler that panics is logged and does not
// stop the supervisor or the other handlers.
func TestEventsPanickingHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		var got events
		s := New("root", WithLogger(slog.New(slog.NewTextHandler(&buf, nil))),
			WithEventHandler(func(Event) { panic("handler broke") }), WithEventHandler(got.handle))
		a := newProbe("a", nil)
		require.NoError(t, s.Add("a", a))
		sv := serveBG(t, s)
		a.exit <- errors.New("boom")
		synctest.Wait()
		assert.Equal(t, []string{"a:running"}, states(s))
		require.NoError(t, sv.stop())
		assert.Len(t, got.lines(), 7)
		assert.Contains(t, buf.String(), "arbor: event handler panicked")
		assert.Contains(t, buf.String(), "handler broke")
	})
}

// TestEventsLoggerInherited: nested supervisors log through their parent's
// logger unless they set their own; levels follow the event kinds.
func TestEventsLoggerInherited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		root := New("root", WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
		mid := New("mid")
		quiet := New("quiet", WithLogger(nil))
		m, q := newProbe("m", nil), newProbe("q", nil)
		require.NoError(t, mid.Add("m", m))
		require.NoError(t, quiet.Add("q", q))
		require.NoError(t, root.Add("mid", mid))
		require.NoError(t, root.Add("quiet", quiet))
		sv := serveBG(t, root)
		m.exit <- errors.New("mid failed")
		q.exit <- errors.New("quiet failed")
		synctest.Wait()
		require.NoError(t, sv.stop())
		out := buf.String()
		assert.Contains(t, out, `level=WARN msg="arbor: child failed" supervisor=root/mid child=m restarts=0 error="mid failed"`)
		assert.Contains(t, out, `level=INFO msg="arbor: child restarted" supervisor=root/mid child=m restarts=1`)
		assert.NotContains(t, out, "quiet failed")
		assert.NotContains(t, out, "child started", "debug events are not logged at info level")
	})
}

// TestEventsDebugLevel: with a debug logger every transition is logged.
func TestEventsDebugLevel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		s := New("root", WithLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		require.NoError(t, s.Add("a", newProbe("a", nil)))
		sv := serveBG(t, s)
		require.NoError(t, sv.stop())
		for _, msg := range []string{"supervisor started", "child started", "child stopped", "supervisor stopped"} {
			assert.Contains(t, buf.String(), `level=DEBUG msg="arbor: `+msg+`"`)
		}
	})
}

// TestEventHandlerInvalid: a nil handler is rejected.
func TestEventHandlerInvalid(t *testing.T) {
	s := New("s", WithEventHandler(nil))
	require.ErrorIs(t, s.Serve(t.Context()), ErrInvalid)
}

// TestEventKindString: every kind has a name.
func TestEventKindString(t *testing.T) {
	for k := EventSupervisorStarted; k <= EventPolicyPanicked; k++ {
		assert.NotContains(t, k.String(), "EventKind(")
	}
	assert.Equal(t, "EventKind(99)", EventKind(99).String())
	assert.Equal(t, "root/a", Event{Supervisor: "root", Child: "a"}.Path())
}

// TestEventsHealthKinds: readiness, a missed heartbeat, a stuck child and its
// late return each produce their event, in order.
func TestEventsHealthKinds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got events
		s := New("root", WithLogger(nil), WithEventHandler(got.handle))
		// The first copy of b sends no heartbeat and ignores its cancellation
		// until released; later copies beat every second.
		b := newProbe("b", nil).
			each(copyPlan{beatEvery: time.Second, beats: forever}).
			firstCopies(copyPlan{ignore: true})
		require.NoError(t, s.Add("r", slowStarter("r", time.Second), WithReadiness(0)))
		require.NoError(t, s.Add("b", b, WithHeartbeat(time.Second), WithShutdownTimeout(time.Second)))
		sv := serveBG(t, s)
		time.Sleep(3 * time.Second) // ready at 1 s, hung at 2 s, stuck at 3 s
		synctest.Wait()
		close(b.release)
		synctest.Wait()
		require.NoError(t, sv.stop())
		var kinds []string
		for _, e := range got.lines() {
			if strings.HasPrefix(e, "root/b") || strings.Contains(e, "ready") {
				kinds = append(kinds, e[:strings.IndexAny(e+" (", "(")])
			}
		}
		assert.Equal(t, []string{
			"root/r: child ready ",
			"root/b: child started ",
			"root/b: child hung ",
			"root/b: child stuck ",
			"root/b: stuck child returned ",
			"root/b: child failed ",
			"root/b: child restarted ",
			"root/b: child stopped ",
		}, kinds)
	})
}
