package arbor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/arborgo/arbor/internal/gstack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Regression tests for the nine defects a hostile pass found in the engine
// before its redesign (D1 to D9). Each names the defect it pins down. D8,
// a silent systemd that wedged shutdown, is TestSystemdSilentReceiverShutdown
// in notify_test.go.

// deaf is a worker that sends no heartbeat, never signals readiness and
// ignores cancellation until released; it counts its copies.
type deaf struct {
	starts  atomic.Int32
	release chan struct{}
}

func newDeaf() *deaf { return &deaf{release: make(chan struct{})} }

func (d *deaf) Serve(ctx context.Context) error {
	d.starts.Add(1)
	<-d.release
	return errors.New("late failure")
}

// TestRegressionD1StuckHungChildStaysRemoved: a child cancelled for a missed
// heartbeat or start timeout that is then declared stuck and removed (or
// terminated) is deleted (or kept Stopped) when its copy returns, not
// restarted as if it had failed.
func TestRegressionD1StuckHungChildStaysRemoved(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opt       ChildOption
		remove    bool
		wantCause error
	}{
		{name: "heartbeat, Remove", opt: WithHeartbeat(time.Second), remove: true, wantCause: ErrHung},
		{name: "heartbeat, Terminate", opt: WithHeartbeat(time.Second), wantCause: ErrHung},
		{name: "start timeout, Remove", opt: WithReadiness(time.Second), remove: true, wantCause: ErrStartTimeout},
		{name: "start timeout, Terminate", opt: WithReadiness(time.Second), wantCause: ErrStartTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := New("root", WithLogger(nil))
				d := newDeaf()
				require.NoError(t, s.Add("w", d, tc.opt, WithShutdownTimeout(time.Second)))
				sv := serveBG(t, s)
				time.Sleep(2 * time.Second) // cancelled at 1s, stuck at 2s
				synctest.Wait()
				require.Equal(t, []string{"w:stuck"}, states(s))
				var err error
				if tc.remove {
					err = s.Remove(t.Context(), "w")
				} else {
					err = s.Terminate(t.Context(), "w")
				}
				var se *StuckError
				require.ErrorAs(t, err, &se)
				require.ErrorIs(t, err, tc.wantCause, "the stuck error reaches why it was cancelled")
				close(d.release)
				synctest.Wait()
				if tc.remove {
					assert.Empty(t, states(s), "removed once its copy returned")
				} else {
					assert.Equal(t, []string{"w:stopped"}, states(s), "kept Stopped")
				}
				assert.EqualValues(t, 1, d.starts.Load(), "never restarted")
				require.NoError(t, sv.stop())
			})
		})
	}
}

// TestRegressionD2WaitingTerminateAnsweredWhenStuck: a Terminate of a hung
// child, queued behind another child's slow stop, is answered when the hung
// child is declared stuck, not when it returns.
func TestRegressionD2WaitingTerminateAnsweredWhenStuck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil))
		slow := newProbe("slow", nil)
		slow.setIgnore(true)
		hung := newDeaf()
		require.NoError(t, s.Add("slow", slow, WithShutdownTimeout(10*time.Second)))
		require.NoError(t, s.Add("hung", hung, WithHeartbeat(time.Second), WithShutdownTimeout(time.Second)))
		sv := serveBG(t, s)
		time.Sleep(500 * time.Millisecond)
		go func() { _ = s.Terminate(context.Background(), "slow") }() // its stop takes 10s
		synctest.Wait()
		start := time.Now()
		err := s.Terminate(t.Context(), "hung") // queued behind slow's stop
		assert.Equal(t, 1500*time.Millisecond, time.Since(start), "answered when declared stuck, at 2s")
		require.ErrorIs(t, err, ErrStuck)
		require.ErrorIs(t, err, ErrHung)

		// A waiter bounded by its context gives up without leaking.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		slow2 := newProbe("slow2", nil)
		slow2.setIgnore(true)
		require.NoError(t, s.Add("slow2", slow2, WithShutdownTimeout(time.Hour)))
		synctest.Wait()
		require.ErrorIs(t, s.Terminate(ctx, "slow2"), context.DeadlineExceeded)
		close(slow.release)
		close(slow2.release)
		close(hung.release)
		synctest.Wait() // every stuck copy returned
		require.NoError(t, sv.stop())
	})
}

