package arbor

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Regression tests for engine bugs found by TestModel, each named after the
// bug it pins down (all fixed).

// newRegCtrl returns a worker steered by commands (see ctrl in model_test.go).
func newRegCtrl(name string) *ctrl { return &ctrl{name: name, cmd: make(chan wcmd)} }

// TestRegressionTerminateMarkLostToLaterGroupRestart: Terminate on a child
// that a queued group restart was going to start cancels that start ("a
// group restart queued before does not start it"). But when a second group
// restart that includes the child is queued before the first one runs, the
// first one starts the child anyway: the second clears the Terminate mark.
// Here the second group restart is then refused by the intensity, so the
// terminated child gets a copy (and a counted restart) it should never have
// had.
func TestRegressionTerminateMarkLostToLaterGroupRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil), WithStrategy(OneForAll), WithIntensity(1, time.Second))
		a, b, c, d := newRegCtrl("a"), newRegCtrl("b"), newRegCtrl("c"), newRegCtrl("d")
		for _, w := range []*ctrl{a, b, c} {
			require.NoError(t, s.Add(w.name, w, WithShutdownTimeout(time.Second)))
		}
		sv := serveBG(t, s)

		a.cmd <- wcmd{kind: cmdHang} // a ignores cancellation
		b.cmd <- wcmd{kind: cmdFail, err: errors.New("b failed")}
		synctest.Wait()
		// Group restart 1 stopped c and waits for a (up to 1s); then it will
		// start a, b and c.
		require.Equal(t, []string{"a:stopping", "b:restarting", "c:restarting"}, states(s))

		require.NoError(t, s.Terminate(context.Background(), "b")) // cancels group restart 1's start of b
		assert.Equal(t, []string{"a:stopping", "b:stopped", "c:restarting"}, states(s))

		require.NoError(t, s.Add("d", d, WithShutdownTimeout(time.Second)))
		synctest.Wait()
		d.cmd <- wcmd{kind: cmdFail, err: errors.New("d failed")} // group restart 2, queued
		synctest.Wait()

		// a is declared stuck: group restart 1 starts its children (one
		// restart), then group restart 2 is refused (a second restart in 1s)
		// and the supervisor shuts down.
		time.Sleep(time.Second)
		err := semReturned(t, sv)
		require.ErrorIs(t, err, ErrIntensityExceeded)
		assert.Equal(t, int32(1), b.starts.Load(), "b was terminated before group restart 1 ran: it must not start")
		assert.Equal(t, 0, semInfo(t, s, "b").Restarts)

		a.cmd <- wcmd{kind: cmdRelease}
		synctest.Wait()
	})
}

// TestRegressionReadyOfStuckCopyOffline: a child with WithReadiness whose
// copy is stuck when Serve returns, and calls Ready afterwards (it finished
// starting up without looking at its context), posts its readiness to a
// supervisor that no longer serves. drainOffline handles every message that
// is not a request as a copy's exit, so it records the child as returned
// (Stopped) while its copy still runs, and the next Serve starts a second
// copy at once. (While the supervisor serves, readied ignores the signal.)
func TestRegressionReadyOfStuckCopyOffline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil))
		w := newRegCtrl("w")
		require.NoError(t, s.Add("w", w, WithReadiness(0), WithShutdownTimeout(time.Second)))
		sv := serveBG(t, s)
		require.Equal(t, []string{"w:starting"}, states(s))

		w.cmd <- wcmd{kind: cmdHang} // w ignores cancellation
		sv.cancel()
		time.Sleep(time.Second)
		var se *StuckError
		require.ErrorAs(t, <-sv.done, &se)
		require.Equal(t, []string{"w:stuck"}, states(s))

		w.cmd <- wcmd{kind: cmdReady} // the stuck copy says it is up
		synctest.Wait()
		assert.Equal(t, []string{"w:stuck"}, states(s), "its copy still runs")

		sv = serveBG(t, s)
		assert.Equal(t, []string{"w:stuck"}, states(s), "a second Serve must wait for the stuck copy")
		assert.False(t, w.overlap.Load(), "two copies of w ran at once")

		w.cmd <- wcmd{kind: cmdRelease}
		synctest.Wait()
		require.NoError(t, sv.stop())
	})
}

