package arbor

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadinessOrdersStarts: with WithReadiness, the next child starts only
// once the child before it signalled readiness.
func TestReadinessOrdersStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		s := New("s", WithLogger(nil))
		a, b, c := slowStarter("a", 2*time.Second), slowStarter("b", time.Second), newProbe("c", nil)
		require.NoError(t, s.Add("a", a, WithReadiness(0)))
		require.NoError(t, s.Add("b", b, WithReadiness(0)))
		require.NoError(t, s.Add("c", c))
		sv := serveBG(t, s)
		assert.Equal(t, []string{"a:starting", "b:starting", "c:starting"}, states(s), "b and c wait for a")
		assert.Empty(t, b.startsSince(t0))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"a:running", "b:starting", "c:starting"}, states(s))
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"a:running", "b:running", "c:running"}, states(s), "c is ready when it starts")
		assert.Equal(t, []time.Duration{0}, a.startsSince(t0))
		assert.Equal(t, []time.Duration{2 * time.Second}, b.startsSince(t0))
		assert.Equal(t, []time.Duration{3 * time.Second}, c.startsSince(t0))
		require.NoError(t, sv.stop())
	})
}

// TestReadinessGroupRestart: a group restart waits for readiness too.
func TestReadinessGroupRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		s := New("s", WithStrategy(OneForAll), WithLogger(nil))
		a := slowStarter("a", time.Second)
		require.NoError(t, s.Add("a", a, WithReadiness(0)))
		b := newProbe("b", nil)
		require.NoError(t, s.Add("b", b))
		sv := serveBG(t, s)
		time.Sleep(time.Second)
		synctest.Wait()
		_, _, starts := b.counts()
		require.Equal(t, 1, starts)
		b.exit <- errors.New("boom")
		synctest.Wait()
		assert.Equal(t, []string{"a:starting", "b:starting"}, states(s))
		_, _, starts = b.counts()
		assert.Equal(t, 1, starts, "b waits for a's readiness")
		time.Sleep(time.Second)
		synctest.Wait()
		_, _, starts = b.counts()
		assert.Equal(t, 2, starts)
		assert.Equal(t, []string{"a:running", "b:running"}, states(s))
		assert.Equal(t, []time.Duration{0, time.Second}, a.startsSince(t0))
		require.NoError(t, sv.stop())
	})
}

// TestStartTimeout: a child not ready within its start timeout is cancelled
// with ErrStartTimeout as the cause, fails with it, and is restarted first;
// the children after it keep waiting.
func TestStartTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		// The first copy of a never signals readiness; the second comes up
		// at once.
		a := newProbe("a", nil).each(copyPlan{ready: true}).firstCopies(copyPlan{})
		b := newProbe("b", nil)
		s := New("s", WithLogger(nil))
		require.NoError(t, s.Add("a", a, WithReadiness(3*time.Second)))
		require.NoError(t, s.Add("b", b))
		sv := serveBG(t, s)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		assert.Equal(t, []time.Duration{0, 3 * time.Second}, a.startsSince(t0))
		assert.Equal(t, []time.Duration{3 * time.Second}, b.startsSince(t0), "b starts once the restarted a is ready")
		info := s.Children()[0]
		assert.Equal(t, Running, info.State)
		assert.Equal(t, 1, info.Restarts)
		require.ErrorIs(t, info.LastError, ErrStartTimeout)
		causes := a.causesSeen()
		require.Len(t, causes, 1)
		require.ErrorIs(t, causes[0], ErrStartTimeout)
		require.NoError(t, sv.stop())
	})
}

// TestStartTimeoutExhaustsIntensity: a child that never becomes ready fails
// at every start until the intensity is exceeded; the error says why.
func TestStartTimeoutExhaustsIntensity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		s := New("s", WithIntensity(2, time.Minute), WithLogger(nil))
		a, b := newProbe("a", nil), newProbe("b", nil)
		require.NoError(t, s.Add("a", a, WithReadiness(time.Second)))
		require.NoError(t, s.Add("b", b))
		err := s.Serve(t.Context())
		require.ErrorIs(t, err, ErrIntensityExceeded)
		require.ErrorIs(t, err, ErrStartTimeout)
		assert.Len(t, a.startsSince(t0), 3)
		assert.Empty(t, b.startsSince(t0), "b never starts: a was never ready")
	})
}

