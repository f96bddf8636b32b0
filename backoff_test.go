package arbor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file checks restart backoff (backoff.go, WithBackoff, WithBackoffReset)
// and the restart decisions (ErrDoNotRestart, ErrTerminateTree,
// WithRestartIf). Every supervisor test runs in a synctest bubble with fake
// time: the test goroutine moves the clock with time.Sleep and then waits for
// the bubble with synctest.Wait.

// ---------------------------------------------------------------------------
// Helpers. The fake worker (probe) and the shared helpers are in
// harness_test.go.

// goroutines returns the least of many readings of runtime.NumGoroutine.
// The count is process-wide: goroutines outside the bubble (a finalizer
// running, the goroutine of a test that just ended) can add to a reading for a
// moment, so a single reading is noisy upwards.
func goroutines() int {
	n := runtime.NumGoroutine()
	for range 200 {
		runtime.Gosched()
		n = min(n, runtime.NumGoroutine())
	}
	return n
}

// goroutinesDropTo reports whether runtime.NumGoroutine comes down to at
// most n. A goroutine that returned can still be counted for a moment after
// synctest.Wait saw it go, so it yields for a while before giving up; a
// goroutine that really remains keeps the count up for good.
func goroutinesDropTo(n int) bool {
	for range 1_000_000 {
		if runtime.NumGoroutine() <= n {
			return true
		}
		runtime.Gosched()
	}
	return false
}

// allStacks returns a dump of every goroutine's stack.
func allStacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// bubbleGoroutines counts exactly the goroutines of the calling goroutine's
// synctest bubble, from a dump of every goroutine's stack.
func bubbleGoroutines() int {
	dump := allStacks()
	first, _, _ := strings.Cut(dump, "\n") // the caller's own header comes first
	_, bubble, ok := strings.Cut(first, "synctest bubble ")
	if !ok {
		panic("bubbleGoroutines called outside a synctest bubble")
	}
	tag := "synctest bubble " + bubble
	n := 0
	for line := range strings.Lines(dump) {
		if strings.HasPrefix(line, "goroutine ") && strings.Contains(line, tag) {
			n++
		}
	}
	return n
}

// childGoroutines counts the goroutines that run a copy of some child.
func childGoroutines() int {
	return strings.Count(allStacks(), "\n"+childMainName+"(")
}

// advance moves the fake clock by d and waits for the bubble.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// requireWaiting requires the named child to wait in backoff: Restarting,
// due at at, with the given count of consecutive failures.
func requireWaiting(t *testing.T, s *Supervisor, name string, failures int, at time.Time) {
	t.Helper()
	info := childInfo(t, s, name)
	require.Equal(t, Restarting, info.State, "%s waits in backoff", name)
	require.True(t, at.Equal(info.NextStart), "%s: NextStart %v, want %v", name, info.NextStart, at)
	require.Equal(t, failures, info.Failures, "%s: consecutive failures", name)
}

// requireRunning requires the named child to run, with no pending start.
func requireRunning(t *testing.T, s *Supervisor, name string) {
	t.Helper()
	info := childInfo(t, s, name)
	require.Equal(t, Running, info.State, "%s runs", name)
	require.True(t, info.NextStart.IsZero(), "%s: NextStart %v, want zero", name, info.NextStart)
}

// expBackoff is ExponentialBackoff doubling from initial up to max.
func expBackoff(initial, max time.Duration) ExponentialBackoff {
	return ExponentialBackoff{Initial: initial, Max: max, Multiplier: 2}
}

// stepBackoff is a custom Backoff: n×100ms before the n-th consecutive
// restart. It records the failure counts it was asked about.
type stepBackoff struct {
	mu    sync.Mutex
	asked []int
}

func (b *stepBackoff) Delay(failures int) time.Duration {
	b.mu.Lock()
	b.asked = append(b.asked, failures)
	b.mu.Unlock()
	return time.Duration(failures) * 100 * time.Millisecond
}

func (b *stepBackoff) calls() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.asked...)
}

// ---------------------------------------------------------------------------
// 1. Delay sequences.

// TestBackoffDelaySequences: the delays of the built-in policies, exactly.
func TestBackoffDelaySequences(t *testing.T) {
	s := time.Second
	seq := func(b Backoff, n int) []time.Duration {
		var out []time.Duration
		for i := 1; i <= n; i++ {
			out = append(out, b.Delay(i))
		}
		return out
	}
	exp := ExponentialBackoff{Initial: s, Max: 10 * s, Multiplier: 2}
	assert.Equal(t, []time.Duration{1 * s, 2 * s, 4 * s, 8 * s, 10 * s, 10 * s}, seq(exp, 6), "exponential, capped at Max")

	imm := exp
	imm.ImmediateFirst = true
	assert.Equal(t, []time.Duration{0, 1 * s, 2 * s, 4 * s, 8 * s, 10 * s}, seq(imm, 6), "ImmediateFirst")

	one := ExponentialBackoff{Initial: 3 * s, Max: 10 * s, Multiplier: 1}
	assert.Equal(t, []time.Duration{3 * s, 3 * s, 3 * s, 3 * s, 3 * s}, seq(one, 5), "Multiplier 1 is constant")

	for _, n := range []int{64, 1000, 10000, math.MaxInt32} {
		assert.Equal(t, 10*s, exp.Delay(n), "Delay(%d) stays at Max", n)
		assert.Equal(t, 10*s, imm.Delay(n), "ImmediateFirst Delay(%d) stays at Max", n)
	}
	big := ExponentialBackoff{Initial: s, Max: time.Hour, Multiplier: 1e6}
	assert.Equal(t, time.Hour, big.Delay(10000), "a huge multiplier stays at Max")

	assert.Equal(t, []time.Duration{3 * s, 3 * s, 3 * s, 3 * s}, seq(ConstantBackoff(3*s), 4))
	assert.Equal(t, 3*s, ConstantBackoff(3*s).Delay(10000))
	assert.Equal(t, []time.Duration{0, 0, 0}, seq(ConstantBackoff(0), 3))
	assert.Equal(t, time.Duration(0), ConstantBackoff(0).Delay(10000))
	assert.Equal(t, time.Duration(0), ConstantBackoff(0).Delay(5))
}