// TestRegressionD3StuckGrandchildReported: Terminate or Remove of a nested
// supervisor whose worker ignores cancellation reports the stuck
// grandchild, which Health, Tree and the root's Serve show until it returns.
func TestRegressionD3StuckGrandchildReported(t *testing.T) {
	for _, remove := range []bool{false, true} {
		t.Run(fmt.Sprintf("remove=%v", remove), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				root := New("root", WithLogger(nil))
				mid := New("mid", WithLogger(nil))
				w := newProbe("w", nil)
				w.setIgnore(true)
				require.NoError(t, mid.Add("w", w, WithShutdownTimeout(time.Second)))
				require.NoError(t, root.Add("mid", mid))
				sv := serveBG(t, root)
				var err error
				if remove {
					err = root.Remove(t.Context(), "mid")
				} else {
					err = root.Terminate(t.Context(), "mid")
				}
				var se *StuckError
				require.ErrorAs(t, err, &se, "the stuck grandchild is reported")
				assert.Equal(t, "root/mid", se.Supervisor)
				assert.Equal(t, "w", se.Child)
				if !remove {
					h := root.Health(t.Context())
					assert.False(t, h.Live, "a stuck grandchild makes the tree not live")
					var stuck []string
					for n := range root.Tree(t.Context()).All() {
						if n.State == Stuck {
							stuck = append(stuck, n.Path)
						}
					}
					assert.Equal(t, []string{"root/mid/w"}, stuck)
				}
				err = sv.stop()
				if !remove {
					require.ErrorAs(t, err, &se, "the root's Serve names the stuck grandchild")
					assert.Equal(t, "root/mid", se.Supervisor)
				}
				close(w.release)
				synctest.Wait()
			})
		})
	}
}

// TestRegressionD4ServeRacingReturn: a Serve that starts while another
// returns either serves or gets ErrAlreadyServing; nothing panics or
// wedges. Run under -race.
func TestRegressionD4ServeRacingReturn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil))
		p := newProbe("p", nil)
		require.NoError(t, s.Add("p", p))
		for range 50 {
			ctx, cancel := context.WithCancel(t.Context())
			var wg sync.WaitGroup
			errs := make([]error, 3)
			for i := range errs {
				wg.Go(func() { errs[i] = s.Serve(ctx) })
			}
			synctest.Wait()
			cancel()
			ctx2, cancel2 := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- s.Serve(ctx2) }() // races the returning Serve
			wg.Wait()
			served := 0
			for _, err := range errs {
				if err == nil {
					served++
				} else {
					require.ErrorIs(t, err, ErrAlreadyServing)
				}
			}
			assert.Equal(t, 1, served, "exactly one Serve served")
			synctest.Wait()
			assert.Len(t, s.Children(), 1)
			cancel2()
			if err := <-done; err != nil {
				require.ErrorIs(t, err, ErrAlreadyServing)
			}
		}
		_, most, _ := p.counts()
		assert.Equal(t, 1, most, "never two copies")

		// One supervisor under two parents, or in a cycle, is refused by Add.
		a, b, sub := New("a"), New("b"), New("sub")
		require.NoError(t, a.Add("sub", sub))
		require.ErrorIs(t, b.Add("sub", sub), ErrInvalid)
		require.ErrorIs(t, sub.Add("a", a), ErrInvalid, "a cycle")
		require.ErrorIs(t, a.Add("self", a), ErrInvalid)
		require.NoError(t, a.Remove(t.Context(), "sub"))
		require.NoError(t, b.Add("sub", sub), "free again once removed")
	})
}