// TestReadinessWaitStaysResponsive: while the supervisor waits for a child's
// readiness, Children, Terminate, Remove, Restart and shutdown all work.
func TestReadinessWaitStaysResponsive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		s := New("s", WithLogger(nil))
		a, b, c := newProbe("a", nil), newProbe("b", nil), newProbe("c", nil)
		require.NoError(t, s.Add("a", a, WithReadiness(0)))
		require.NoError(t, s.Add("b", b))
		require.NoError(t, s.Add("c", c))
		sv := serveBG(t, s)
		assert.Equal(t, []string{"a:starting", "b:starting", "c:starting"}, states(s))
		require.NoError(t, s.Terminate(context.Background(), "b"), "a queued child stops at once")
		require.NoError(t, s.Remove(context.Background(), "c"))
		assert.Equal(t, []string{"a:starting", "b:stopped"}, states(s))
		require.ErrorIs(t, s.Restart("a"), ErrNotStopped)
		require.NoError(t, s.Restart("b"), "queued again behind a")
		assert.Equal(t, []string{"a:starting", "b:starting"}, states(s))
		require.NoError(t, s.Terminate(context.Background(), "a"), "stopping the child waited for lets the others start")
		synctest.Wait()
		assert.Equal(t, []string{"a:stopped", "b:running"}, states(s))
		assert.Len(t, b.startsSince(t0), 1)
		assert.Empty(t, c.startsSince(t0))
		require.NoError(t, s.Restart("a"))
		synctest.Wait()
		assert.Equal(t, []string{"a:starting", "b:running"}, states(s))
		require.NoError(t, sv.stop(), "shutdown does not wait for readiness")
		assert.Equal(t, []string{"a:stopped", "b:stopped"}, states(s))
	})
}

// TestReadinessShutdownDropsQueue: children waiting in the start queue never
// start once shutdown begins.
func TestReadinessShutdownDropsQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		s := New("s", WithLogger(nil))
		b := newProbe("b", nil)
		require.NoError(t, s.Add("a", slowStarter("a", time.Hour), WithReadiness(0)))
		require.NoError(t, s.Add("b", b, WithRestart(Temporary)))
		sv := serveBG(t, s)
		require.NoError(t, sv.stop())
		assert.Empty(t, b.startsSince(t0))
		assert.Equal(t, []string{"a:stopped"}, states(s), "the temporary child is forgotten")
	})
}

// TestReadyDerivedContexts: Ready works on contexts derived from the child's,
// counts once per copy, and does nothing on other contexts.
func TestReadyDerivedContexts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		Ready(context.Background()) // no supervisor: nothing happens
		Heartbeat(context.Background())
		type key struct{}
		s := New("s", WithLogger(nil))
		w := WorkerFunc(func(ctx context.Context) error {
			ctx, cancel := context.WithCancel(context.WithValue(ctx, key{}, 1))
			defer cancel()
			Ready(ctx)
			Ready(ctx)
			<-ctx.Done()
			return nil
		})
		require.NoError(t, s.Add("a", w, WithReadiness(0)))
		require.NoError(t, s.Add("b", newProbe("b", nil)))
		sv := serveBG(t, s)
		assert.Equal(t, []string{"a:running", "b:running"}, states(s))
		require.NoError(t, sv.stop())
	})
}

