package arbor

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file checks the supervisor against the semantics of Erlang/OTP's
// supervisors as OTP's documentation states them (the reference manual of
// the supervisor module, and the Supervisor Behaviour chapter of OTP Design
// Principles): restart policies, strategies, restart intensity, significant
// children, bad input, start order and contexts. Every test runs in a
// synctest bubble with fake time.

// ---------------------------------------------------------------------------
// Helpers. The fake worker (probe) and the shared helpers are in
// harness_test.go.

// addProbes adds probes to s under their own names, with default options.
func addProbes(t *testing.T, s *Supervisor, ps ...*probe) {
	t.Helper()
	for _, p := range ps {
		require.NoError(t, s.Add(p.name, p))
	}
}

// ---------------------------------------------------------------------------
// 1. Strategies.

// TestStrategyOneForOneRestartsOnlyExited: under OneForOne only the child that
// exited is restarted; its siblings keep running the same copy.
func TestStrategyOneForOneRestartsOnlyExited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root")
		o := watchLaunches(s)
		a, b, c := o.probe("a"), o.probe("b"), o.probe("c")
		o.add(t, a)
		o.add(t, b)
		o.add(t, c)
		sv := serveBG(t, s)
		require.Equal(t, []string{"start a", "start b", "start c"}, o.take(t))

		boom := errors.New("boom")
		b.exit <- boom
		synctest.Wait()
		assert.Equal(t, []string{"exit b", "start b"}, o.take(t))
		assert.Equal(t, 1, a.starts(), "a is the same copy")
		assert.Equal(t, 2, b.starts())
		assert.Equal(t, 1, c.starts(), "c is the same copy")
		assert.Equal(t, []string{"a:running", "b:running", "c:running"}, states(s))
		assert.Equal(t, map[string]int{"a": 0, "b": 1, "c": 0}, restartCounts(s))
		assert.ErrorIs(t, childInfo(t, s, "b").LastError, boom)
		assert.NoError(t, childInfo(t, s, "a").LastError)

		require.NoError(t, sv.stop())
		assert.Equal(t, []string{"stop c", "stop b", "stop a"}, o.take(t))
	})
}

// TestStrategyOneForAllOrder: under OneForAll a failure stops every other
// running child in reverse start order, then starts all children again in
// start order.
func TestStrategyOneForAllOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithStrategy(OneForAll))
		o := watchLaunches(s)
		a, b, c := o.probe("a"), o.probe("b"), o.probe("c")
		o.add(t, a)
		o.add(t, b)
		o.add(t, c)
		sv := serveBG(t, s)
		o.take(t)

		boom := errors.New("boom")
		b.exit <- boom
		synctest.Wait()
		assert.Equal(t, []string{"exit b", "stop c", "stop a", "start a", "start b", "start c"}, o.take(t))
		for _, p := range []*probe{a, b, c} {
			running, max, starts := p.counts()
			assert.Equal(t, 1, running, p.name)
			assert.Equal(t, 1, max, "%s: never two copies", p.name)
			assert.Equal(t, 2, starts, p.name)
		}
		assert.Equal(t, []string{"a:running", "b:running", "c:running"}, states(s))
		assert.Equal(t, map[string]int{"a": 1, "b": 1, "c": 1}, restartCounts(s))
		assert.ErrorIs(t, childInfo(t, s, "b").LastError, boom)
		assert.NoError(t, childInfo(t, s, "a").LastError, "being stopped by a group restart is no failure")
		assert.NoError(t, childInfo(t, s, "c").LastError, "being stopped by a group restart is no failure")

		// The first child failing gives the same whole-group restart.
		a.exit <- boom
		synctest.Wait()
		assert.Equal(t, []string{"exit a", "stop c", "stop b", "start a", "start b", "start c"}, o.take(t))
		require.NoError(t, sv.stop())
	})
}

// TestStrategyOneForAllTemporarySiblingRemoved: temporary siblings are stopped
// by a group restart and removed, never started again.
func TestStrategyOneForAllTemporarySiblingRemoved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithStrategy(OneForAll))
		o := watchLaunches(s)
		a, tmp, c := o.probe("a"), o.probe("tmp"), o.probe("c")
		o.add(t, a)
		o.add(t, tmp, WithRestart(Temporary))
		o.add(t, c)
		sv := serveBG(t, s)
		o.take(t)

		a.exit <- errors.New("boom")
		synctest.Wait()
		assert.Equal(t, []string{"exit a", "stop c", "stop tmp", "start a", "start c"}, o.take(t))
		assert.Equal(t, []string{"a:running", "c:running"}, states(s), "tmp is gone")
		assert.Equal(t, 1, tmp.starts())
		require.ErrorIs(t, s.Restart("tmp"), ErrNotFound)
		require.NoError(t, sv.stop())
	})
}

