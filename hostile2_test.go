package arbor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Hostile pass, third round: attacks on what changed last (exits settled
// while not serving, guarded policies, the dispatcher's Goexit recovery and
// bounded wait, the breadth-first error walk, orphans, first starts in group
// restarts).
//
// The defects it found are fixed: orphans counted once and forgotten once a
// parent adopts them again (OrphanRemovedTwice, OrphanAdoptedElsewhere,
// OrphansManyCycles); a Goexit in a handler skips only that handler
// (HandlerGoexitEveryEvent); the error walk's queue is bounded and
// duplicates do not use up its bound (WalkWideSelfFanout,
// WalkSentinelBehindDuplicates); the bound itself is documented
// (WalkDeepChain). A restart predicate that calls its own supervisor's
// methods deadlocks, as one that blocks does: documented (WithRestartIf),
// not tested.

// countStuck counts the *StuckErrors for child in err.
func countStuck(err error, child string) int {
	n := 0
	for _, se := range stuckErrs(err) {
		if se.Child == child {
			n++
		}
	}
	return n
}

// ---------------------------------------------------------------------------
// Orphans

// TestHostile2OrphanRemovedTwice: a nested supervisor removed while its
// worker is stuck, added again under the same parent, served, and removed
// again: its stuck worker is one worker and must be reported once, by
// Health and by Serve's result.
func TestHostile2OrphanRemovedTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cc := newCopies()
		release := make(chan struct{})
		var relOnce sync.Once
		free := func() { relOnce.Do(func() { close(release) }) }
		defer free()
		root := New("root", WithLogger(nil))
		mid := New("mid")
		require.NoError(t, mid.Add("w", stubborn(cc, "w", release), WithShutdownTimeout(time.Second)))
		require.NoError(t, root.Add("mid", mid))
		sv := serveBG(t, root)
		for i := range 3 {
			err := root.Remove(t.Context(), "mid")
			require.Equal(t, 1, countStuck(err, "w"), "Remove %d: %v", i, err)
			require.NoError(t, root.Add("mid", mid), "re-add %d", i)
			synctest.Wait()
		}
		_ = root.Remove(t.Context(), "mid")
		h := root.Health(t.Context())
		assert.False(t, h.Live)
		var paths []string
		for _, c := range h.Checks {
			if c.Reason == "stuck" {
				paths = append(paths, c.Path)
			}
		}
		assert.Len(t, paths, 1, "one stuck worker, one stuck check: %v", paths)
		err := sv.stop()
		assert.Equal(t, 1, countStuck(err, "w"), "Serve's result names the stuck worker once: %v", err)
		free()
		synctest.Wait()
		cc.assertOneAtATime(t)
	})
}

// TestHostile2OrphanAdoptedElsewhere: a nested supervisor removed while its
// worker is stuck, then adopted by a sibling supervisor of the same tree
// (which keeps it Stopped): the stuck worker must be reported once.
func TestHostile2OrphanAdoptedElsewhere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cc := newCopies()
		release := make(chan struct{})
		var relOnce sync.Once
		free := func() { relOnce.Do(func() { close(release) }) }
		defer free()
		root := New("root", WithLogger(nil))
		mid := New("mid")
		other := New("other")
		require.NoError(t, mid.Add("w", stubborn(cc, "w", release), WithShutdownTimeout(time.Second)))
		require.NoError(t, root.Add("mid", mid))
		require.NoError(t, root.Add("other", other))
		sv := serveBG(t, root)
		err := root.Remove(t.Context(), "mid")
		require.Equal(t, 1, countStuck(err, "w"), "%v", err)
		// Adopted elsewhere right after its copy returned, served there,
		// then terminated there.
		require.NoError(t, other.Add("mid", mid))
		synctest.Wait()
		assert.Equal(t, []string{"mid:starting"}, states(other), "not ready while w is stuck")
		assert.ErrorIs(t, other.Terminate(t.Context(), "mid"), ErrStuck)
		h := root.Health(t.Context())
		n := 0
		for _, c := range h.Checks {
			if c.Reason == "stuck" || c.Reason == "Stuck" || strings.HasSuffix(c.Path, "/w") && !c.Live {
				n++
			}
		}
		assert.Equal(t, 1, n, "one stuck worker, one stuck check: %+v", h.Checks)
		err = sv.stop()
		assert.Equal(t, 1, countStuck(err, "w"), "Serve's result names the stuck worker once: %v", err)
		free()
		synctest.Wait()
		cc.assertOneAtATime(t)
	})
}