// TestNestedSupervisorReady: a nested supervisor is Starting until all its
// children are ready, and a parent can wait for it.
func TestNestedSupervisorReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		db := New("db", WithLogger(nil))
		require.NoError(t, db.Add("conn", slowStarter("conn", 2*time.Second), WithReadiness(0)))
		require.NoError(t, db.Add("cache", newProbe("cache", nil)))
		root := New("root", WithLogger(nil))
		api := newProbe("api", nil)
		require.NoError(t, root.Add("db", db, WithReadiness(0)))
		require.NoError(t, root.Add("api", api))
		sv := serveBG(t, root)
		assert.Equal(t, []string{"db:starting", "api:starting"}, states(root))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"db:running", "api:running"}, states(root))
		assert.Equal(t, []time.Duration{2 * time.Second}, api.startsSince(t0))
		require.NoError(t, sv.stop())
	})
}

// TestNestedSupervisorTrackedWithoutWaiting: without WithReadiness the parent
// does not wait for a nested supervisor, but still shows it Starting.
func TestNestedSupervisorTrackedWithoutWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := New("db", WithLogger(nil))
		require.NoError(t, db.Add("conn", slowStarter("conn", time.Second), WithReadiness(0)))
		root := New("root", WithLogger(nil))
		require.NoError(t, root.Add("db", db))
		require.NoError(t, root.Add("api", newProbe("api", nil)))
		sv := serveBG(t, root)
		assert.Equal(t, []string{"db:starting", "api:running"}, states(root))
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"db:running", "api:running"}, states(root))
		require.NoError(t, sv.stop())
	})
}

// TestHeartbeatNotFiring: a child that beats within its period is left alone.
func TestHeartbeatNotFiring(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newProbe("b", nil).each(copyPlan{beatEvery: 900 * time.Millisecond, beats: forever})
		s := New("s", WithLogger(nil))
		require.NoError(t, s.Add("b", b, WithHeartbeat(time.Second)))
		sv := serveBG(t, s)
		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Equal(t, 1, b.starts())
		assert.Empty(t, b.causesSeen())
		require.NoError(t, sv.stop())
	})
}

// TestHeartbeatFires: a child that stops beating is cancelled a whole period
// after its last heartbeat with ErrHung as the cause, fails with it and is
// restarted; the new copy beats again and is left alone.
func TestHeartbeatFires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Every copy beats every 0.5 s, but the first one only three times.
		b := newProbe("b", nil).
			each(copyPlan{beatEvery: 500 * time.Millisecond, beats: forever}).
			firstCopies(copyPlan{beatEvery: 500 * time.Millisecond, beats: 3})
		s := New("s", WithLogger(nil))
		require.NoError(t, s.Add("b", b, WithHeartbeat(time.Second)))
		sv := serveBG(t, s)
		// Beats at 0.5, 1.0 and 1.5 s; the watchdog fires at 2.5 s.
		time.Sleep(2499 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, 1, b.starts())
		require.Empty(t, b.causesSeen())
		time.Sleep(time.Millisecond)
		synctest.Wait()
		require.Equal(t, 2, b.starts())
		causes := b.causesSeen()
		require.Len(t, causes, 1)
		require.ErrorIs(t, causes[0], ErrHung)
		info := s.Children()[0]
		assert.Equal(t, Running, info.State)
		assert.Equal(t, 1, info.Restarts)
		require.ErrorIs(t, info.LastError, ErrHung)
		time.Sleep(time.Minute) // heartbeats resumed with the new copy
		synctest.Wait()
		assert.Equal(t, 2, b.starts())
		require.NoError(t, sv.stop())
	})
}

// TestHeartbeatWatchStartsAtReadiness: the watchdog is armed when the child
// becomes ready, not when it starts.
func TestHeartbeatWatchStartsAtReadiness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := slowStarter("w", 5*time.Second) // a long start without heartbeats
		s := New("s", WithLogger(nil))
		require.NoError(t, s.Add("w", w, WithReadiness(0), WithHeartbeat(time.Second)))
		sv := serveBG(t, s)
		time.Sleep(5*time.Second + 999*time.Millisecond)
		synctest.Wait()
		assert.Equal(t, []string{"w:running"}, states(s))
		time.Sleep(time.Millisecond)
		synctest.Wait()
		require.ErrorIs(t, w.lastCause(), ErrHung)
		require.NoError(t, sv.stop())
	})
}