// TestStrategyOneForAllStartsStoppedSiblings: a group restart also starts
// non-temporary children that were not running: a transient child that
// exited normally and a child stopped with Terminate.
func TestStrategyOneForAllStartsStoppedSiblings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithStrategy(OneForAll))
		o := watchLaunches(s)
		a, b, c, d := o.probe("a"), o.probe("b"), o.probe("c"), o.probe("d")
		o.add(t, a)
		o.add(t, b, WithRestart(Transient))
		o.add(t, c)
		o.add(t, d)
		sv := serveBG(t, s)

		b.exit <- nil // transient, normal exit: stays stopped, no group restart
		synctest.Wait()
		require.NoError(t, s.Terminate(context.Background(), "c"))
		synctest.Wait()
		require.Equal(t, []string{"a:running", "b:stopped", "c:stopped", "d:running"}, states(s))
		o.take(t)

		a.exit <- errors.New("boom")
		synctest.Wait()
		assert.Equal(t, []string{"exit a", "stop d", "start a", "start b", "start c", "start d"}, o.take(t))
		assert.Equal(t, []string{"a:running", "b:running", "c:running", "d:running"}, states(s))
		assert.Equal(t, 2, b.starts())
		assert.Equal(t, 2, c.starts())
		require.NoError(t, sv.stop())
	})
}

// TestStrategyOneForAllNoGroupRestartWithoutRestart: the restart policy is
// applied first: a transient child exiting normally or a temporary child
// exiting at all needs no restart, so its siblings are left alone.
func TestStrategyOneForAllNoGroupRestartWithoutRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &eventLog{}
		s := newQuiet("root", WithStrategy(OneForAll))
		a, tr, tmp, c := newProbe("a", log), newProbe("tr", log), newProbe("tmp", log), newProbe("c", log)
		require.NoError(t, s.Add("a", a))
		require.NoError(t, s.Add("tr", tr, WithRestart(Transient)))
		require.NoError(t, s.Add("tmp", tmp, WithRestart(Temporary)))
		require.NoError(t, s.Add("c", c))
		sv := serveBG(t, s)
		log.take()

		tr.exit <- nil
		synctest.Wait()
		tmp.exit <- errors.New("boom")
		synctest.Wait()
		assert.Equal(t, []string{"exit tr", "exit tmp"}, log.take(), "nobody was stopped or started")
		assert.Equal(t, []string{"a:running", "tr:stopped", "c:running"}, states(s))
		assert.Equal(t, 1, a.starts())
		assert.Equal(t, 1, c.starts())
		require.NoError(t, sv.stop())
	})
}

// TestStrategyRestForOne: the exited child and those added after it are
// restarted (later ones stopped in reverse order first); earlier children,
// running or stopped, are untouched. Temporary children after it are removed.
func TestStrategyRestForOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithStrategy(RestForOne))
		o := watchLaunches(s)
		a, b, c, tmp, d := o.probe("a"), o.probe("b"), o.probe("c"), o.probe("tmp"), o.probe("d")
		o.add(t, a, WithRestart(Transient))
		o.add(t, b)
		o.add(t, c)
		o.add(t, tmp, WithRestart(Temporary))
		o.add(t, d)
		sv := serveBG(t, s)
		a.exit <- nil // a is Stopped before the failure
		synctest.Wait()
		o.take(t)

		c.exit <- errors.New("boom")
		synctest.Wait()
		assert.Equal(t, []string{"exit c", "stop d", "stop tmp", "start c", "start d"}, o.take(t))
		assert.Equal(t, []string{"a:stopped", "b:running", "c:running", "d:running"}, states(s))
		assert.Equal(t, 1, a.starts(), "an earlier stopped child is not started")
		assert.Equal(t, 1, b.starts(), "an earlier running child keeps its copy")
		assert.Equal(t, map[string]int{"a": 0, "b": 0, "c": 1, "d": 1}, restartCounts(s))

		// The last child failing restarts it alone.
		d.exit <- errors.New("boom")
		synctest.Wait()
		assert.Equal(t, []string{"exit d", "start d"}, o.take(t))

		// The first running child failing restarts all after it.
		b.exit <- errors.New("boom")
		synctest.Wait()
		assert.Equal(t, []string{"exit b", "stop d", "stop c", "start b", "start c", "start d"}, o.take(t))
		assert.Equal(t, "a:stopped", states(s)[0])
		require.NoError(t, sv.stop())
	})
}

// TestStrategyGroupRestartCountsOnce: a group restart is one restart against
// the intensity, however many children it restarts.
func TestStrategyGroupRestartCountsOnce(t *testing.T) {
	for _, st := range []Strategy{OneForAll, RestForOne} {
		t.Run(st.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				log := &eventLog{}
				s := newQuiet("root", WithStrategy(st), WithIntensity(1, time.Minute))
				a, b, c := newProbe("a", log), newProbe("b", log), newProbe("c", log)
				addProbes(t, s, a, b, c)
				sv := serveBG(t, s)
				log.take()

				a.exit <- errors.New("first")
				synctest.Wait()
				sv.stillServing(t)
				assert.Equal(t, []string{"a:running", "b:running", "c:running"}, states(s))
				assert.Equal(t, map[string]int{"a": 1, "b": 1, "c": 1}, restartCounts(s))
				log.take()

				// The one allowed restart is used: the next failure escalates.
				second := errors.New("second")
				c.exit <- second
				err := sv.returned(t)
				require.ErrorIs(t, err, ErrIntensityExceeded)
				require.ErrorIs(t, err, second)
				assert.Equal(t, []string{"exit c", "stop b", "stop a"}, log.take())
			})
		})
	}
}