// TestHostile2OrphansManyCycles: many remove/re-add cycles of a nested
// supervisor whose worker is stuck: the reports do not grow with the
// cycles.
func TestHostile2OrphansManyCycles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cc := newCopies()
		release := make(chan struct{})
		var relOnce sync.Once
		free := func() { relOnce.Do(func() { close(release) }) }
		defer free()
		root := New("root", WithLogger(nil))
		mid := New("mid")
		require.NoError(t, mid.Add("w", stubborn(cc, "w", release), WithShutdownTimeout(time.Second)))
		require.NoError(t, root.Add("mid", mid))
		sv := serveBG(t, root)
		const cycles = 50
		for range cycles {
			_ = root.Remove(t.Context(), "mid")
			require.NoError(t, root.Add("mid", mid))
			synctest.Wait()
		}
		h := root.Health(t.Context())
		assert.LessOrEqual(t, len(h.Checks), 4, "Health does not grow with cycles: %d checks", len(h.Checks))
		err := sv.stop()
		assert.Equal(t, 1, countStuck(err, "w"), "Serve's result names w once, not once per cycle")
		free()
		synctest.Wait()
		cc.assertOneAtATime(t)
	})
}

// TestHostile2RemoveStuckOffline: Remove of a stuck nested supervisor while
// the parent does not serve, then its stuck copy returns: settled at once,
// the name free, the supervisor adoptable, its stuck worker still reported
// by its own Serve's result... and nothing waits for a call.
func TestHostile2RemoveStuckOffline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cc := newCopies()
		relW := make(chan struct{})
		root := New("root", WithLogger(nil))
		mid := New("mid")
		require.NoError(t, mid.Add("w", stubborn(cc, "w", relW), WithShutdownTimeout(10*time.Second)))
		require.NoError(t, root.Add("mid", mid, WithShutdownTimeout(time.Second)))
		sv := serveBG(t, root)
		err := sv.stop()
		require.Equal(t, 1, countStuck(err, "mid"), "%v", err)
		// Not serving: remove the stuck nested supervisor.
		err = root.Remove(t.Context(), "mid")
		assert.ErrorIs(t, err, ErrStuck)
		assert.Equal(t, []string{"mid:stuck"}, states(root))
		// mid's Serve returns after w's shutdown timeout, w still stuck.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		assert.Empty(t, states(root), "settled at once while not serving")
		other := New("other", WithLogger(nil))
		require.NoError(t, other.Add("mid", mid), "free to be adopted")
		assert.Equal(t, []string{"w:stuck"}, states(mid))
		close(relW)
		synctest.Wait()
		assert.Equal(t, []string{"w:stopped"}, states(mid))
		cc.assertOneAtATime(t)
	})
}

// TestHostile2ManyStuckReturnAfterServe: many stuck copies return at once
// after Serve returned, while Terminate/Remove/Children/Restart calls race
// them; then Serve again: each child runs once, no call hangs.
func TestHostile2ManyStuckReturnAfterServe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cc := newCopies()
		release := make(chan struct{})
		var relOnce sync.Once
		free := func() { relOnce.Do(func() { close(release) }) }
		defer free()
		s := New("root", WithLogger(nil))
		const n = 40
		for i := range n {
			name := fmt.Sprintf("w%d", i)
			require.NoError(t, s.Add(name, stubborn(cc, name, release), WithShutdownTimeout(time.Second)))
		}
		sv := serveBG(t, s)
		err := sv.stop()
		require.Len(t, stuckErrs(err), n)
		var wg sync.WaitGroup
		for i := range n {
			name := fmt.Sprintf("w%d", i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch i % 4 {
				case 0:
					_ = s.Terminate(t.Context(), name)
				case 1:
					_ = s.Remove(t.Context(), name)
				case 2:
					_ = s.Children()
				case 3:
					_ = s.Restart(name)
				}
			}()
		}
		free()
		wg.Wait()
		synctest.Wait()
		for _, c := range s.Children() {
			assert.Equal(t, Stopped, c.State, c.Name)
		}
		sv = serveBG(t, s)
		for _, c := range s.Children() {
			k := 0
			fmt.Sscanf(c.Name, "w%d", &k)
			if k%4 == 0 {
				assert.Equal(t, Stopped, c.State, "terminated %s stays stopped", c.Name)
			} else {
				assert.Equal(t, Running, c.State, c.Name)
			}
		}
		assert.Equal(t, n-n/4, len(s.Children()))
		require.NoError(t, sv.stop())
		cc.assertOneAtATime(t)
	})
}