// TestHeartbeatHungThenStuck: a hung child that ignores cancellation is
// declared stuck after its shutdown timeout, never runs twice, and is
// restarted once it returns.
func TestHeartbeatHungThenStuck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The first copy sends no heartbeat and ignores its cancellation
		// until released; later copies beat every second.
		b := newProbe("b", nil).
			each(copyPlan{beatEvery: time.Second, beats: forever}).
			firstCopies(copyPlan{ignore: true})
		s := New("s", WithLogger(nil))
		require.NoError(t, s.Add("b", b, WithHeartbeat(time.Second), WithShutdownTimeout(2*time.Second)))
		sv := serveBG(t, s)
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"b:stopping"}, states(s))
		h := s.Health(t.Context())
		assert.True(t, h.Live, "hung but not stuck yet")
		assert.False(t, h.Ready)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"b:stuck"}, states(s))
		h = s.Health(t.Context())
		assert.False(t, h.Live)
		assert.Equal(t, Check{Path: "s/b", Reason: "stuck", Err: h.Checks[1].Err}, h.Checks[1])
		require.ErrorIs(t, h.Checks[1].Err, ErrStuck)
		assert.Equal(t, 1, b.starts(), "no second copy while the first runs")
		close(b.release)
		synctest.Wait()
		assert.Equal(t, 2, b.starts())
		info := s.Children()[0]
		assert.Equal(t, Running, info.State)
		require.ErrorIs(t, info.LastError, ErrHung)
		assert.True(t, s.Health(t.Context()).Live)
		require.NoError(t, sv.stop())
	})
}

// TestHeartbeatCountsAgainstIntensity: repeated hangs exhaust the restart
// intensity like any failure.
func TestHeartbeatCountsAgainstIntensity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newProbe("w", nil)
		s := New("s", WithIntensity(2, time.Minute), WithLogger(nil))
		require.NoError(t, s.Add("w", w, WithHeartbeat(time.Second)))
		start := time.Now()
		err := s.Serve(t.Context())
		require.ErrorIs(t, err, ErrIntensityExceeded)
		require.ErrorIs(t, err, ErrHung)
		assert.Equal(t, 3*time.Second, time.Since(start))
	})
}

// TestHeartbeatWithBackoff: a hang is a failure that backoff delays.
func TestHeartbeatWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The first copy sends no heartbeat; later copies beat every second.
		b := newProbe("b", nil).
			each(copyPlan{beatEvery: time.Second, beats: forever}).
			firstCopies(copyPlan{})
		s := New("s", WithLogger(nil), WithBackoff(ConstantBackoff(5*time.Second)))
		require.NoError(t, s.Add("b", b, WithHeartbeat(time.Second)))
		sv := serveBG(t, s)
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"b:restarting"}, states(s))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"b:running"}, states(s))
		require.NoError(t, sv.stop())
	})
}

// TestReadinessOptionsInvalid: bad readiness and heartbeat options are
// rejected with ErrInvalid.
func TestReadinessOptionsInvalid(t *testing.T) {
	s := New("s")
	w := WorkerFunc(func(ctx context.Context) error { return nil })
	require.ErrorIs(t, s.Add("a", w, WithReadiness(-1)), ErrInvalid)
	require.ErrorIs(t, s.Add("b", w, WithHeartbeat(0)), ErrInvalid)
	require.ErrorIs(t, s.Add("c", w, WithHeartbeat(-time.Second)), ErrInvalid)
	require.ErrorIs(t, s.Add("d", New("d"), WithHeartbeat(time.Second)), ErrInvalid)
	assert.Empty(t, s.Children())
}