// ---------------------------------------------------------------------------
// 2. Restart policies.

// TestPolicyPermanent: a permanent child is restarted after a normal exit and
// after a failure.
func TestPolicyPermanent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root")
		p := newProbe("p", nil)
		addProbes(t, s, p)
		sv := serveBG(t, s)

		p.exit <- nil
		synctest.Wait()
		assert.Equal(t, 2, p.starts(), "restarted after a nil return")
		info := childInfo(t, s, "p")
		assert.Equal(t, Running, info.State)
		assert.Equal(t, 1, info.Restarts)
		assert.NoError(t, info.LastError, "a normal exit is no failure")
		assert.Equal(t, Permanent, info.Policy)

		boom := errors.New("boom")
		p.exit <- boom
		synctest.Wait()
		assert.Equal(t, 3, p.starts(), "restarted after an error")
		info = childInfo(t, s, "p")
		assert.Equal(t, Running, info.State)
		assert.Equal(t, 2, info.Restarts)
		assert.ErrorIs(t, info.LastError, boom)
		require.NoError(t, sv.stop())
	})
}

// TestPolicyTransient: a transient child is restarted after a failure only;
// after a normal exit it is Stopped until Restart starts it.
func TestPolicyTransient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root")
		p := newProbe("p", nil)
		require.NoError(t, s.Add("p", p, WithRestart(Transient)))
		sv := serveBG(t, s)

		boom := errors.New("boom")
		p.exit <- boom
		synctest.Wait()
		assert.Equal(t, 2, p.starts(), "restarted after an error")
		assert.Equal(t, []string{"p:running"}, states(s))
		assert.ErrorIs(t, childInfo(t, s, "p").LastError, boom)

		p.exit <- nil
		synctest.Wait()
		assert.Equal(t, 2, p.starts(), "not restarted after a nil return")
		assert.Equal(t, []string{"p:stopped"}, states(s))
		assert.Equal(t, Transient, childInfo(t, s, "p").Policy)

		require.NoError(t, s.Restart("p"))
		synctest.Wait()
		assert.Equal(t, 3, p.starts())
		assert.Equal(t, []string{"p:running"}, states(s))
		assert.Equal(t, 1, childInfo(t, s, "p").Restarts, "a start by Restart is not counted")
		require.NoError(t, sv.stop())
	})
}

// TestPolicyTemporary: a temporary child is never restarted and leaves
// Children once it exits, normally or not.
func TestPolicyTemporary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root")
		ok, bad, keep := newProbe("ok", nil), newProbe("bad", nil), newProbe("keep", nil)
		require.NoError(t, s.Add("ok", ok, WithRestart(Temporary)))
		require.NoError(t, s.Add("bad", bad, WithRestart(Temporary)))
		require.NoError(t, s.Add("keep", keep))
		sv := serveBG(t, s)
		require.Equal(t, []string{"ok:running", "bad:running", "keep:running"}, states(s))

		ok.exit <- nil
		synctest.Wait()
		assert.Equal(t, []string{"bad:running", "keep:running"}, states(s))
		bad.exit <- errors.New("boom")
		synctest.Wait()
		assert.Equal(t, []string{"keep:running"}, states(s))
		assert.Equal(t, 1, ok.starts())
		assert.Equal(t, 1, bad.starts())
		require.ErrorIs(t, s.Restart("ok"), ErrNotFound)
		require.NoError(t, s.Add("ok", ok, WithRestart(Temporary)), "the name is free again")
		require.NoError(t, sv.stop())
	})
}

// TestPolicySelfCanceledIsFailure: a worker returning context.Canceled from
// its own inner call, while the supervisor did not cancel it, has failed:
// even a transient child is restarted and LastError is context.Canceled.
func TestPolicySelfCanceledIsFailure(t *testing.T) {
	for _, pol := range []RestartPolicy{Transient, Permanent} {
		t.Run(pol.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newQuiet("root")
				w := newProbe("w", nil)
				require.NoError(t, s.Add("w", w, WithRestart(pol)))
				sv := serveBG(t, s)

				w.do <- func() error {
					inner, cancel := context.WithCancel(context.Background())
					cancel()
					<-inner.Done()
					return fmt.Errorf("inner call: %w", inner.Err())
				}
				synctest.Wait()
				assert.Equal(t, 2, w.starts(), "restarted")
				info := childInfo(t, s, "w")
				assert.Equal(t, Running, info.State)
				assert.Equal(t, 1, info.Restarts)
				assert.ErrorIs(t, info.LastError, context.Canceled)

				w.do <- func() error { return context.Canceled } // bare
				synctest.Wait()
				assert.Equal(t, 3, w.starts(), "restarted")
				assert.ErrorIs(t, childInfo(t, s, "w").LastError, context.Canceled)
				require.NoError(t, sv.stop())
			})
		})
	}
}