// TestHostile2ReadyWhileNotServing: a readiness signal from a copy that
// outlived its Serve (stuck), posted while not serving, and the next
// Serve: the child is started again once its copy returns and is
// waited for as usual.
func TestHostile2ReadyWhileNotServing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var relOnce sync.Once
		free := func() { relOnce.Do(func() { close(release) }) }
		defer free()
		signal := make(chan struct{})
		var starts atomic.Int32
		w := WorkerFunc(func(ctx context.Context) error {
			k := starts.Add(1)
			if k == 1 {
				<-ctx.Done()
				<-signal
				Ready(ctx) // after its Serve returned
				<-release
				return nil
			}
			Ready(ctx)
			<-ctx.Done()
			return nil
		})
		s := New("root", WithLogger(nil))
		require.NoError(t, s.Add("a", w, WithReadiness(0), WithShutdownTimeout(time.Second)))
		b := newProbe("b", nil)
		require.NoError(t, s.Add("b", b))
		sv := serveBG(t, s)
		assert.Equal(t, []string{"a:starting", "b:starting"}, states(s))
		err := sv.stop()
		require.Len(t, stuckErrs(err), 1)
		close(signal)
		synctest.Wait()
		assert.Equal(t, []string{"a:stuck", "b:stopped"}, states(s))
		sv = serveBG(t, s)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		assert.Error(t, s.WaitReady(ctx), "not ready while a is stuck")
		cancel()
		free()
		synctest.Wait()
		assert.Equal(t, []string{"a:running", "b:running"}, states(s))
		require.NoError(t, s.WaitReady(t.Context()))
		require.NoError(t, sv.stop())
		assert.EqualValues(t, 2, starts.Load())
	})
}

// TestHostile2ExitsRacingServe: children exiting by themselves while Serve
// starts and returns, many times: never two copies, every call answered.
func TestHostile2ExitsRacingServe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cc := newCopies()
		s := New("root", WithLogger(nil), WithIntensity(1000000, time.Second))
		for i := range 5 {
			name := fmt.Sprintf("c%d", i)
			require.NoError(t, s.Add(name, WorkerFunc(func(ctx context.Context) error {
				defer cc.enter(name)()
				select {
				case <-ctx.Done():
				case <-time.After(time.Duration(i+1) * time.Millisecond):
				}
				return nil
			})))
		}
		for round := range 30 {
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- s.Serve(ctx) }()
			time.Sleep(time.Duration(round%7) * time.Millisecond)
			cancel()
			require.NoError(t, <-done)
			for _, c := range s.Children() {
				assert.Equal(t, Stopped, c.State, "round %d %s", round, c.Name)
			}
		}
		cc.assertOneAtATime(t)
		for i := range 5 {
			running, _, _ := cc.get(fmt.Sprintf("c%d", i))
			assert.Zero(t, running)
		}
	})
}

// ---------------------------------------------------------------------------
// Guarded policies