// TestBackoffJitter: with Jitter 0.5 every delay is drawn from
// [d×0.5, d], never above Max; draws differ, and their mean is near the
// middle of the range.
func TestBackoffJitter(t *testing.T) {
	b := ExponentialBackoff{Initial: time.Second, Max: 10 * time.Second, Multiplier: 2, Jitter: 0.5}
	exact := []time.Duration{1, 2, 4, 8, 10, 10}
	const draws = 10000
	sum := map[int]float64{}
	distinct := map[time.Duration]bool{}
	for i := range draws {
		n := i%len(exact) + 1
		d := exact[n-1] * time.Second
		got := b.Delay(n)
		if got < d/2 || got > d || got > b.Max {
			t.Fatalf("Delay(%d) = %v, want within [%v, %v]", n, got, d/2, d)
		}
		sum[n] += float64(got) / float64(d)
		distinct[got] = true
	}
	assert.Greater(t, len(distinct), draws/2, "jittered delays are not all equal")
	for n := 1; n <= len(exact); n++ {
		mean := sum[n] / (draws / float64(len(exact)))
		assert.InDelta(t, 0.75, mean, 0.05, "mean of Delay(%d) relative to its exact value", n)
	}

	full := b
	full.Jitter = 1
	for range 1000 {
		if d := full.Delay(3); d < 0 || d > 4*time.Second {
			t.Fatalf("Jitter 1: Delay(3) = %v, want within [0, 4s]", d)
		}
	}
}

// TestBackoffDelayHugeMax: Delay never exceeds Max and is never negative,
// even with Max at the largest Duration (a "no cap" setting).
func TestBackoffDelayHugeMax(t *testing.T) {
	b := ExponentialBackoff{Initial: time.Second, Max: time.Duration(math.MaxInt64), Multiplier: 2}
	prev := time.Duration(0)
	for _, n := range []int{1, 2, 10, 30, 34, 35, 36, 40, 64, 100, 10000} {
		d := b.Delay(n)
		require.GreaterOrEqual(t, d, prev, "Delay(%d) = %v does not decrease", n, d)
		require.LessOrEqual(t, d, b.Max, "Delay(%d) = %v is at most Max", n, d)
		prev = d
	}
}

// TestBackoffHugeMaxEndToEnd: the same bug seen from a supervisor: a child
// whose second delay overflows is restarted at once instead of waiting.
func TestBackoffHugeMaxEndToEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithIntensity(100, time.Minute))
		w := newProbe("w", nil)
		require.NoError(t, s.Add("w", w, WithBackoff(ExponentialBackoff{
			Initial: time.Second, Max: time.Duration(math.MaxInt64), Multiplier: 1e10,
		})))
		sv := serveBG(t, s)
		w.fail(t, errBoom)
		requireWaiting(t, s, "w", 1, time.Now().Add(time.Second))
		advance(time.Second)
		w.fail(t, errBoom)
		assert.Equal(t, Restarting, childInfo(t, s, "w").State, "the second restart waits")
		assert.Equal(t, 2, w.starts(), "not restarted at once")
		require.NoError(t, sv.stop())
	})
}

// ---------------------------------------------------------------------------
// 2. End to end.

// TestBackoffEndToEnd: a child failing each time it starts is restarted
// after 1s, 2s, 4s, 4s of fake time; while it waits Children reports
// Restarting, the exact due time and the failure count, and the child has no
// goroutine.
func TestBackoffEndToEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithIntensity(100, time.Minute))
		w := newProbe("w", nil)
		require.NoError(t, s.Add("w", w, WithBackoff(expBackoff(time.Second, 4*time.Second))))
		t0 := time.Now()
		sv := serveBG(t, s)

		delays := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
		for i, d := range delays {
			requireRunning(t, s, "w")
			info := childInfo(t, s, "w")
			require.Equal(t, i, info.Failures, "the failure count holds while it runs")
			require.Equal(t, i, info.Restarts)
			running, inBubble := goroutines(), bubbleGoroutines()
			require.Equal(t, 1, childGoroutines(), "one goroutine runs the child")

			w.fail(t, errBoom)
			failed := time.Now()
			requireWaiting(t, s, "w", i+1, failed.Add(d))
			require.ErrorIs(t, childInfo(t, s, "w").LastError, errBoom)
			// While it waits the child has no goroutine and nothing replaces
			// it: the bubble has exactly one goroutine less, and the
			// process-wide count is lower by at least one (other goroutines
			// of the process may exit meanwhile).
			waitingInBubble := bubbleGoroutines()
			require.Equal(t, inBubble-1, waitingInBubble, "no goroutine for the child while it waits")
			require.True(t, goroutinesDropTo(running-1),
				"runtime.NumGoroutine is lower by one while the child waits: %d, was %d", runtime.NumGoroutine(), running)
			require.Zero(t, childGoroutines(), "no goroutine runs the child")
			r, _, _ := w.counts()
			require.Zero(t, r)

			advance(d - time.Nanosecond)
			requireWaiting(t, s, "w", i+1, failed.Add(d))
			require.Equal(t, i+1, w.starts(), "not started a nanosecond early")
			require.Equal(t, waitingInBubble, bubbleGoroutines(), "still no goroutine")
			require.Zero(t, childGoroutines())

			advance(time.Nanosecond)
			require.Equal(t, i+2, w.starts(), "started when due")
			require.Equal(t, inBubble, bubbleGoroutines(), "the child's goroutine is back")
			require.Equal(t, 1, childGoroutines())
		}
		requireRunning(t, s, "w")

		starts := w.startTimes()
		require.Len(t, starts, 5)
		assert.True(t, starts[0].Equal(t0), "first start at once")
		var gaps []time.Duration
		for i := 1; i < len(starts); i++ {
			gaps = append(gaps, starts[i].Sub(starts[i-1]))
		}
		assert.Equal(t, delays, gaps, "gaps between starts")
		_, maxCopies, _ := w.counts()
		assert.Equal(t, 1, maxCopies)
		sv.stillServing(t)
		require.NoError(t, sv.stop())
	})
}

// ---------------------------------------------------------------------------
// 3. Supervisor-wide default and per-child override.