// TestPolicyPanic: a panic is a failure recorded as a *PanicError holding the
// value and the stack; panic(err) is seen through by errors.Is.
func TestPolicyPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root")
		p := newProbe("p", nil)
		require.NoError(t, s.Add("p", p, WithRestart(Transient)))
		sv := serveBG(t, s)

		p.panicV <- "kaboom"
		synctest.Wait()
		assert.Equal(t, 2, p.starts(), "restarted after a panic")
		info := childInfo(t, s, "p")
		assert.Equal(t, Running, info.State)
		var pe *PanicError
		require.ErrorAs(t, info.LastError, &pe)
		assert.Equal(t, "kaboom", pe.Value)
		assert.NotEmpty(t, pe.Stack())
		assert.Contains(t, string(pe.Stack()), "(*probe).Serve", "the stack is the panicking goroutine's")

		sentinel := errors.New("sentinel")
		p.panicV <- sentinel
		synctest.Wait()
		assert.Equal(t, 3, p.starts())
		info = childInfo(t, s, "p")
		assert.ErrorIs(t, info.LastError, sentinel)
		pe = nil
		require.ErrorAs(t, info.LastError, &pe)
		assert.Equal(t, sentinel, pe.Value)
		require.NoError(t, sv.stop())
	})
}

// TestPolicyGoexit: runtime.Goexit in a worker is a failure recorded as
// ErrGoexit, so even a transient child is restarted.
func TestPolicyGoexit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root")
		w := newProbe("w", nil)
		require.NoError(t, s.Add("w", w, WithRestart(Transient)))
		sv := serveBG(t, s)

		w.do <- func() error {
			runtime.Goexit()
			return nil
		}
		synctest.Wait()
		assert.Equal(t, 2, w.starts(), "restarted")
		info := childInfo(t, s, "w")
		assert.Equal(t, Running, info.State)
		assert.Equal(t, 1, info.Restarts)
		assert.ErrorIs(t, info.LastError, ErrGoexit)
		require.NoError(t, sv.stop())
	})
}

// ---------------------------------------------------------------------------
// 3. Restart intensity.

// TestIntensityExactlyMaxAllowed: max restarts within the period are allowed;
// the next one escalates: every child is stopped in reverse start order and
// Serve returns an error matching ErrIntensityExceeded and the last failure.
func TestIntensityExactlyMaxAllowed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &eventLog{}
		s := newQuiet("root", WithIntensity(2, 10*time.Second))
		a, b, c, d := newProbe("a", log), newProbe("b", log), newProbe("c", log), newProbe("d", log)
		addProbes(t, s, a, b, c, d)
		sv := serveBG(t, s)
		log.take()

		err1, err2, err3 := errors.New("err1"), errors.New("err2"), errors.New("err3")
		c.exit <- err1
		synctest.Wait()
		a.exit <- err2
		synctest.Wait()
		sv.stillServing(t)
		assert.Equal(t, []string{"a:running", "b:running", "c:running", "d:running"}, states(s))
		log.take()

		c.exit <- err3
		err := sv.returned(t)
		require.ErrorIs(t, err, ErrIntensityExceeded)
		require.ErrorIs(t, err, err3, "the error reaches the last failure")
		assert.Equal(t, []string{"exit c", "stop d", "stop b", "stop a"}, log.take(), "children stopped in reverse start order")
		assert.Equal(t, []string{"a:stopped", "b:stopped", "c:stopped", "d:stopped"}, states(s))
		assert.Equal(t, 2, c.starts(), "c was not started a third time")
		for _, p := range []*probe{a, b, c, d} {
			running, _, _ := p.counts()
			assert.Zero(t, running, "%s returned before Serve did", p.name)
		}
	})
}

// TestIntensityPanicReachable: the escalation error reaches a *PanicError of
// the last failing child; maxRestarts 0 escalates on the first failure.
func TestIntensityPanicReachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &eventLog{}
		s := newQuiet("root", WithIntensity(0, time.Second))
		a, b := newProbe("a", log), newProbe("b", log)
		addProbes(t, s, a, b)
		sv := serveBG(t, s)
		log.take()

		a.panicV <- "kaboom"
		err := sv.returned(t)
		require.ErrorIs(t, err, ErrIntensityExceeded)
		var pe *PanicError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "kaboom", pe.Value)
		assert.Equal(t, []string{"panic a", "stop b"}, log.take())
		assert.Equal(t, 1, a.starts(), "never restarted")
	})
}

// TestIntensityZeroNormalExit: with maxRestarts 0 even a permanent child's
// normal exit, which needs a restart, escalates.
func TestIntensityZeroNormalExit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithIntensity(0, time.Hour))
		p := newProbe("p", nil)
		addProbes(t, s, p)
		sv := serveBG(t, s)
		p.exit <- nil
		err := sv.returned(t)
		require.ErrorIs(t, err, ErrIntensityExceeded)
		assert.Equal(t, 1, p.starts())
	})
}