// TestHostile2PredicateGoexitEveryTime: a predicate that calls Goexit on
// every exit, many times: each is reported, the policy decides (Permanent:
// restart), no goroutine is left.
func TestHostile2PredicateGoexitEveryTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got events
		s := New("root", WithLogger(nil), WithEventHandler(got.handle), WithIntensity(1000, time.Second))
		a := newProbe("a", nil)
		require.NoError(t, s.Add("a", a, WithRestartIf(func(error) bool { runtime.Goexit(); return false })))
		sv := serveBG(t, s)
		const n = 50
		for range n {
			a.fail(t, errBoom)
		}
		assert.Equal(t, n, childInfo(t, s, "a").Restarts)
		require.NoError(t, sv.stop())
		panics := 0
		for _, k := range got.kinds() {
			if k == EventPolicyPanicked {
				panics++
			}
		}
		assert.Equal(t, n, panics)
	})
}

// TestHostile2BackoffExtremes: a custom Backoff returning MaxInt64, MinInt64,
// or Goexit-ing: no overflow, the huge delay waits (Restarting, NextStart in
// the future), Serve still stops at once.
func TestHostile2BackoffExtremes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay func(int) time.Duration
		state State
	}{
		{"max", func(int) time.Duration { return math.MaxInt64 }, Restarting},
		{"min", func(int) time.Duration { return math.MinInt64 }, Running},
		{"goexit", func(int) time.Duration { runtime.Goexit(); return 0 }, Running},
	} {
		for _, st := range []Strategy{OneForOne, OneForAll, RestForOne} {
			t.Run(tc.name+"/"+st.String(), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					s := New("root", WithLogger(nil), WithStrategy(st))
					a := newProbe("a", nil)
					b := newProbe("b", nil)
					require.NoError(t, s.Add("a", a, WithBackoff(backoffFunc(tc.delay))))
					require.NoError(t, s.Add("b", b))
					sv := serveBG(t, s)
					a.fail(t, errBoom)
					ci := childInfo(t, s, "a")
					assert.Equal(t, tc.state, ci.State)
					if tc.state == Restarting {
						assert.True(t, ci.NextStart.After(time.Now()), "NextStart %v", ci.NextStart)
					}
					time.Sleep(time.Hour)
					synctest.Wait()
					assert.Equal(t, tc.state, childInfo(t, s, "a").State)
					require.NoError(t, sv.stop())
					r, _, _ := a.counts()
					assert.Zero(t, r)
				})
			})
		}
	}
}

// ---------------------------------------------------------------------------
// Dispatcher

// TestHostile2HandlerGoexitEveryEvent: a handler that calls Goexit on every
// event: the other handlers of the tree (the nested supervisor's own after
// it, and the root's) must still see every event, in order.
func TestHostile2HandlerGoexitEveryEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var seenFirst, seenAfter events
		root := New("root", WithLogger(nil), WithEventHandler(seenAfter.handle))
		mid := New("mid", WithIntensity(1000, time.Second), WithEventHandler(seenFirst.handle), WithEventHandler(func(Event) { runtime.Goexit() }))
		a := newProbe("a", nil)
		require.NoError(t, mid.Add("a", a))
		require.NoError(t, root.Add("mid", mid))
		sv := serveBG(t, root)
		for range 20 {
			a.fail(t, errBoom)
		}
		require.NoError(t, sv.stop())
		var fromMid []string
		for _, e := range seenAfter.all {
			if e.Supervisor == "root/mid" {
				fromMid = append(fromMid, e.String())
			}
		}
		var want []string
		for _, e := range seenFirst.all {
			want = append(want, e.String())
		}
		require.NotEmpty(t, want)
		assert.Equal(t, want, fromMid, "the root's handler sees every event of mid, in order, despite mid's Goexit-ing handler")
	})
}

// TestHostile2HandlerBlocksForever: a handler blocked for good: the root's
// Serve returns after deliveryWait of fake time; once released, its
// goroutine ends; a second Serve delivers again.
func TestHostile2HandlerBlocksForever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var relOnce sync.Once
		free := func() { relOnce.Do(func() { close(release) }) }
		defer free()
		var once sync.Once
		var got events
		s := New("root", WithLogger(nil), WithEventHandler(func(e Event) {
			once.Do(func() { <-release })
		}), WithEventHandler(got.handle))
		require.NoError(t, s.Add("a", newProbe("a", nil)))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx) }()
		synctest.Wait()
		t0 := time.Now()
		cancel()
		require.NoError(t, <-done)
		assert.Equal(t, deliveryWait, time.Since(t0))
		free()
		synctest.Wait()
		// Events of a later Serve still reach the handlers.
		got.mu.Lock()
		got.all = nil
		got.mu.Unlock()
		sv := serveBG(t, s)
		require.NoError(t, sv.stop())
		assert.Contains(t, got.kinds(), EventSupervisorStopped)
	})
}