// TestBackoffDefaultAndOverride: WithBackoff given to New applies to every
// child, also one added while serving; WithBackoff given to Add overrides it.
func TestBackoffDefaultAndOverride(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithBackoff(ConstantBackoff(2*time.Second)), WithIntensity(100, time.Minute))
		a, none, five, late := newProbe("a", nil), newProbe("none", nil), newProbe("five", nil), newProbe("late", nil)
		require.NoError(t, s.Add("a", a))
		require.NoError(t, s.Add("none", none, WithBackoff(ConstantBackoff(0))))
		require.NoError(t, s.Add("five", five, WithBackoff(ConstantBackoff(5*time.Second))))
		sv := serveBG(t, s)
		require.NoError(t, s.Add("late", late))
		synctest.Wait()
		t0 := time.Now()

		for round := range 2 {
			base := t0.Add(time.Duration(round) * 5 * time.Second)
			require.True(t, time.Now().Equal(base))
			for _, w := range []*probe{a, none, five, late} {
				w.fail(t, errBoom)
			}
			requireWaiting(t, s, "a", round+1, base.Add(2*time.Second))
			requireWaiting(t, s, "late", round+1, base.Add(2*time.Second))
			requireWaiting(t, s, "five", round+1, base.Add(5*time.Second))
			requireRunning(t, s, "none")
			assert.Equal(t, round+2, none.starts(), "no backoff restarts at once")

			advance(2 * time.Second)
			requireRunning(t, s, "a")
			requireRunning(t, s, "late")
			requireWaiting(t, s, "five", round+1, base.Add(5*time.Second))
			assert.Equal(t, round+2, a.starts())
			assert.Equal(t, round+2, late.starts())
			assert.Equal(t, round+1, five.starts())

			advance(3 * time.Second)
			requireRunning(t, s, "five")
			assert.Equal(t, round+2, five.starts())
		}
		require.NoError(t, sv.stop())
	})
}

// ---------------------------------------------------------------------------
// 4. Reset rules.

// resetRun drives a child with ExponentialBackoff{1s, 1min, 2} through:
// two quick failures (1, 2), a run of reset−1ns (3, still growing), a run of
// exactly reset (back to 1), a quick failure (2).
func resetRun(t *testing.T, s *Supervisor, w *probe, reset time.Duration) {
	t.Helper()
	sv := serveBG(t, s)
	w.fail(t, errBoom)
	requireWaiting(t, s, "w", 1, time.Now().Add(time.Second))
	advance(time.Second)
	w.fail(t, errBoom)
	requireWaiting(t, s, "w", 2, time.Now().Add(2*time.Second))
	advance(2 * time.Second)

	advance(reset - time.Nanosecond)
	w.fail(t, errBoom)
	requireWaiting(t, s, "w", 3, time.Now().Add(4*time.Second))
	advance(4 * time.Second)

	advance(reset)
	w.fail(t, errBoom)
	requireWaiting(t, s, "w", 1, time.Now().Add(time.Second))
	advance(time.Second)

	w.fail(t, errBoom)
	requireWaiting(t, s, "w", 2, time.Now().Add(2*time.Second))
	require.NoError(t, sv.stop())
}

// TestResetAfterRun: with WithBackoffReset(10s), given to New or to Add (over
// New's WithBackoffReset(0)), a child that ran 10s before failing starts its
// failure count again at 1; one that ran less keeps counting.
func TestResetAfterRun(t *testing.T) {
	t.Run("New", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newQuiet("root", WithIntensity(100, time.Hour), WithBackoffReset(10*time.Second))
			w := newProbe("w", nil)
			require.NoError(t, s.Add("w", w, WithBackoff(expBackoff(time.Second, time.Minute))))
			resetRun(t, s, w, 10*time.Second)
		})
	})
	t.Run("Add", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newQuiet("root", WithIntensity(100, time.Hour), WithBackoffReset(0))
			w := newProbe("w", nil)
			require.NoError(t, s.Add("w", w, WithBackoff(expBackoff(time.Second, time.Minute)), WithBackoffReset(10*time.Second)))
			resetRun(t, s, w, 10*time.Second)
		})
	})
}

// TestResetNever: WithBackoffReset(0), given to New or to Add, never resets
// the failure count, however long the child ran.
func TestResetNever(t *testing.T) {
	for _, where := range []string{"New", "Add"} {
		t.Run(where, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := []Option{WithIntensity(100, time.Hour)}
				copts := []ChildOption{WithBackoff(expBackoff(time.Second, time.Minute))}
				if where == "New" {
					opts = append(opts, WithBackoffReset(0))
				} else {
					copts = append(copts, WithBackoffReset(0))
				}
				s := newQuiet("root", opts...)
				w := newProbe("w", nil)
				require.NoError(t, s.Add("w", w, copts...))
				sv := serveBG(t, s)

				w.fail(t, errBoom)
				requireWaiting(t, s, "w", 1, time.Now().Add(time.Second))
				advance(time.Second)
				advance(time.Hour)
				w.fail(t, errBoom)
				requireWaiting(t, s, "w", 2, time.Now().Add(2*time.Second))
				advance(2 * time.Second)
				advance(24 * time.Hour)
				w.fail(t, errBoom)
				requireWaiting(t, s, "w", 3, time.Now().Add(4*time.Second))
				require.NoError(t, sv.stop())
			})
		})
	}
}

// TestResetDefault: without WithBackoffReset a child must run
// DefaultBackoffReset (10 minutes) for its failure count to start again.
func TestResetDefault(t *testing.T) {
	require.Equal(t, 10*time.Minute, DefaultBackoffReset)
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithIntensity(100, time.Hour))
		w := newProbe("w", nil)
		require.NoError(t, s.Add("w", w, WithBackoff(expBackoff(time.Second, time.Minute))))
		resetRun(t, s, w, DefaultBackoffReset)
	})
}

// TestResetByRestart: Restart by the user starts the failure count again from
// zero; Restart of a child waiting in backoff is refused with ErrNotStopped.
func TestResetByRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithIntensity(100, time.Hour))
		w := newProbe("w", nil)
		require.NoError(t, s.Add("w", w, WithBackoff(expBackoff(time.Second, time.Minute))))
		sv := serveBG(t, s)

		w.fail(t, errBoom)
		advance(time.Second)
		w.fail(t, errBoom)
		requireWaiting(t, s, "w", 2, time.Now().Add(2*time.Second))
		require.ErrorIs(t, s.Restart("w"), ErrNotStopped, "a child waiting in backoff is restarting")
		requireWaiting(t, s, "w", 2, time.Now().Add(2*time.Second))
		advance(2 * time.Second)
		requireRunning(t, s, "w")
		assert.Equal(t, 2, childInfo(t, s, "w").Failures)

		require.NoError(t, s.Terminate(context.Background(), "w"))
		info := childInfo(t, s, "w")
		require.Equal(t, Stopped, info.State)
		assert.Equal(t, 2, info.Failures, "Terminate keeps the count")

		require.NoError(t, s.Restart("w"))
		synctest.Wait()
		requireRunning(t, s, "w")
		assert.Zero(t, childInfo(t, s, "w").Failures, "Restart resets the count")
		w.fail(t, errBoom)
		requireWaiting(t, s, "w", 1, time.Now().Add(time.Second))
		require.NoError(t, sv.stop())
	})
}

// ---------------------------------------------------------------------------
// 5. Cancelling pending restarts.