// TestIntensityWindowBoundary: restarts at t and t+period fall in the same
// window (the boundary is included); one nanosecond later they do not.
func TestIntensityWindowBoundary(t *testing.T) {
	cases := []struct {
		name     string
		gap      time.Duration
		escalate bool
	}{
		{"exactly period", time.Second, true},
		{"just before period", time.Second - time.Nanosecond, true},
		{"just past period", time.Second + time.Nanosecond, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newQuiet("root", WithIntensity(1, time.Second))
				p := newProbe("p", nil)
				addProbes(t, s, p)
				sv := serveBG(t, s)
				t0 := time.Now()

				p.exit <- errors.New("first") // restart at t0: allowed
				synctest.Wait()
				sv.stillServing(t)

				time.Sleep(tc.gap)
				synctest.Wait()
				require.Equal(t, tc.gap, time.Since(t0))
				last := errors.New("second")
				p.exit <- last
				synctest.Wait()
				if tc.escalate {
					err := sv.returned(t)
					require.ErrorIs(t, err, ErrIntensityExceeded)
					require.ErrorIs(t, err, last)
					assert.Equal(t, 2, p.starts())
					return
				}
				sv.stillServing(t)
				assert.Equal(t, 3, p.starts())
				// The restart just made fills the window again.
				p.exit <- errors.New("third")
				require.ErrorIs(t, sv.returned(t), ErrIntensityExceeded)
			})
		})
	}
}

// TestIntensitySlidingWindow: the window slides with each restart rather than
// being reset after a fixed period from the first one.
func TestIntensitySlidingWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithIntensity(2, 10*time.Second))
		p := newProbe("p", nil)
		addProbes(t, s, p)
		sv := serveBG(t, s)

		fail := func(after time.Duration) {
			time.Sleep(after)
			p.exit <- errors.New("boom")
			synctest.Wait()
		}
		fail(0)               // t=0
		fail(6 * time.Second) // t=6
		sv.stillServing(t)
		fail(5 * time.Second) // t=11: the t=0 restart left the window; t=6 is in it
		sv.stillServing(t)
		fail(time.Second) // t=12: t=6 and t=11 are in the window
		require.ErrorIs(t, sv.returned(t), ErrIntensityExceeded)
		assert.Equal(t, 4, p.starts())
	})
}

// TestIntensityDefault: without WithIntensity, 3 restarts in 5 seconds are
// allowed and the 4th escalates; the period's boundary counts.
func TestIntensityDefault(t *testing.T) {
	cases := []struct {
		name     string
		lastAt   time.Duration // when the 4th failure happens; the first three are at t=0
		escalate bool
	}{
		{"all at once", 0, true},
		{"at the period", 5 * time.Second, true},
		{"past the period", 5*time.Second + time.Nanosecond, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				log := &eventLog{}
				s := newQuiet("root")
				a, b := newProbe("a", log), newProbe("b", log)
				addProbes(t, s, a, b)
				sv := serveBG(t, s)
				for range 3 {
					a.exit <- errors.New("boom")
					synctest.Wait()
				}
				sv.stillServing(t)
				assert.Equal(t, 4, a.starts())
				log.take()

				time.Sleep(tc.lastAt)
				a.exit <- errors.New("fourth")
				synctest.Wait()
				if tc.escalate {
					err := sv.returned(t)
					require.ErrorIs(t, err, ErrIntensityExceeded)
					assert.Equal(t, []string{"exit a", "stop b"}, log.take())
					return
				}
				sv.stillServing(t)
				assert.Equal(t, 5, a.starts())
				require.NoError(t, sv.stop())
			})
		})
	}
}

// ---------------------------------------------------------------------------
// 4. Significant children.

// TestSignificantAnyTransientNormalExit: under AnySignificant a significant
// transient child exiting normally shuts the supervisor down: the others are
// stopped in reverse start order and Serve returns nil.
func TestSignificantAnyTransientNormalExit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &eventLog{}
		s := newQuiet("root", WithAutoShutdown(AnySignificant))
		a, sig, c := newProbe("a", log), newProbe("sig", log), newProbe("c", log)
		require.NoError(t, s.Add("a", a))
		require.NoError(t, s.Add("sig", sig, WithRestart(Transient), WithSignificant()))
		require.NoError(t, s.Add("c", c))
		assert.True(t, childInfo(t, s, "sig").Significant)
		assert.False(t, childInfo(t, s, "a").Significant)
		sv := serveBG(t, s)
		log.take()

		sig.exit <- nil
		require.NoError(t, sv.returned(t))
		assert.Equal(t, []string{"exit sig", "stop c", "stop a"}, log.take())
		assert.Equal(t, []string{"a:stopped", "sig:stopped", "c:stopped"}, states(s))
	})
}

// TestSignificantAnyTransientFailureRestarts: a significant transient child
// that fails is restarted; no shutdown.
func TestSignificantAnyTransientFailureRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithAutoShutdown(AnySignificant))
		a, sig := newProbe("a", nil), newProbe("sig", nil)
		require.NoError(t, s.Add("a", a))
		require.NoError(t, s.Add("sig", sig, WithRestart(Transient), WithSignificant()))
		sv := serveBG(t, s)

		sig.exit <- errors.New("boom")
		synctest.Wait()
		sv.stillServing(t)
		assert.Equal(t, 2, sig.starts())
		assert.Equal(t, []string{"a:running", "sig:running"}, states(s))
		require.NoError(t, sv.stop())
	})
}