// TestRegressionD5PendingGroupRestartKept: a group restart waiting for its
// trigger's backoff still starts its members after the trigger was
// terminated, restarted and exited again.
func TestRegressionD5PendingGroupRestartKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil), WithStrategy(OneForAll), WithBackoff(ConstantBackoff(time.Second)))
		trig, sib := newProbe("t", nil), newProbe("s", nil)
		require.NoError(t, s.Add("t", trig, WithRestart(Transient)))
		require.NoError(t, s.Add("s", sib))
		sv := serveBG(t, s)
		trig.exit <- errors.New("boom")
		synctest.Wait()
		assert.Equal(t, []string{"t:restarting", "s:restarting"}, states(s))
		require.NoError(t, s.Terminate(t.Context(), "t"))
		require.NoError(t, s.Restart("t"))
		synctest.Wait()
		trig.exit <- nil // a normal exit: a transient child stays Stopped
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"t:stopped", "s:running"}, states(s), "the group restart still started s")
		require.NoError(t, sv.stop())
	})
}

// badErr is an error value with hostile methods.
type badErr struct{ mode string }

func (e *badErr) Error() string {
	if e.mode == "error" {
		panic("Error panics")
	}
	return "bad " + e.mode
}

func (e *badErr) Unwrap() error {
	switch e.mode {
	case "unwrap":
		panic("Unwrap panics")
	case "cycle":
		return e
	}
	return nil
}

func (e *badErr) Is(error) bool {
	if e.mode == "is" {
		panic("Is panics")
	}
	return false
}

// TestRegressionD6UntrustedErrorValues: a worker's error whose methods panic
// or whose Unwrap returns itself neither crashes nor spins the supervisor,
// its logger or a nested supervisor: the child fails and is restarted.
func TestRegressionD6UntrustedErrorValues(t *testing.T) {
	for _, mode := range []string{"unwrap", "cycle", "is", "error"} {
		t.Run(mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var buf bytes.Buffer
				lg := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
				root := New("root", WithLogger(lg), WithIntensity(10, time.Minute))
				mid := New("mid", WithIntensity(0, time.Minute))
				var starts atomic.Int32
				require.NoError(t, mid.Add("w", WorkerFunc(func(ctx context.Context) error {
					if starts.Add(1) <= 2 {
						return &badErr{mode: mode}
					}
					<-ctx.Done()
					return nil
				})))
				require.NoError(t, root.Add("mid", mid))
				var direct atomic.Int32 // the same error, right under the root
				require.NoError(t, root.Add("w", WorkerFunc(func(ctx context.Context) error {
					if direct.Add(1) == 1 {
						return &badErr{mode: mode}
					}
					<-ctx.Done()
					return nil
				})))
				var seen []string
				root.cfg.handlers = append(root.cfg.handlers, func(e Event) { seen = append(seen, e.String()) })
				sv := serveBG(t, root)
				assert.EqualValues(t, 3, starts.Load(), "mid escalated twice and was restarted each time")
				assert.Equal(t, []string{"mid:running", "w:running"}, states(root))
				tree := root.Tree(t.Context())
				assert.NotPanics(t, func() { _ = tree.String() }, "rendering the error")
				assert.NotPanics(t, func() { _, _ = json.Marshal(tree) })
				require.NoError(t, sv.stop())
				assert.NotEmpty(t, seen, "Event.String rendered every event")
				assert.Contains(t, buf.String(), "child failed")
			})
		})
	}
}

// TestRegressionD7StuckChildrenCostNoDumps: declaring many children stuck
// takes no dump of all goroutines; reading all their stacks takes one.
func TestRegressionD7StuckChildrenCostNoDumps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 200
		s := New("root", WithLogger(nil))
		release := make(chan struct{})
		for i := range n {
			require.NoError(t, s.Add(fmt.Sprint("w", i), WorkerFunc(func(context.Context) error {
				<-release
				return nil
			}), WithShutdownTimeout(time.Millisecond)))
		}
		sv := serveBG(t, s)
		before := gstack.Dumps()
		start := time.Now()
		err := sv.stop()
		assert.Equal(t, n*time.Millisecond, time.Since(start), "one shutdown timeout after another")
		assert.Equal(t, before, gstack.Dumps(), "no dump while declaring children stuck")
		var stuck []*StuckError
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var se *StuckError
			require.ErrorAs(t, e, &se)
			stuck = append(stuck, se)
		}
		require.Len(t, stuck, n)
		for _, se := range stuck {
			assert.Contains(t, string(se.Stack()), "TestRegressionD7StuckChildrenCostNoDumps", "the stuck goroutine's own stack")
		}
		assert.Equal(t, before+1, gstack.Dumps(), "one dump found every stack")
		close(release)
		synctest.Wait()
		for _, se := range stuck {
			assert.NotNil(t, se.Stack(), "a stack once found stays")
		}
	})
}