// TestPendingTerminate: Terminate during the backoff wait cancels the restart:
// the child is Stopped with no NextStart and does not start when the timer
// would have fired; Restart starts it again.
func TestPendingTerminate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root")
		w := newProbe("w", nil)
		require.NoError(t, s.Add("w", w, WithBackoff(ConstantBackoff(time.Minute))))
		sv := serveBG(t, s)
		w.fail(t, errBoom)
		requireWaiting(t, s, "w", 1, time.Now().Add(time.Minute))

		start := time.Now()
		require.NoError(t, s.Terminate(context.Background(), "w"))
		assert.Zero(t, time.Since(start), "Terminate of a waiting child returns at once")
		info := childInfo(t, s, "w")
		assert.Equal(t, Stopped, info.State)
		assert.True(t, info.NextStart.IsZero(), "NextStart %v", info.NextStart)

		advance(2 * time.Minute)
		assert.Equal(t, 1, w.starts(), "never started by the cancelled timer")
		assert.Equal(t, Stopped, childInfo(t, s, "w").State)

		require.NoError(t, s.Restart("w"))
		synctest.Wait()
		assert.Equal(t, 2, w.starts())
		requireRunning(t, s, "w")
		sv.stillServing(t)
		require.NoError(t, sv.stop())
	})
}

// TestPendingRemove: Remove during the backoff wait deletes the child, which
// never starts again; a new child under the same name is not started by the
// old timer.
func TestPendingRemove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root")
		w, other := newProbe("w", nil), newProbe("other", nil)
		require.NoError(t, s.Add("other", other))
		require.NoError(t, s.Add("w", w, WithBackoff(ConstantBackoff(time.Minute))))
		sv := serveBG(t, s)
		w.fail(t, errBoom)
		requireWaiting(t, s, "w", 1, time.Now().Add(time.Minute))

		require.NoError(t, s.Remove(context.Background(), "w"))
		assert.Equal(t, []string{"other"}, childNames(s))
		w2 := newProbe("w", nil)
		require.NoError(t, s.Add("w", w2, WithBackoff(ConstantBackoff(time.Minute))))
		synctest.Wait()

		advance(2 * time.Minute)
		assert.Equal(t, 1, w.starts(), "the removed child never started again")
		assert.Equal(t, 1, w2.starts(), "the new child was not started a second time")
		r, maxCopies, _ := w2.counts()
		assert.Equal(t, 1, r)
		assert.Equal(t, 1, maxCopies)
		assert.Equal(t, []string{"other:running", "w:running"}, states(s))
		require.NoError(t, sv.stop())
	})
}

// TestPendingShutdown: cancelling Serve's context while a child waits in a
// long backoff returns at once (no fake time passes), and the child never
// starts; the same for a delayed group restart.
func TestPendingShutdown(t *testing.T) {
	for _, st := range []Strategy{OneForOne, OneForAll} {
		t.Run(st.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newQuiet("root", WithStrategy(st))
				a, w := newProbe("a", nil), newProbe("w", nil)
				require.NoError(t, s.Add("a", a))
				require.NoError(t, s.Add("w", w, WithBackoff(ConstantBackoff(time.Hour))))
				sv := serveBG(t, s)
				w.fail(t, errBoom)
				requireWaiting(t, s, "w", 1, time.Now().Add(time.Hour))

				start := time.Now()
				require.NoError(t, sv.stop())
				assert.Zero(t, time.Since(start), "Serve returned at once")
				for _, c := range s.Children() {
					assert.Equal(t, Stopped, c.State, c.Name)
					assert.True(t, c.NextStart.IsZero(), "%s: NextStart %v", c.Name, c.NextStart)
				}
				advance(2 * time.Hour)
				assert.Equal(t, 1, w.starts(), "never started after shutdown")
				assert.Equal(t, 1, a.starts())
				r, _, _ := a.counts()
				assert.Zero(t, r)

				// Serving again starts afresh: no pending restart, no failures.
				sv = serveBG(t, s)
				requireRunning(t, s, "w")
				assert.Zero(t, childInfo(t, s, "w").Failures)
				assert.Equal(t, 2, w.starts())
				require.NoError(t, sv.stop())
			})
		})
	}
}

// TestPendingGroupRestartCancelsTimer: a group restart caused by a sibling's
// failure cancels the own timer of a child waiting in backoff: the group
// restart starts it, and the old timer does not start it a second time.
func TestPendingGroupRestartCancelsTimer(t *testing.T) {
	t.Run("one_for_all", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newQuiet("root", WithStrategy(OneForAll), WithIntensity(100, time.Minute))
			a, b := newProbe("a", nil), newProbe("b", nil)
			require.NoError(t, s.Add("a", a, WithBackoff(ConstantBackoff(10*time.Second))))
			sv := serveBG(t, s)
			t0 := time.Now()
			a.fail(t, errBoom)
			requireWaiting(t, s, "a", 1, t0.Add(10*time.Second))

			// b joins while a waits, so that it runs and can fail.
			require.NoError(t, s.Add("b", b))
			synctest.Wait()
			requireRunning(t, s, "b")
			b.fail(t, errBoom)
			requireRunning(t, s, "a")
			requireRunning(t, s, "b")
			assert.Equal(t, 2, a.starts(), "the group restart started a at once")
			assert.Equal(t, 2, b.starts())

			advance(time.Minute)
			assert.Equal(t, 2, a.starts(), "a's old timer did not start it again")
			_, maxCopies, _ := a.counts()
			assert.Equal(t, 1, maxCopies, "never two copies of a")
			assert.Equal(t, 2, b.starts())
			assert.Equal(t, []string{"a:running", "b:running"}, states(s))
			require.NoError(t, sv.stop())
		})
	})
	t.Run("rest_for_one", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newQuiet("root", WithStrategy(RestForOne), WithIntensity(100, time.Minute))
			a, b := newProbe("a", nil), newProbe("b", nil)
			require.NoError(t, s.Add("b", b, WithBackoff(ConstantBackoff(3*time.Second))))
			require.NoError(t, s.Add("a", a, WithBackoff(ConstantBackoff(10*time.Second))))
			sv := serveBG(t, s)
			t0 := time.Now()
			a.fail(t, errBoom)
			requireWaiting(t, s, "a", 1, t0.Add(10*time.Second))
			requireRunning(t, s, "b")

			b.fail(t, errBoom)
			requireWaiting(t, s, "b", 1, t0.Add(3*time.Second))
			requireWaiting(t, s, "a", 1, t0.Add(3*time.Second))
			advance(3 * time.Second)
			requireRunning(t, s, "a")
			requireRunning(t, s, "b")
			assert.Equal(t, 2, a.starts())
			assert.Equal(t, 2, b.starts())

			advance(time.Minute)
			assert.Equal(t, 2, a.starts(), "a's old timer did not start it again")
			_, maxCopies, _ := a.counts()
			assert.Equal(t, 1, maxCopies, "never two copies of a")
			require.NoError(t, sv.stop())
		})
	})
}