// TestSignificantAnyTemporaryError: a significant temporary child exiting
// with an error triggers the shutdown, and Serve returns nil.
func TestSignificantAnyTemporaryError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &eventLog{}
		s := newQuiet("root", WithAutoShutdown(AnySignificant))
		a, sig, c := newProbe("a", log), newProbe("sig", log), newProbe("c", log)
		require.NoError(t, s.Add("a", a))
		require.NoError(t, s.Add("sig", sig, WithRestart(Temporary), WithSignificant()))
		require.NoError(t, s.Add("c", c))
		sv := serveBG(t, s)
		log.take()

		sig.exit <- errors.New("boom")
		require.NoError(t, sv.returned(t))
		assert.Equal(t, []string{"exit sig", "stop c", "stop a"}, log.take())
		assert.Equal(t, []string{"a:stopped", "c:stopped"}, states(s))
	})
}

// TestSignificantAll: under AllSignificant the supervisor shuts down only
// when the last significant child has exited without being restarted.
func TestSignificantAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &eventLog{}
		s := newQuiet("root", WithAutoShutdown(AllSignificant))
		s1, s2, a := newProbe("s1", log), newProbe("s2", log), newProbe("a", log)
		require.NoError(t, s.Add("s1", s1, WithRestart(Transient), WithSignificant()))
		require.NoError(t, s.Add("s2", s2, WithRestart(Temporary), WithSignificant()))
		require.NoError(t, s.Add("a", a))
		sv := serveBG(t, s)
		log.take()

		s1.exit <- errors.New("boom") // restarted
		synctest.Wait()
		sv.stillServing(t)
		s1.exit <- nil // not restarted, but s2 still runs
		synctest.Wait()
		sv.stillServing(t)
		assert.Equal(t, []string{"s1:stopped", "s2:running", "a:running"}, states(s))
		log.take()

		s2.exit <- errors.New("boom") // the last significant child is gone
		require.NoError(t, sv.returned(t))
		assert.Equal(t, []string{"exit s2", "stop a"}, log.take())
		assert.Equal(t, []string{"s1:stopped", "a:stopped"}, states(s))
	})
}

// TestSignificantNotByTerminate: stopping a significant child with Terminate
// never triggers automatic shutdown.
func TestSignificantNotByTerminate(t *testing.T) {
	for _, as := range []AutoShutdown{AnySignificant, AllSignificant} {
		t.Run(as.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newQuiet("root", WithAutoShutdown(as))
				tr, tmp, a := newProbe("tr", nil), newProbe("tmp", nil), newProbe("a", nil)
				require.NoError(t, s.Add("tr", tr, WithRestart(Transient), WithSignificant()))
				require.NoError(t, s.Add("tmp", tmp, WithRestart(Temporary), WithSignificant()))
				require.NoError(t, s.Add("a", a))
				sv := serveBG(t, s)

				require.NoError(t, s.Terminate(context.Background(), "tr"))
				synctest.Wait()
				sv.stillServing(t)
				require.NoError(t, s.Terminate(context.Background(), "tmp"))
				synctest.Wait()
				sv.stillServing(t)
				assert.Equal(t, []string{"tr:stopped", "a:running"}, states(s), "no significant child runs, yet no shutdown")

				require.NoError(t, s.Restart("tr"))
				synctest.Wait()
				tr.exit <- nil // an exit by itself does trigger it
				require.NoError(t, sv.returned(t))
				assert.Equal(t, []string{"tr:stopped", "a:stopped"}, states(s))
			})
		})
	}
}

// TestSignificantNotByGroupRestart: significant siblings stopped by a group
// restart do not trigger automatic shutdown; a temporary one is removed.
func TestSignificantNotByGroupRestart(t *testing.T) {
	for _, st := range []Strategy{OneForAll, RestForOne} {
		for _, as := range []AutoShutdown{AnySignificant, AllSignificant} {
			t.Run(st.String()+"/"+as.String(), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					s := newQuiet("root", WithStrategy(st), WithAutoShutdown(as))
					o := watchLaunches(s)
					a, sig, tmp := o.probe("a"), o.probe("sig"), o.probe("tmp")
					o.add(t, a)
					o.add(t, sig, WithRestart(Transient), WithSignificant())
					o.add(t, tmp, WithRestart(Temporary), WithSignificant())
					sv := serveBG(t, s)
					o.take(t)

					a.exit <- errors.New("boom")
					synctest.Wait()
					sv.stillServing(t)
					assert.Equal(t, []string{"exit a", "stop tmp", "stop sig", "start a", "start sig"}, o.take(t))
					assert.Equal(t, []string{"a:running", "sig:running"}, states(s))
					require.NoError(t, sv.stop())
				})
			})
		}
	}
}

// ---------------------------------------------------------------------------
// 5. Bad input.