// TestHostile2HandlerCallsTree: handlers that call WaitReady, Terminate,
// Restart and Children on the tree while it serves and while it stops.
func TestHostile2HandlerCallsTree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s *Supervisor
		s = New("root", WithLogger(nil), WithIntensity(1000, time.Second), WithEventHandler(func(e Event) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			switch e.Kind {
			case EventChildStarted, EventChildRestarted:
				_ = s.WaitReady(ctx)
				_ = s.Children()
			case EventChildFailed:
				_ = s.Terminate(ctx, e.Child)
				_ = s.Restart(e.Child)
			}
		}))
		a := newProbe("a", nil)
		require.NoError(t, s.Add("a", a))
		sv := serveBG(t, s)
		for range 5 {
			a.fail(t, errBoom)
			time.Sleep(time.Second)
			synctest.Wait()
		}
		require.NoError(t, sv.stop())
		_, m, _ := a.counts()
		assert.Equal(t, 1, m)
	})
}

// ---------------------------------------------------------------------------
// Error walk

// wideErr is a non-comparable error whose Unwrap returns many errors.
type wideErr struct{ kids []error }

func (wideErr) Error() string     { return "wide" }
func (e wideErr) Unwrap() []error { return e.kids }

// panicEq is comparable by type but its == panics (an interface field
// holding a slice).
type panicEq struct{ v any }

func (panicEq) Error() string { return "panicEq" }
func (e panicEq) Unwrap() error {
	if err, ok := e.v.(error); ok {
		return err
	}
	return nil
}

// TestHostile2WalkWideSelfFanout: a non-comparable error whose Unwrap
// returns 3000 copies of itself: classify is bounded in time and memory.
func TestHostile2WalkWideSelfFanout(t *testing.T) {
	kids := make([]error, 3000)
	w := wideErr{kids}
	for i := range kids {
		kids[i] = w
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	c := classify(w)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	assert.False(t, c.doNotRestart)
	t.Logf("classify took %v, allocated %d MiB", took, alloc>>20)
	assert.Less(t, alloc, uint64(16<<20), "a walk bounded to %d errors allocates %d MiB", maxErrChain, alloc>>20)
}

// TestHostile2WalkSentinelBehindDuplicates: ErrDoNotRestart joined after
// 1000 copies of one error: duplicates are not visited, so they must not
// use up the walk's bound (errors.Is finds it).
func TestHostile2WalkSentinelBehindDuplicates(t *testing.T) {
	dup := errors.New("dup")
	errs := make([]error, 0, 1001)
	for range 1000 {
		errs = append(errs, dup)
	}
	err := errors.Join(append(errs, ErrDoNotRestart)...)
	require.ErrorIs(t, err, ErrDoNotRestart)
	assert.True(t, classify(err).doNotRestart, "the sentinel behind 1000 duplicates of one error is found")
}

// TestHostile2WalkDeepChain: ErrDoNotRestart wrapped 1500 deep (errors.Is
// finds it). The bound is not documented; a deep chain loses the sentinel.
func TestHostile2WalkDeepChain(t *testing.T) {
	for _, tc := range []struct {
		depth int
		found bool
	}{
		{depth: 998, found: true},
		{depth: 1500, found: false}, // past maxErrChain: documented, bounded
	} {
		err := ErrDoNotRestart
		for range tc.depth {
			err = fmt.Errorf("w: %w", err)
		}
		require.ErrorIs(t, err, ErrDoNotRestart)
		assert.Equal(t, tc.found, classify(err).doNotRestart, "depth %d", tc.depth)
	}
}

// TestHostile2WalkNonComparable: non-comparable wrappers and ones whose ==
// panics, around the sentinels, end to end through a supervisor.
func TestHostile2WalkNonComparable(t *testing.T) {
	cases := map[string]error{
		"slice-struct": wideErr{[]error{errBoom, ErrDoNotRestart}},
		"panic-eq":     panicEq{v: panicEq{v: []int{1}}},
		"panic-eq-wrap": errors.Join(panicEq{v: []int{1}}, panicEq{v: []int{1}},
			panicEq{v: fmt.Errorf("x: %w", ErrDoNotRestart)}),
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := New("root", WithLogger(nil))
				a := newProbe("a", nil)
				require.NoError(t, s.Add("a", a))
				sv := serveBG(t, s)
				a.fail(t, e)
				want := Running
				if errors.Is(e, ErrDoNotRestart) {
					want = Stopped
				}
				assert.Equal(t, want, childInfo(t, s, "a").State)
				_ = s.Tree(t.Context()).String()
				require.NoError(t, sv.stop())
			})
		})
	}
}