// ---------------------------------------------------------------------------
// 6. Group restarts wait for the trigger's delay.

// TestGroupBackoffWaitsTriggerDelay: under OneForAll, b's failure stops a and
// c at once, and all three start again, in start order, only after b's 3s.
func TestGroupBackoffWaitsTriggerDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithStrategy(OneForAll))
		o := watchLaunches(s)
		a, b, c := o.probe("a"), o.probe("b"), o.probe("c")
		o.add(t, a)
		o.add(t, b, WithBackoff(ConstantBackoff(3*time.Second)))
		o.add(t, c)
		sv := serveBG(t, s)
		o.take(t)
		t0 := time.Now()

		b.exit <- errBoom
		synctest.Wait()
		assert.Equal(t, []string{"exit b", "stop c", "stop a"}, o.take(t), "siblings stopped at once")
		due := t0.Add(3 * time.Second)
		requireWaiting(t, s, "a", 0, due)
		requireWaiting(t, s, "b", 1, due)
		requireWaiting(t, s, "c", 0, due)
		for _, p := range []*probe{a, b, c} {
			running, _, _ := p.counts()
			assert.Zero(t, running, p.name)
		}

		advance(3*time.Second - time.Nanosecond)
		assert.Empty(t, o.take(t), "nothing starts early")
		advance(time.Nanosecond)
		assert.Equal(t, []string{"start a", "start b", "start c"}, o.take(t))
		for _, name := range []string{"a", "b", "c"} {
			requireRunning(t, s, name)
		}
		assert.Equal(t, map[string]int{"a": 1, "b": 1, "c": 1}, restartCounts(s))
		for _, p := range []*probe{a, b, c} {
			_, maxCopies, starts := p.counts()
			assert.Equal(t, 2, starts, p.name)
			assert.Equal(t, 1, maxCopies, p.name)
		}
		require.NoError(t, sv.stop())
	})
}

// TestGroupBackoffRestForOne: under RestForOne the delay applies to the
// trigger and the children after it; earlier children are untouched.
func TestGroupBackoffRestForOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithStrategy(RestForOne))
		o := watchLaunches(s)
		a, b, c := o.probe("a"), o.probe("b"), o.probe("c")
		o.add(t, a)
		o.add(t, b, WithBackoff(ConstantBackoff(3*time.Second)))
		o.add(t, c)
		sv := serveBG(t, s)
		o.take(t)
		t0 := time.Now()

		b.exit <- errBoom
		synctest.Wait()
		assert.Equal(t, []string{"exit b", "stop c"}, o.take(t))
		requireRunning(t, s, "a")
		requireWaiting(t, s, "b", 1, t0.Add(3*time.Second))
		requireWaiting(t, s, "c", 0, t0.Add(3*time.Second))
		advance(3 * time.Second)
		assert.Equal(t, []string{"start b", "start c"}, o.take(t))
		assert.Equal(t, []string{"a:running", "b:running", "c:running"}, states(s))
		require.NoError(t, sv.stop())
	})
}

// TestGroupBackoffTerminateDuringWait: Terminate or Remove of a member of a
// delayed group restart, the trigger or another, leaves it out; the others
// still start when due.
func TestGroupBackoffTerminateDuringWait(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target string
		remove bool
	}{
		{"terminate trigger", "b", false},
		{"terminate sibling", "c", false},
		{"remove trigger", "b", true},
		{"remove sibling", "c", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				log := &eventLog{}
				s := newQuiet("root", WithStrategy(OneForAll))
				a, b, c := newProbe("a", log), newProbe("b", log), newProbe("c", log)
				require.NoError(t, s.Add("a", a))
				require.NoError(t, s.Add("b", b, WithBackoff(ConstantBackoff(3*time.Second))))
				require.NoError(t, s.Add("c", c))
				sv := serveBG(t, s)
				t0 := time.Now()
				b.exit <- errBoom
				synctest.Wait()
				log.take()

				if tc.remove {
					require.NoError(t, s.Remove(context.Background(), tc.target))
				} else {
					require.NoError(t, s.Terminate(context.Background(), tc.target))
					info := childInfo(t, s, tc.target)
					assert.Equal(t, Stopped, info.State)
					assert.True(t, info.NextStart.IsZero(), "NextStart %v", info.NextStart)
				}
				for _, name := range []string{"a", "b", "c"} {
					if name != tc.target {
						requireWaiting(t, s, name, childInfo(t, s, name).Failures, t0.Add(3*time.Second))
					}
				}
				advance(3 * time.Second)
				advance(time.Minute)
				want := map[string]int{"a": 2, "b": 2, "c": 2}
				want[tc.target] = 1
				for _, p := range []*probe{a, b, c} {
					assert.Equal(t, want[p.name], p.starts(), p.name)
				}
				for _, info := range s.Children() {
					if info.Name == tc.target {
						assert.Equal(t, Stopped, info.State, info.Name)
					} else {
						assert.Equal(t, Running, info.State, info.Name)
					}
				}
				if tc.remove {
					assert.NotContains(t, childNames(s), tc.target)
				}
				require.NoError(t, sv.stop())
			})
		})
	}
}

// TestGroupBackoffTerminateTriggerKeepsOthersDue: with two delayed restarts
// pending at once, terminating the trigger of the later group restart still
// starts the rest of its group when that restart is due, not when the earlier
// one fires.
func TestGroupBackoffTerminateTriggerKeepsOthersDue(t *testing.T) {
	for _, remove := range []bool{false, true} {
		t.Run(map[bool]string{false: "terminate", true: "remove"}[remove], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newQuiet("root", WithStrategy(RestForOne), WithIntensity(100, time.Minute))
				b, c, d := newProbe("b", nil), newProbe("c", nil), newProbe("d", nil)
				require.NoError(t, s.Add("b", b, WithBackoff(ConstantBackoff(10*time.Second))))
				require.NoError(t, s.Add("c", c))
				sv := serveBG(t, s)
				t0 := time.Now()

				b.fail(t, errBoom) // restarts b and c at t0+10s
				requireWaiting(t, s, "b", 1, t0.Add(10*time.Second))
				requireWaiting(t, s, "c", 0, t0.Add(10*time.Second))

				// d joins after b's group was fixed and restarts on its own.
				require.NoError(t, s.Add("d", d, WithBackoff(ConstantBackoff(3*time.Second))))
				synctest.Wait()
				d.fail(t, errBoom) // restarts d at t0+3s
				requireWaiting(t, s, "d", 1, t0.Add(3*time.Second))

				if remove {
					require.NoError(t, s.Remove(context.Background(), "b"))
				} else {
					require.NoError(t, s.Terminate(context.Background(), "b"))
				}
				requireWaiting(t, s, "c", 0, t0.Add(10*time.Second))

				advance(3 * time.Second)
				requireRunning(t, s, "d")
				assert.Equal(t, 2, d.starts())
				assert.Equal(t, 1, c.starts(), "c is not started before its group restart is due")
				requireWaiting(t, s, "c", 0, t0.Add(10*time.Second))

				advance(7 * time.Second)
				requireRunning(t, s, "c")
				assert.Equal(t, 2, c.starts(), "c starts when b's group restart is due")
				assert.Equal(t, 1, b.starts(), "b stays stopped")
				require.NoError(t, sv.stop())
			})
		})
	}
}

