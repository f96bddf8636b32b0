package arbor

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStuckChildShutdown: a child that ignores cancellation past its timeout
// is declared stuck, shown in Children, logged with its stack, and named in
// the error Serve returns.
func TestStuckChildShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logBuf syncBuffer
		s := New("root", WithLogger(slog.New(slog.NewTextHandler(&logBuf, nil))))
		log := &eventLog{}
		a, b := newProbe("a", log), newProbe("b", log)
		b.setIgnore(true)
		require.NoError(t, s.Add("a", a))
		require.NoError(t, s.Add("b", b, WithShutdownTimeout(2*time.Second)))
		sv := serveBG(t, s)
		log.take()

		start := time.Now()
		err := sv.stop()
		assert.Equal(t, 2*time.Second, time.Since(start), "Serve waited exactly the shutdown timeout")
		require.ErrorIs(t, err, ErrStuck)
		var se *StuckError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "b", se.Child)
		assert.Equal(t, "root", se.Supervisor)
		assert.Contains(t, string(se.Stack()), "(*probe).Serve", "the stuck goroutine's stack is reported")
		assert.Equal(t, []string{"a:stopped", "b:stuck"}, states(s))
		assert.Equal(t, []string{"stop a"}, log.take(), "a was stopped after b was declared stuck")
		assert.Contains(t, logBuf.String(), "child stuck")
		assert.Contains(t, logBuf.String(), "child=b")

		close(b.release)
		synctest.Wait()
		assert.Equal(t, []string{"a:stopped", "b:stopped"}, states(s), "the stuck copy returned")
	})
}

// TestStuckNoSecondCopy: a group restart never starts a child again while its
// stuck copy still runs; it starts it once the copy returns.
func TestStuckNoSecondCopy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithStrategy(OneForAll), WithLogger(nil))
		log := &eventLog{}
		a, b := newProbe("a", log), newProbe("b", log)
		require.NoError(t, s.Add("a", a, WithShutdownTimeout(time.Second)))
		require.NoError(t, s.Add("b", b))
		sv := serveBG(t, s)
		a.setIgnore(true) // takes effect for the running copy only from its next start
		// make the running copy of a ignore cancellation: restart it once
		require.NoError(t, s.Terminate(context.Background(), "a"))
		require.NoError(t, s.Restart("a"))
		synctest.Wait()
		log.take()

		b.exit <- errors.New("boom") // OneForAll: stop a (stuck), then start a and b
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"a:stuck", "b:running"}, states(s))
		_, maxA, startsA := a.counts()
		assert.Equal(t, 1, maxA, "never two copies of a")
		assert.Equal(t, 2, startsA)

		a.setIgnore(false)
		close(a.release) // the stuck copy returns: a starts again
		synctest.Wait()
		runA, maxA, startsA := a.counts()
		assert.Equal(t, 1, runA)
		assert.Equal(t, 1, maxA)
		assert.Equal(t, 3, startsA)
		assert.Equal(t, []string{"a:running", "b:running"}, states(s))
		require.NoError(t, sv.stop())
	})
}

// TestStuckAcrossServe: a supervisor served again while an earlier copy of a
// child still runs keeps the child stuck until that copy returns.
func TestStuckAcrossServe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil))
		p := newProbe("p", nil)
		p.setIgnore(true)
		require.NoError(t, s.Add("p", p, WithShutdownTimeout(time.Second)))
		sv := serveBG(t, s)
		require.ErrorIs(t, sv.stop(), ErrStuck)
		p.setIgnore(false)

		sv = serveBG(t, s)
		assert.Equal(t, []string{"p:stuck"}, states(s))
		require.ErrorIs(t, s.Restart("p"), ErrNotStopped)
		_, max, starts := p.counts()
		assert.Equal(t, 1, max)
		assert.Equal(t, 1, starts)

		close(p.release)
		synctest.Wait()
		assert.Equal(t, []string{"p:running"}, states(s))
		running, max, starts := p.counts()
		assert.Equal(t, 1, running)
		assert.Equal(t, 1, max)
		assert.Equal(t, 2, starts)
		require.NoError(t, sv.stop())
	})
}

// TestTerminateStuck: Terminate returns the *StuckError once the child is
// declared stuck.
func TestTerminateStuck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil))
		p := newProbe("p", nil)
		p.setIgnore(true)
		require.NoError(t, s.Add("p", p, WithShutdownTimeout(3*time.Second)))
		sv := serveBG(t, s)
		start := time.Now()
		err := s.Terminate(context.Background(), "p")
		assert.Equal(t, 3*time.Second, time.Since(start))
		var se *StuckError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "p", se.Child)
		require.ErrorIs(t, s.Terminate(context.Background(), "p"), ErrStuck, "still stuck")
		close(p.release)
		synctest.Wait()
		assert.Equal(t, []string{"p:stopped"}, states(s))
		require.NoError(t, s.Terminate(context.Background(), "p"), "idempotent")
		require.NoError(t, sv.stop())
	})
}

// TestShutdownTimeoutZeroWaits: a zero shutdown timeout waits without limit.
func TestShutdownTimeoutZeroWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil))
		p := newProbe("p", nil)
		p.setIgnore(true)
		require.NoError(t, s.Add("p", p, WithShutdownTimeout(0)))
		sv := serveBG(t, s)
		sv.cancel()
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		select {
		case err := <-sv.done:
			t.Fatalf("Serve returned %v while the child still ran", err)
		default:
		}
		assert.Equal(t, []string{"p:stopping"}, states(s))
		close(p.release)
		require.NoError(t, <-sv.done)
	})
}

// TestNestedSupervisorWaitsForItsChildren: a nested supervisor has no
// shutdown limit by default; it bounds its own children.
func TestNestedSupervisorWaitsForItsChildren(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &eventLog{}
		root := New("root", WithLogger(nil))
		mid := New("mid", WithLogger(nil))
		p := newProbe("p", log)
		p.setIgnore(true)
		require.NoError(t, mid.Add("p", p, WithShutdownTimeout(30*time.Second)))
		q := newProbe("q", log)
		require.NoError(t, root.Add("q", q))
		require.NoError(t, root.Add("mid", mid))
		sv := serveBG(t, root)
		log.take()
		start := time.Now()
		err := sv.stop()
		assert.Equal(t, 30*time.Second, time.Since(start), "root waited for mid, which waited 30s for p")
		var se *StuckError
		require.ErrorAs(t, err, &se, "a stuck grandchild is reported up the tree")
		assert.Equal(t, "root/mid", se.Supervisor, "named by its path in the tree")
		assert.Equal(t, "p", se.Child)
		assert.NotErrorIs(t, err, ErrIntensityExceeded)
		assert.Equal(t, []string{"stop q"}, log.take())
		close(p.release)
		synctest.Wait()
	})
}