// ---------------------------------------------------------------------------
// First starts in group restarts

// TestHostile2GroupFirstStartsAcrossServes: RestForOne with readiness, a
// terminated child, Restart and several Serve calls: a member's first
// start in a Serve is EventChildStarted and not counted; later group starts
// are restarts.
func TestHostile2GroupFirstStartsAcrossServes(t *testing.T) {
	for _, st := range []Strategy{RestForOne, OneForAll} {
		t.Run(st.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var seq []string
				s := New("root", WithLogger(nil), WithStrategy(st), WithEventHandler(func(e Event) {
					if e.Kind == EventChildStarted || e.Kind == EventChildRestarted {
						mu.Lock()
						seq = append(seq, fmt.Sprintf("%s %s %d", e.Kind, e.Child, e.Restarts))
						mu.Unlock()
					}
				}))
				take := func() []string {
					synctest.Wait()
					mu.Lock()
					defer mu.Unlock()
					out := seq
					seq = nil
					return out
				}
				a := slowStarter("a", time.Second)
				b := slowStarter("b", time.Second)
				c := newProbe("c", nil)
				require.NoError(t, s.Add("a", a, WithReadiness(0)))
				require.NoError(t, s.Add("b", b, WithReadiness(0)))
				require.NoError(t, s.Add("c", c))
				require.NoError(t, s.Terminate(t.Context(), "c"))

				// Serve 1: a fails before it is ready: b never started in this
				// Serve; the group restart's start of b is its first.
				sv := serveBG(t, s)
				a.fail(t, errBoom)
				time.Sleep(3 * time.Second)
				got := take()
				assert.Equal(t, []string{
					"child started a 0",
					"child restarted a 1",
					"child started b 0",
					"child started c 0",
				}, got)
				assert.Equal(t, map[string]int{"a": 1, "b": 0, "c": 0}, restartCounts(s))
				// b fails: a restart for b (and c), not a first start.
				b.fail(t, errBoom)
				time.Sleep(3 * time.Second)
				got = take()
				assert.Contains(t, got, "child restarted b 1")
				assert.Contains(t, got, "child restarted c 1")
				require.NoError(t, sv.stop())
				take()

				// Serve 2: counts start afresh; c was not terminated since
				// the group restart cleared its mark; a fails while b and c
				// wait in the queue: their first start again.
				require.NoError(t, s.Terminate(t.Context(), "c"))
				sv = serveBG(t, s)
				a.fail(t, errBoom)
				time.Sleep(3 * time.Second)
				got = take()
				assert.Equal(t, []string{
					"child started a 0",
					"child restarted a 1",
					"child started b 0",
					"child started c 0",
				}, got, "second Serve")
				assert.Equal(t, map[string]int{"a": 1, "b": 0, "c": 0}, restartCounts(s))
				// Restart of a terminated child between: a start.
				require.NoError(t, s.Terminate(t.Context(), "c"))
				require.NoError(t, s.Restart("c"))
				got = take()
				assert.Equal(t, []string{"child started c 0"}, got)
				require.NoError(t, sv.stop())
				for _, p := range []*probe{a, b, c} {
					_, m, _ := p.counts()
					assert.Equal(t, 1, m, p.name)
				}
			})
		})
	}
}