// ---------------------------------------------------------------------------
// 7. Restart intensity counts the restarts performed.

// TestRecipeNeverGiveUp: with WithIntensity(3, 10s) and an exponential
// backoff from 5s, an always-failing child is restarted forever: its
// restarts are spaced beyond the intensity window.
func TestRecipeNeverGiveUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithIntensity(3, 10*time.Second))
		w := newProbe("w", nil).each(copyPlan{failAtOnce: errBoom})
		require.NoError(t, s.Add("w", w, WithBackoff(ExponentialBackoff{Initial: 5 * time.Second, Max: time.Minute, Multiplier: 2})))
		t0 := time.Now()
		sv := serveBG(t, s)

		advance(10 * time.Minute)
		sv.stillServing(t)
		// Starts at 0, 5, 15, 35, 75, 135, 195, ..., 555 s.
		info := childInfo(t, s, "w")
		assert.GreaterOrEqual(t, info.Restarts, 8)
		assert.Equal(t, 12, info.Restarts)
		assert.Equal(t, 13, w.starts())
		requireWaiting(t, s, "w", 13, t0.Add(615*time.Second))
		require.NoError(t, sv.stop())
	})
}

// TestRecipeOTP: with WithIntensity(3, 10s) and no backoff, an
// always-failing child is restarted exactly 3 times, then Serve returns
// ErrIntensityExceeded without any fake time passing.
func TestRecipeOTP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithIntensity(3, 10*time.Second))
		w := newProbe("w", nil).each(copyPlan{failAtOnce: errBoom})
		require.NoError(t, s.Add("w", w))
		start := time.Now()
		err := s.Serve(t.Context())
		assert.Zero(t, time.Since(start), "Serve returned at once")
		require.ErrorIs(t, err, ErrIntensityExceeded)
		require.ErrorIs(t, err, errBoom)
		assert.Equal(t, 4, w.starts(), "started once and restarted 3 times")
		info := childInfo(t, s, "w")
		assert.Equal(t, 3, info.Restarts)
		assert.Equal(t, Stopped, info.State)
	})
}

// ---------------------------------------------------------------------------
// 8. Restart decisions.

// TestDecisionDoNotRestart: a child returning an error that wraps
// ErrDoNotRestart is not restarted, whatever its policy or predicate; it is
// Stopped with the error as LastError, and the supervisor goes on.
func TestDecisionDoNotRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []ChildOption
	}{
		{"permanent", nil},
		{"transient", []ChildOption{WithRestart(Transient)}},
		{"permanent with predicate", []ChildOption{WithRestartIf(func(error) bool { return true })}},
		{"permanent with backoff", []ChildOption{WithBackoff(ConstantBackoff(time.Second))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newQuiet("root")
				other, w := newProbe("other", nil), newProbe("w", nil)
				require.NoError(t, s.Add("other", other))
				require.NoError(t, s.Add("w", w, tc.opts...))
				sv := serveBG(t, s)

				done := fmt.Errorf("done: %w", ErrDoNotRestart)
				w.fail(t, done)
				advance(time.Hour)
				sv.stillServing(t)
				assert.Equal(t, 1, w.starts(), "not restarted")
				info := childInfo(t, s, "w")
				assert.Equal(t, Stopped, info.State)
				assert.Equal(t, done, info.LastError)
				assert.Zero(t, info.Restarts)
				assert.True(t, info.NextStart.IsZero())
				requireRunning(t, s, "other")

				require.NoError(t, s.Restart("w"), "it can be started again by hand")
				synctest.Wait()
				assert.Equal(t, 2, w.starts())
				require.NoError(t, sv.stop())
			})
		})
	}
}

// TestDecisionDoNotRestartSignificant: a significant transient child under
// AnySignificant returning ErrDoNotRestart counts as exited: the supervisor
// shuts down and Serve returns nil.
func TestDecisionDoNotRestartSignificant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithAutoShutdown(AnySignificant))
		other, sig := newProbe("other", nil), newProbe("sig", nil)
		require.NoError(t, s.Add("other", other))
		require.NoError(t, s.Add("sig", sig, WithRestart(Transient), WithSignificant()))
		sv := serveBG(t, s)
		start := time.Now()

		sig.exit <- fmt.Errorf("done: %w", ErrDoNotRestart)
		require.NoError(t, sv.returned(t))
		assert.Zero(t, time.Since(start))
		assert.Equal(t, 1, sig.starts())
		r, _, _ := other.counts()
		assert.Zero(t, r, "the other child was stopped")
		assert.Equal(t, []string{"other:stopped", "sig:stopped"}, states(s))
	})
}

// TestDecisionRestartIf: WithRestartIf decides in place of a permanent
// child's policy: restart for errRetryable, not for other errors, not for a
// normal exit.
func TestDecisionRestartIf(t *testing.T) {
	errRetryable := errors.New("retryable")
	var mu sync.Mutex
	var seen []error
	pred := func(err error) bool {
		mu.Lock()
		seen = append(seen, err)
		mu.Unlock()
		return errors.Is(err, errRetryable)
	}
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithIntensity(100, time.Minute))
		a, b := newProbe("a", nil), newProbe("b", nil)
		require.NoError(t, s.Add("a", a, WithRestartIf(pred)))
		require.NoError(t, s.Add("b", b, WithRestartIf(pred)))
		sv := serveBG(t, s)

		wrapped := fmt.Errorf("again: %w", errRetryable)
		a.fail(t, wrapped)
		requireRunning(t, s, "a")
		assert.Equal(t, 2, a.starts(), "restarted for errRetryable")
		other := errors.New("other")
		a.fail(t, other)
		assert.Equal(t, Stopped, childInfo(t, s, "a").State, "not restarted for another error")
		assert.Equal(t, other, childInfo(t, s, "a").LastError)

		b.fail(t, nil)
		assert.Equal(t, Stopped, childInfo(t, s, "b").State, "not restarted after a normal exit")
		advance(time.Hour)
		assert.Equal(t, 2, a.starts())
		assert.Equal(t, 1, b.starts())
		sv.stillServing(t)
		require.NoError(t, sv.stop())
		mu.Lock()
		assert.Equal(t, []error{wrapped, other, nil}, seen, "the predicate saw each exit")
		mu.Unlock()
	})
}