// TestRegressionD9TypedNilErrors: a worker that returns or panics with a nil
// *PanicError or *StuckError fails like any other, and nothing crashes.
func TestRegressionD9TypedNilErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{name: "return nil *PanicError", do: func() error { return (*PanicError)(nil) }},
		{name: "return nil *StuckError", do: func() error { return (*StuckError)(nil) }},
		{name: "return nil *IntensityError", do: func() error { return (*IntensityError)(nil) }},
		{name: "panic nil *PanicError", do: func() error { panic((*PanicError)(nil)) }},
		{name: "panic nil *StuckError", do: func() error { panic((*StuckError)(nil)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var buf bytes.Buffer
				lg := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
				s := New("root", WithLogger(lg), WithIntensity(10, time.Minute))
				var starts atomic.Int32
				require.NoError(t, s.Add("w", WorkerFunc(func(ctx context.Context) error {
					if starts.Add(1) == 1 {
						return tc.do()
					}
					<-ctx.Done()
					return nil
				})))
				sv := serveBG(t, s)
				assert.EqualValues(t, 2, starts.Load(), "failed and restarted")
				info := s.Children()[0]
				assert.Equal(t, 1, info.Restarts)
				require.Error(t, info.LastError)
				_ = info.LastError.Error()
				require.NoError(t, sv.stop())
				assert.Contains(t, buf.String(), "child failed")
			})
		})
	}
}

// TestChildMainName: the name stuck stacks are found by is childMain's.
func TestChildMainName(t *testing.T) {
	assert.Equal(t, runtime.FuncForPC(reflect.ValueOf(childMain).Pointer()).Name(), childMainName)
}

// TestRegressionFirstStartInGroupRestartIsNoRestart: under OneForAll and
// RestForOne, a child whose first start waited in the start queue behind a
// child that failed before it was ready gets its first start from the group
// restart: EventChildStarted, no restart counted. (Issue 11, defect 1.)
func TestRegressionFirstStartInGroupRestartIsNoRestart(t *testing.T) {
	for _, st := range []Strategy{OneForAll, RestForOne} {
		t.Run(st.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var kinds []string
				s := New("root", WithLogger(nil), WithStrategy(st), WithEventHandler(func(e Event) {
					if e.Child == "b" {
						kinds = append(kinds, e.Kind.String())
					}
				}))
				a := newProbe("a", nil) // never ready
				require.NoError(t, s.Add("a", a, WithReadiness(0)))
				require.NoError(t, s.Add("b", newProbe("b", nil)))
				sv := serveBG(t, s)
				assert.Equal(t, []string{"a:starting", "b:starting"}, states(s), "b waits for a")
				a.exit <- errors.New("not ready: failed")
				synctest.Wait()
				assert.Equal(t, []string{"a:starting", "b:starting"}, states(s))
				tree := s.Tree(t.Context())
				b := tree.Children[1]
				assert.Equal(t, 0, b.Restarts)
				assert.Equal(t, Counters{}, b.Counters, "b has not started yet")
				Ready(a.copyContext(t, 1)) // the restarted a is ready: b starts
				synctest.Wait()
				b = s.Tree(t.Context()).Children[1]
				assert.Equal(t, 0, b.Restarts, "its first start is no restart")
				assert.Equal(t, Counters{Starts: 1}, b.Counters)
				require.NoError(t, sv.stop())
				assert.Equal(t, []string{"child started", "child stopped"}, kinds)
			})
		})
	}
}