// TestBadInputAdd: Add rejects bad names, nil workers and bad child options
// with ErrInvalid, before and while serving, and adds nothing.
func TestBadInputAdd(t *testing.T) {
	type addCase struct {
		name   string
		child  string
		worker Worker
		opts   []ChildOption
		auto   AutoShutdown
	}
	good := WorkerFunc(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	cases := []addCase{
		{name: "empty name", child: "", worker: good},
		{name: "slash in name", child: "a/b", worker: good},
		{name: "nil worker", child: "x", worker: nil},
		{name: "nil WorkerFunc", child: "x", worker: WorkerFunc(nil)},
		{name: "nil *Supervisor", child: "x", worker: (*Supervisor)(nil)},
		{name: "negative shutdown timeout", child: "x", worker: good, opts: []ChildOption{WithShutdownTimeout(-time.Nanosecond)}},
		{name: "unknown restart policy", child: "x", worker: good, opts: []ChildOption{WithRestart(RestartPolicy(9))}},
		{name: "significant permanent", child: "x", worker: good, opts: []ChildOption{WithSignificant()}, auto: AnySignificant},
		{name: "significant explicit permanent", child: "x", worker: good, opts: []ChildOption{WithRestart(Permanent), WithSignificant()}, auto: AllSignificant},
		{name: "significant under noAutoShutdown", child: "x", worker: good, opts: []ChildOption{WithRestart(Transient), WithSignificant()}},
		{name: "nil ChildOption", child: "x", worker: good, opts: []ChildOption{nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newQuiet("root", WithAutoShutdown(tc.auto))
				var err error
				require.NotPanics(t, func() { err = s.Add(tc.child, tc.worker, tc.opts...) })
				require.ErrorIs(t, err, ErrInvalid, "before Serve")
				assert.Empty(t, s.Children())
				require.ErrorIs(t, s.Serve(t.Context()), ErrInvalid, "the refused Add fails the next Serve")

				s = newQuiet("root", WithAutoShutdown(tc.auto))
				sv := serveBG(t, s)
				require.NotPanics(t, func() { err = s.Add(tc.child, tc.worker, tc.opts...) })
				require.ErrorIs(t, err, ErrInvalid, "while serving")
				assert.Empty(t, s.Children())
				require.NoError(t, s.Add("ok", good), "the supervisor still works")
				require.NoError(t, sv.stop())
			})
		})
	}
}

// TestBadInputAddSelf: a supervisor cannot supervise itself.
func TestBadInputAddSelf(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root")
		require.ErrorIs(t, s.Add("self", s), ErrInvalid)
		assert.Empty(t, s.Children())
	})
}

// TestBadInputDuplicate: a taken name gives ErrAlreadyExists, before and while
// serving, and the first child is kept.
func TestBadInputDuplicate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root")
		p, q := newProbe("p", nil), newProbe("q", nil)
		require.NoError(t, s.Add("p", p))
		require.ErrorIs(t, s.Add("p", q), ErrAlreadyExists)
		sv := serveBG(t, s)
		require.ErrorIs(t, s.Add("p", q), ErrAlreadyExists)
		synctest.Wait()
		assert.Equal(t, []string{"p:running"}, states(s))
		assert.Equal(t, 1, p.starts())
		assert.Zero(t, q.starts(), "the rejected worker never ran")
		require.NoError(t, sv.stop())
	})
}

// TestBadInputNew: a bad name or option given to New makes Serve return an
// ErrInvalid error at once, starting no child.
func TestBadInputNew(t *testing.T) {
	cases := []struct {
		name string
		sup  string
		opts []Option
	}{
		{"negative maxRestarts", "root", []Option{WithIntensity(-1, time.Second)}},
		{"zero period", "root", []Option{WithIntensity(1, 0)}},
		{"negative period", "root", []Option{WithIntensity(1, -time.Second)}},
		{"unknown strategy", "root", []Option{WithStrategy(Strategy(7))}},
		{"unknown auto shutdown", "root", []Option{WithAutoShutdown(AutoShutdown(5))}},
		{"empty name", "", nil},
		{"slash in name", "a/b", nil},
		{"nil option", "root", []Option{nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var s *Supervisor
				require.NotPanics(t, func() { s = newQuiet(tc.sup, tc.opts...) })
				p := newProbe("p", nil)
				require.NoError(t, s.Add("p", p))
				err := serveNow(t, s)
				require.ErrorIs(t, err, ErrInvalid)
				synctest.Wait()
				assert.Zero(t, p.starts(), "no child was started")
				assert.Equal(t, []string{"p:stopped"}, states(s))
			})
		})
	}
}

// TestBadInputNotFound: Terminate, Restart and Remove of an unknown name give
// ErrNotFound, before and while serving.
func TestBadInputNotFound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root")
		p := newProbe("p", nil)
		require.NoError(t, s.Add("p", p))
		check := func(when string) {
			require.ErrorIs(t, s.Terminate(context.Background(), "nope"), ErrNotFound, when)
			require.ErrorIs(t, s.Restart("nope"), ErrNotFound, when)
			require.ErrorIs(t, s.Remove(context.Background(), "nope"), ErrNotFound, when)
		}
		check("before Serve")
		sv := serveBG(t, s)
		check("while serving")
		synctest.Wait()
		assert.Equal(t, []string{"p:running"}, states(s))
		require.NoError(t, sv.stop())
		check("after Serve")
	})
}