// TestDecisionRestartIfTemporary: a temporary child is never restarted and
// its predicate is not consulted.
func TestDecisionRestartIfTemporary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root")
		var mu sync.Mutex
		calls := 0
		w := newProbe("w", nil)
		require.NoError(t, s.Add("w", w, WithRestart(Temporary), WithRestartIf(func(error) bool {
			mu.Lock()
			calls++
			mu.Unlock()
			return true
		})))
		sv := serveBG(t, s)
		w.fail(t, errBoom)
		assert.Empty(t, s.Children(), "the temporary child is gone")
		assert.Equal(t, 1, w.starts())
		mu.Lock()
		assert.Zero(t, calls, "the predicate was not consulted")
		mu.Unlock()
		require.NoError(t, sv.stop())
	})
}

// TestDecisionRestartIfPanics: a predicate that panics is recovered and the
// restart policy decides: permanent restarts, transient after a normal exit
// does not; nothing crashes.
func TestDecisionRestartIfPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithIntensity(100, time.Minute))
		bad := func(error) bool { panic("predicate broke") }
		perm, trans := newProbe("perm", nil), newProbe("trans", nil)
		require.NoError(t, s.Add("perm", perm, WithRestartIf(bad)))
		require.NoError(t, s.Add("trans", trans, WithRestart(Transient), WithRestartIf(bad)))
		sv := serveBG(t, s)

		require.NotPanics(t, func() { perm.fail(t, errBoom) })
		requireRunning(t, s, "perm")
		assert.Equal(t, 2, perm.starts(), "permanent: restarted")
		perm.fail(t, nil)
		requireRunning(t, s, "perm")
		assert.Equal(t, 3, perm.starts(), "permanent: restarted after a normal exit too")

		trans.fail(t, errBoom)
		requireRunning(t, s, "trans")
		assert.Equal(t, 2, trans.starts(), "transient: restarted after a failure")
		trans.fail(t, nil)
		assert.Equal(t, Stopped, childInfo(t, s, "trans").State, "transient: not restarted after a normal exit")
		sv.stillServing(t)
		require.NoError(t, sv.stop())
	})
}

// TestDecisionRestartIfLogsPanic: the predicate's panic is logged as an error.
func TestDecisionRestartIfLogsPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		buf := &syncBuffer{}
		s := New("root", WithLogger(slog.New(slog.NewTextHandler(buf, nil))))
		w := newProbe("w", nil)
		require.NoError(t, s.Add("w", w, WithRestartIf(func(error) bool { panic("predicate broke") })))
		sv := serveBG(t, s)
		w.fail(t, errBoom)
		assert.Equal(t, 2, w.starts())
		assert.Contains(t, buf.String(), "restart policy panicked")
		assert.Contains(t, buf.String(), "predicate broke")
		require.NoError(t, sv.stop())
	})
}

// TestDecisionTerminateTree: a worker two levels down returning an error that
// wraps ErrTerminateTree shuts down its supervisor, the parent and the root,
// although the root has intensity left and every child is permanent; the
// root's Serve returns an error matching ErrTerminateTree.
func TestDecisionTerminateTree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := newQuiet("root", WithIntensity(10, time.Minute))
		mid := newQuiet("mid", WithIntensity(10, time.Minute))
		leaf := newQuiet("leaf", WithIntensity(10, time.Minute))
		rootW, midW, leafW, w := newProbe("rootw", nil), newProbe("midw", nil), newProbe("leafw", nil), newProbe("w", nil)
		require.NoError(t, leaf.Add("w", w, WithRestartIf(func(error) bool { return true })))
		require.NoError(t, leaf.Add("leafw", leafW))
		require.NoError(t, mid.Add("leaf", leaf))
		require.NoError(t, mid.Add("midw", midW))
		require.NoError(t, root.Add("mid", mid))
		require.NoError(t, root.Add("rootw", rootW))
		sv := serveBG(t, root)
		start := time.Now()

		w.exit <- fmt.Errorf("fatal: %w", ErrTerminateTree)
		err := sv.returned(t)
		assert.Zero(t, time.Since(start), "the tree shut down at once")
		require.ErrorIs(t, err, ErrTerminateTree)
		assert.Contains(t, err.Error(), "fatal")
		assert.NotErrorIs(t, err, ErrIntensityExceeded)
		for _, x := range []*probe{w, leafW, midW, rootW} {
			r, _, _ := x.counts()
			assert.Zero(t, r)
			assert.Equal(t, 1, x.starts(), "nothing was restarted")
		}
		assert.Equal(t, []string{"mid:stopped", "rootw:stopped"}, states(root))
		assert.Equal(t, []string{"leaf:stopped", "midw:stopped"}, states(mid))
		assert.Equal(t, []string{"w:stopped", "leafw:stopped"}, states(leaf))
		assert.Zero(t, childInfo(t, root, "mid").Restarts)
		assert.ErrorIs(t, childInfo(t, root, "mid").LastError, ErrTerminateTree)
	})
}

// ---------------------------------------------------------------------------
// 9. Bad input.