// TestReadyCannotReachGrandparent: a child that is not asked to signal
// readiness cannot make its nested supervisor ready by calling Ready.
func TestReadyCannotReachGrandparent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mid := New("mid", WithLogger(nil))
		// eager signals readiness at once, though not asked to: no effect,
		// neither here nor above.
		eager := newProbe("eager", nil).each(copyPlan{ready: true})
		require.NoError(t, mid.Add("eager", eager))
		require.NoError(t, mid.Add("slow", slowStarter("slow", time.Hour), WithReadiness(0)))
		root := New("root", WithLogger(nil))
		require.NoError(t, root.Add("mid", mid, WithReadiness(0)))
		require.NoError(t, root.Add("after", newProbe("after", nil)))
		sv := serveBG(t, root)
		assert.Equal(t, []string{"mid:starting", "after:starting"}, states(root))
		assert.Equal(t, []string{"eager:running", "slow:starting"}, states(mid))
		require.NoError(t, sv.stop())
	})
}

// TestReadinessAddWhileWaiting: a child added while a start waits for
// readiness starts after it; Add itself returns at once.
func TestReadinessAddWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		s := New("s", WithLogger(nil))
		require.NoError(t, s.Add("a", slowStarter("a", time.Second), WithReadiness(0)))
		sv := serveBG(t, s)
		b := newProbe("b", nil)
		require.NoError(t, s.Add("b", b))
		assert.Equal(t, []string{"a:starting", "b:starting"}, states(s))
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []time.Duration{time.Second}, b.startsSince(t0))
		require.NoError(t, sv.stop())
	})
}

// TestReadinessRestForOneQueued: a RestForOne restart triggered while later
// children still wait in the queue takes them out of it and restarts the
// group in order; a queued temporary child is dropped.
func TestReadinessRestForOneQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		s := New("s", WithStrategy(RestForOne), WithLogger(nil))
		a, b, c, tmp := newProbe("a", nil), slowStarter("b", time.Second), newProbe("c", nil), newProbe("t", nil)
		require.NoError(t, s.Add("a", a))
		require.NoError(t, s.Add("b", b, WithReadiness(0)))
		require.NoError(t, s.Add("c", c))
		require.NoError(t, s.Add("t", tmp, WithRestart(Temporary)))
		sv := serveBG(t, s)
		assert.Equal(t, []string{"a:running", "b:starting", "c:starting", "t:starting"}, states(s))
		a.exit <- errors.New("boom")
		synctest.Wait()
		assert.Equal(t, []string{"a:running", "b:starting", "c:starting"}, states(s))
		assert.Equal(t, []time.Duration{0, 0}, b.startsSince(t0), "b was stopped and started again")
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"a:running", "b:running", "c:running"}, states(s))
		assert.Equal(t, []time.Duration{time.Second}, c.startsSince(t0))
		assert.Empty(t, tmp.startsSince(t0))
		require.NoError(t, sv.stop())
	})
}

// TestReadinessStuckStartReleasesQueue: a child that times out starting and
// then ignores its cancellation is declared stuck, and the starts waiting
// behind it go on.
func TestReadinessStuckStartReleasesQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		a, b := newProbe("a", nil), newProbe("b", nil)
		a.setIgnore(true)
		s := New("s", WithLogger(nil))
		require.NoError(t, s.Add("a", a, WithReadiness(time.Second), WithShutdownTimeout(2*time.Second)))
		require.NoError(t, s.Add("b", b))
		sv := serveBG(t, s)
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"a:stopping", "b:starting"}, states(s))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"a:stuck", "b:running"}, states(s))
		assert.Equal(t, []time.Duration{3 * time.Second}, b.startsSince(t0))
		a.setIgnore(false) // for the next copy
		close(a.release)   // returns: its start-timeout failure restarts it
		synctest.Wait()
		info := s.Children()[0]
		require.ErrorIs(t, info.LastError, ErrStartTimeout)
		assert.Equal(t, Starting, info.State)
		_, maxCopies, starts := a.counts()
		assert.Equal(t, 2, starts)
		assert.Equal(t, 1, maxCopies)
		require.NoError(t, sv.stop())
	})
}