// TestRegressionGroupRestartQueuesChildTwice: a group restart starts every
// member that has no running copy, including one that already waits in the
// start queue, where an earlier group restart put it behind a child whose
// readiness is awaited. The child is then queued twice and launched twice:
// two copies of it run at once. Only one entry is taken out again by a
// later dequeue (Terminate, a third group restart), so the other still starts
// it after that.
func TestRegressionGroupRestartQueuesChildTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil), WithStrategy(OneForAll))
		c, a, b, e := newRegCtrl("c"), newRegCtrl("a"), newRegCtrl("b"), newRegCtrl("e")
		require.NoError(t, s.Add("c", c, WithShutdownTimeout(time.Second)))
		require.NoError(t, s.Add("a", a, WithReadiness(0)))
		require.NoError(t, s.Add("b", b))
		sv := serveBG(t, s)
		a.cmd <- wcmd{kind: cmdReady}
		synctest.Wait()
		require.Equal(t, []string{"c:running", "a:running", "b:running"}, states(s))

		c.cmd <- wcmd{kind: cmdHang} // c ignores cancellation
		b.cmd <- wcmd{kind: cmdFail, err: errors.New("b failed")}
		synctest.Wait()
		// Group restart 1 stopped a and waits for c (up to 1s).
		require.Equal(t, []string{"c:stopping", "a:restarting", "b:restarting"}, states(s))
		require.NoError(t, s.Add("e", e))
		synctest.Wait()
		e.cmd <- wcmd{kind: cmdFail, err: errors.New("e failed")} // group restart 2, queued
		synctest.Wait()

		// c is declared stuck: group restart 1 starts a, which is awaited,
		// and queues b behind it; group restart 2 finds b queued, not running.
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"c:stuck", "a:starting", "b:starting", "e:starting"}, states(s))

		a.cmd <- wcmd{kind: cmdReady} // the queue goes on
		synctest.Wait()
		assert.False(t, b.overlap.Load(), "two copies of b ran at once")
		assert.Equal(t, int32(2), b.starts.Load(), "b started once by the group restarts")

		c.cmd <- wcmd{kind: cmdRelease}
		synctest.Wait()
		require.NoError(t, sv.stop())
		select { // a second copy of b, whose context nobody cancels
		case b.cmd <- wcmd{kind: cmdExit}:
		default:
		}
		synctest.Wait()
	})
}

// TestRegressionStaleGroupRestartStopsRestartedChild: a group restart stops
// its running members one at a time. A member that exits by itself before
// its turn counts as stopped, and Terminate then Restart start it again at
// once; the group restart, queued before the Terminate, will not start it
// (doc.go). But when the group restart's stops reach it, they stop the copy
// that Restart started, so the child ends up Stopped although nothing failed
// and the last call on it was Restart. (A stop queued by an earlier
// Terminate of the same child does the same.) The queued stop should apply to
// the copy that ran when it was queued, and leave a later copy alone.
func TestRegressionStaleGroupRestartStopsRestartedChild(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil), WithStrategy(OneForAll))
		a, b, c := newRegCtrl("a"), newRegCtrl("b"), newRegCtrl("c")
		require.NoError(t, s.Add("a", a))
		require.NoError(t, s.Add("b", b))
		require.NoError(t, s.Add("c", c, WithShutdownTimeout(time.Second)))
		sv := serveBG(t, s)

		c.cmd <- wcmd{kind: cmdHang} // c ignores cancellation
		a.cmd <- wcmd{kind: cmdFail, err: errors.New("a failed")}
		synctest.Wait()
		// The group restart stops c (up to 1s), then b, then starts a, b, c.
		require.Equal(t, []string{"a:restarting", "b:running", "c:stopping"}, states(s))

		b.cmd <- wcmd{kind: cmdExit} // before its turn: counts as stopped
		synctest.Wait()
		require.Equal(t, []string{"a:restarting", "b:restarting", "c:stopping"}, states(s))
		require.NoError(t, s.Terminate(context.Background(), "b"))
		require.NoError(t, s.Restart("b"))
		synctest.Wait()
		require.Equal(t, []string{"a:restarting", "b:running", "c:stopping"}, states(s))

		time.Sleep(time.Second) // c is declared stuck; the group restart goes on
		synctest.Wait()
		assert.Equal(t, []string{"a:running", "b:running", "c:stuck"}, states(s),
			"the group restart, queued before Terminate, must not stop the copy Restart started")
		assert.Equal(t, int32(2), b.starts.Load())

		c.cmd <- wcmd{kind: cmdRelease}
		synctest.Wait()
		require.NoError(t, sv.stop())
	})
}

// TestRegressionTerminatedStuckChildRestartingInGroupRestart: a child
// terminated while stuck, then included in a group restart queued after the
// Terminate, is Restarting (not Stopped) once its copy returns, whether it
// returns before or after the group restart is queued; the group restart
// starts it. Found by TestModel.
func TestRegressionTerminatedStuckChildRestartingInGroupRestart(t *testing.T) {
	for _, returnFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("returnFirst=%v", returnFirst), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := New("root", WithLogger(nil), WithStrategy(OneForAll), WithBackoff(ConstantBackoff(time.Second)))
				a, b := newRegCtrl("a"), newRegCtrl("b")
				require.NoError(t, s.Add("a", a, WithShutdownTimeout(200*time.Millisecond)))
				require.NoError(t, s.Add("b", b))
				sv := serveBG(t, s)
				a.cmd <- wcmd{kind: cmdHang}
				require.ErrorIs(t, s.Terminate(t.Context(), "a"), ErrStuck)
				if returnFirst {
					a.cmd <- wcmd{kind: cmdRelease}
					synctest.Wait()
				}
				b.cmd <- wcmd{kind: cmdFail, err: errors.New("b failed")} // group restart queued after the Terminate
				synctest.Wait()
				if !returnFirst {
					a.cmd <- wcmd{kind: cmdRelease}
					synctest.Wait()
				}
				assert.Equal(t, []string{"a:restarting", "b:restarting"}, states(s))
				time.Sleep(time.Second)
				synctest.Wait()
				assert.Equal(t, []string{"a:running", "b:running"}, states(s))
				require.NoError(t, sv.stop())
			})
		})
	}
}