// badBackoffOptions lists bad backoff options that New and Add both take. Each is
// built by a function, so that building it is checked for panics too.
var badBackoffOptions = []struct {
	name string
	opt  func() SharedOption
}{
	{"negative constant", func() SharedOption { return WithBackoff(ConstantBackoff(-time.Second)) }},
	{"zero Initial", func() SharedOption {
		return WithBackoff(ExponentialBackoff{Initial: 0, Max: time.Second, Multiplier: 2})
	}},
	{"negative Initial", func() SharedOption {
		return WithBackoff(ExponentialBackoff{Initial: -time.Second, Max: time.Second, Multiplier: 2})
	}},
	{"Max below Initial", func() SharedOption {
		return WithBackoff(ExponentialBackoff{Initial: 2 * time.Second, Max: time.Second, Multiplier: 2})
	}},
	{"Multiplier 0.5", func() SharedOption {
		return WithBackoff(ExponentialBackoff{Initial: time.Second, Max: time.Minute, Multiplier: 0.5})
	}},
	{"Multiplier 0", func() SharedOption {
		return WithBackoff(ExponentialBackoff{Initial: time.Second, Max: time.Minute})
	}},
	{"Multiplier NaN", func() SharedOption {
		return WithBackoff(ExponentialBackoff{Initial: time.Second, Max: time.Minute, Multiplier: math.NaN()})
	}},
	{"Multiplier +Inf", func() SharedOption {
		return WithBackoff(ExponentialBackoff{Initial: time.Second, Max: time.Minute, Multiplier: math.Inf(1)})
	}},
	{"Jitter -0.1", func() SharedOption {
		return WithBackoff(ExponentialBackoff{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: -0.1})
	}},
	{"Jitter 1.5", func() SharedOption {
		return WithBackoff(ExponentialBackoff{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: 1.5})
	}},
	{"Jitter NaN", func() SharedOption {
		return WithBackoff(ExponentialBackoff{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: math.NaN()})
	}},
	{"nil Backoff", func() SharedOption { return WithBackoff(nil) }},
	{"nil *ExponentialBackoff", func() SharedOption { return WithBackoff((*ExponentialBackoff)(nil)) }},
	{"bad *ExponentialBackoff", func() SharedOption { return WithBackoff(&ExponentialBackoff{}) }},
	{"negative reset", func() SharedOption { return WithBackoffReset(-1) }},
}

// TestBadBackoffNew: a bad backoff option given to New makes Serve return an
// ErrInvalid error at once, starting nothing.
func TestBadBackoffNew(t *testing.T) {
	for _, tc := range badBackoffOptions {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var s *Supervisor
				require.NotPanics(t, func() { s = newQuiet("root", tc.opt()) })
				w := newProbe("w", nil)
				require.NoError(t, s.Add("w", w))
				var err error
				require.NotPanics(t, func() { err = serveNow(t, s) })
				require.ErrorIs(t, err, ErrInvalid)
				synctest.Wait()
				assert.Zero(t, w.starts(), "no child was started")
				assert.Equal(t, []string{"w:stopped"}, states(s))
			})
		})
	}
}

// TestBadBackoffAdd: a bad backoff, reset or predicate option given to Add
// makes it return an ErrInvalid error, before and while serving, and adds
// nothing.
func TestBadBackoffAdd(t *testing.T) {
	type addCase struct {
		name string
		opt  func() ChildOption
	}
	var cases []addCase
	for _, tc := range badBackoffOptions {
		cases = append(cases, addCase{tc.name, func() ChildOption { return tc.opt() }})
	}
	cases = append(cases, addCase{"nil predicate", func() ChildOption { return WithRestartIf(nil) }})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newQuiet("root")
				w := newProbe("w", nil)
				var err error
				require.NotPanics(t, func() { err = s.Add("w", w, tc.opt()) })
				require.ErrorIs(t, err, ErrInvalid, "before Serve")
				assert.Empty(t, s.Children())
				require.ErrorIs(t, s.Serve(t.Context()), ErrInvalid, "the refused Add fails the next Serve")

				s = newQuiet("root")
				sv := serveBG(t, s)
				require.NotPanics(t, func() { err = s.Add("w", w, tc.opt()) })
				require.ErrorIs(t, err, ErrInvalid, "while serving")
				assert.Empty(t, s.Children())
				synctest.Wait()
				assert.Zero(t, w.starts(), "never started")
				require.NoError(t, s.Add("ok", newProbe("ok", nil)), "the supervisor still works")
				require.NoError(t, sv.stop())
			})
		})
	}
}

// TestBadBackoffEdgesAccepted: the limits of the valid ranges are accepted.
func TestBadBackoffEdgesAccepted(t *testing.T) {
	good := []SharedOption{
		WithBackoff(ConstantBackoff(0)),
		WithBackoff(ConstantBackoff(0)),
		WithBackoff(ExponentialBackoff{Initial: 1, Max: 1, Multiplier: 1}),
		WithBackoff(ExponentialBackoff{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: 1}),
		WithBackoff(&ExponentialBackoff{Initial: time.Second, Max: time.Minute, Multiplier: 2}),
		WithBackoff(&stepBackoff{}),
		WithBackoffReset(0),
	}
	for i, opt := range good {
		synctest.Test(t, func(t *testing.T) {
			s := newQuiet("root", opt)
			require.NoError(t, s.Add("w", newProbe("w", nil), opt), "option %d", i)
			sv := serveBG(t, s)
			sv.stillServing(t)
			require.NoError(t, sv.stop(), "option %d", i)
		})
	}
}

// TestBadBackoffTypedNilCustom: a nil pointer to a custom Backoff type is
// rejected like a nil *ExponentialBackoff, instead of panicking later in the
// supervisor's goroutine.
func TestBadBackoffTypedNilCustom(t *testing.T) {
	s := newQuiet("root")
	err := s.Add("w", newProbe("w", nil), WithBackoff((*fixedBackoff)(nil)))
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorIs(t, newQuiet("root2", WithBackoff((*fixedBackoff)(nil))).Serve(t.Context()), ErrInvalid)
}

// ---------------------------------------------------------------------------
// 10. Custom policies.

// TestCustomBackoff: a Backoff of one's own is asked with the consecutive
// failure count and its delays are kept exactly.
func TestCustomBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &stepBackoff{}
		s := newQuiet("root", WithBackoff(b), WithIntensity(100, time.Minute))
		w := newProbe("w", nil)
		require.NoError(t, s.Add("w", w))
		sv := serveBG(t, s)
		for n := 1; n <= 4; n++ {
			w.fail(t, errBoom)
			d := time.Duration(n) * 100 * time.Millisecond
			requireWaiting(t, s, "w", n, time.Now().Add(d))
			advance(d - time.Nanosecond)
			assert.Equal(t, n, w.starts())
			advance(time.Nanosecond)
			assert.Equal(t, n+1, w.starts())
		}
		assert.Equal(t, []int{1, 2, 3, 4}, b.calls())
		require.NoError(t, sv.stop())
	})
}

// TestCustomBackoffNegative: a negative delay counts as zero: the child is
// restarted at once.
func TestCustomBackoffNegative(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newQuiet("root", WithIntensity(100, time.Minute))
		w := newProbe("w", nil)
		require.NoError(t, s.Add("w", w, WithBackoff(fixedBackoff(-time.Hour))))
		sv := serveBG(t, s)
		start := time.Now()
		for n := 1; n <= 3; n++ {
			w.fail(t, errBoom)
			assert.Equal(t, n+1, w.starts(), "restarted at once")
			requireRunning(t, s, "w")
			assert.Equal(t, n, childInfo(t, s, "w").Failures)
		}
		assert.Zero(t, time.Since(start))
		require.NoError(t, sv.stop())
	})
}