// TestBadInputRestartRunning: Restart of a running child gives ErrNotStopped and
// starts no second copy.
func TestBadInputRestartRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root")
		p := newProbe("p", nil)
		require.NoError(t, s.Add("p", p))
		sv := serveBG(t, s)
		require.ErrorIs(t, s.Restart("p"), ErrNotStopped)
		synctest.Wait()
		running, max, starts := p.counts()
		assert.Equal(t, 1, running)
		assert.Equal(t, 1, max)
		assert.Equal(t, 1, starts)
		require.NoError(t, sv.stop())
	})
}

// ---------------------------------------------------------------------------
// 6. Start order.

// TestStartOrder: Serve starts children in the order they were added,
// Children lists them in that order, a child added while serving starts at
// once, and shutdown goes in reverse.
func TestStartOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root")
		o := watchLaunches(s)
		for _, name := range []string{"zeta", "alpha", "mid"} {
			o.add(t, o.probe(name))
		}
		assert.Equal(t, []string{"zeta:stopped", "alpha:stopped", "mid:stopped"}, states(s))
		assert.Empty(t, o.take(t), "nothing starts before Serve")

		sv := serveBG(t, s)
		assert.Equal(t, []string{"start zeta", "start alpha", "start mid"}, o.take(t))
		assert.Equal(t, []string{"zeta", "alpha", "mid"}, childNames(s))

		o.add(t, o.probe("beta"))
		synctest.Wait()
		assert.Equal(t, []string{"start beta"}, o.take(t), "a child added while serving starts at once")
		assert.Equal(t, []string{"zeta:running", "alpha:running", "mid:running", "beta:running"}, states(s))

		require.NoError(t, sv.stop())
		assert.Equal(t, []string{"stop beta", "stop mid", "stop alpha", "stop zeta"}, o.take(t))
	})
}

// ---------------------------------------------------------------------------
// 7. Context.

type ctxKey struct{}

// TestContextValuePropagates: a child's context carries the values of Serve's
// context, in its first copy and after a restart.
func TestContextValuePropagates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root")
		w := newProbe("w", nil)
		require.NoError(t, s.Add("w", w))
		ctx, cancel := context.WithCancel(context.WithValue(t.Context(), ctxKey{}, "v"))
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx) }()
		synctest.Wait()

		c1 := w.copyContext(t, 0)
		assert.Equal(t, "v", c1.Value(ctxKey{}))
		w.exit <- errors.New("boom")
		synctest.Wait()
		c2 := w.copyContext(t, 1)
		assert.Equal(t, "v", c2.Value(ctxKey{}), "the restarted copy too")
		assert.NoError(t, c2.Err())

		cancel()
		require.NoError(t, <-done)
		assert.ErrorIs(t, c2.Err(), context.Canceled)
	})
}

// TestContextCancelStopsOneAtATime: cancelling Serve's context does not
// cancel the children directly: the supervisor cancels them one at a time in
// reverse start order, so while c is being stopped a and b still run with
// live contexts.
func TestContextCancelStopsOneAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &eventLog{}
		s := newQuiet("root")
		a, b, c := newProbe("a", log), newProbe("b", log), newProbe("c", log)
		c.setIgnore(true)
		require.NoError(t, s.Add("a", a))
		require.NoError(t, s.Add("b", b))
		require.NoError(t, s.Add("c", c, WithShutdownTimeout(time.Minute)))
		sv := serveBG(t, s)
		log.take()
		ctxA, ctxB, ctxC := a.copyContext(t, 0), b.copyContext(t, 0), c.copyContext(t, 0)

		sv.cancel()
		synctest.Wait()
		assert.Error(t, ctxC.Err(), "c is being stopped")
		assert.NoError(t, ctxB.Err(), "b is not cancelled while c is being stopped")
		assert.NoError(t, ctxA.Err(), "a is not cancelled while c is being stopped")
		assert.Equal(t, []string{"a:running", "b:running", "c:stopping"}, states(s))
		assert.Empty(t, log.take(), "nobody stopped yet")
		sv.stillServing(t)

		close(c.release)
		require.NoError(t, <-sv.done)
		assert.Equal(t, []string{"stop c", "stop b", "stop a"}, log.take())
		assert.Error(t, ctxA.Err())
		assert.Error(t, ctxB.Err())
	})
}

// TestContextChildTerminatesItself: a child that calls Terminate on itself
// with its own context gets nil at once (the documented self-call path) and
// ends Stopped.
func TestContextChildTerminatesItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root")
		res := make(chan error, 1)
		w := WorkerFunc(func(ctx context.Context) error {
			start := time.Now()
			err := s.Terminate(ctx, "w")
			assert.Zero(t, time.Since(start), "Terminate on itself returns at once")
			res <- err
			<-ctx.Done()
			return nil
		})
		require.NoError(t, s.Add("w", w))
		sv := serveBG(t, s)
		require.NoError(t, <-res)
		synctest.Wait()
		assert.Equal(t, []string{"w:stopped"}, states(s))
		require.NoError(t, sv.stop())
	})
}
