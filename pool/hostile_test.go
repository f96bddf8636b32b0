package pool

// Hostile tests: attacks on the pool's guarantees by handlers, sources,
// callbacks and callers that misbehave.
//
// Each TestHostile test is either a defect's minimal reproduction or a
// guard for an attack that held. These reproduced defects that commit
// 1a775dc fixed, and now guard against them coming back:
// GoexitInEventHandler, GoexitInDeadLetter, GoexitInBackoff,
// StaleHeartbeatKeepsHungAttemptAlive, RecycleInSetupLivelocks,
// ExtendOverlapsAck, SourceCyclicErrorSpinsWorker,
// StuckWorkerOfLastServeTakesTasks, WaitCancelledCtxOnEndedTask,
// BusyCountsAbandoned, MaxAbandonedDefaultIgnoresResize,
// ZeroPoolServeCrashesProcess, ExtendPanicCrashesProcess,
// AttemptPanicOnAbandonCrashesProcess, GoexitInEventHandlerOnManager,
// UnhashableErrorHidesDoNotRestart, ShutdownHangsPastSoftLimit.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/arborgo/arbor"
)

// ended waits up to d for tk to end and reports whether it did, without
// failing the test, so that the caller can still stop its pool.
func ended[T, R any](tk *Task[T, R], d time.Duration) (R, error, bool) {
	select {
	case <-tk.Done():
		r, err := tk.Wait(context.Background())
		return r, err, true
	case <-time.After(d):
		var zero R
		return zero, nil, false
	}
}

// stopWithin stops sv and returns what Serve returned, failing the test
// (instead of hanging) if Serve does not return within d.
func stopWithin(t *testing.T, sv *served, d time.Duration) error {
	t.Helper()
	sv.cancel()
	select {
	case err := <-sv.done:
		return err
	case <-time.After(d):
		t.Errorf("Serve did not return within %v of its stop", d)
		return nil
	}
}

// ---------------------------------------------------------------------------
// runtime.Goexit in user callbacks the pool claims to contain.

// An event handler that calls runtime.Goexit (t.FailNow in a test's
// handler, say) must not lose the task: contain recovers panics only.
func TestHostileGoexitInEventHandler(t *testing.T) {
	for _, kind := range []EventKind{EventStarted, EventSucceeded, EventFailed} {
		t.Run(kind.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var once atomic.Bool
				var calls atomic.Int64
				p := mustNew(t, func(_ context.Context, n int) (int, error) {
					if calls.Add(1) == 1 {
						return 0, errors.New("first attempt fails")
					}
					return n, nil
				}, WithWorkers(1), WithRetryBackoff(arbor.ConstantBackoff(0)),
					WithEventHandler(func(e Event) {
						if e.Kind == kind && once.CompareAndSwap(false, true) {
							runtime.Goexit()
						}
					}))
				sv := serve(t, p)
				tk := submit(t, p, 7)
				if _, err, ok := ended(tk, time.Hour); !ok {
					t.Errorf("task lost: an event handler's runtime.Goexit on %v left it unended for an hour", kind)
				} else if err != nil {
					t.Errorf("task: %v, want success on its retry", err)
				}
				_ = stopWithin(t, sv, time.Hour)
			})
		})
	}
}

// A dead-letter function that calls runtime.Goexit must not lose the task.
func TestHostileGoexitInDeadLetter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew(t, func(_ context.Context, n int) (int, error) { return 0, errors.New("always fails") },
			WithWorkers(1), WithMaxAttempts(1),
			WithDeadLetter(func(int, *DeadLetterError) { runtime.Goexit() }))
		sv := serve(t, p)
		tk := submit(t, p, 1)
		if _, err, ok := ended(tk, time.Hour); !ok {
			t.Errorf("task lost: the dead-letter function's runtime.Goexit left it unended for an hour")
		} else if !errors.Is(err, ErrDeadLetter) {
			t.Errorf("task: %v, want ErrDeadLetter", err)
		}
		_ = stopWithin(t, sv, time.Hour)
	})
}

type goexitBackoff struct{}

func (goexitBackoff) Delay(int) time.Duration { runtime.Goexit(); return 0 }

// A retry backoff whose Delay calls runtime.Goexit must not lose the task.
func TestHostileGoexitInBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int64
		p := mustNew(t, func(_ context.Context, n int) (int, error) {
			if calls.Add(1) == 1 {
				return 0, errors.New("first attempt fails")
			}
			return n, nil
		}, WithWorkers(1), WithRetryBackoff(goexitBackoff{}))
		sv := serve(t, p)
		tk := submit(t, p, 1)
		if _, _, ok := ended(tk, time.Hour); !ok {
			t.Errorf("task lost: the backoff's runtime.Goexit left it unended for an hour (%d attempts)", calls.Load())
		}
		_ = stopWithin(t, sv, time.Hour)
	})
}

// ---------------------------------------------------------------------------
// Heartbeat and Recycle are bound to the worker, not to the attempt.

// A goroutine that an earlier attempt spawned, and that still calls
// Heartbeat with that attempt's context after it returned, must not keep a
// later hung attempt of the same worker alive.
func TestHostileStaleHeartbeatKeepsHungAttemptAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew(t, func(ctx context.Context, task string) (int, error) {
			switch task {
			case "spawner":
				go func() { // outlives its attempt, beating with its context
					for range 600 {
						time.Sleep(100 * time.Millisecond)
						Heartbeat(ctx)
					}
				}()
				return 0, nil
			default: // hung: never beats, returns once cancelled
				<-ctx.Done()
				return 0, context.Cause(ctx)
			}
		}, WithWorkers(1), WithHeartbeat(time.Second), WithMaxAttempts(1))
		sv := serve(t, p)
		if _, err := wait(t, submit(t, p, "spawner")); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err := wait(t, submit(t, p, "hung"))
		if d := time.Since(start); d > 2*time.Second || !errors.Is(err, arbor.ErrHung) {
			t.Errorf("hung attempt ended after %v with %v; want cancelled with ErrHung after its 1s heartbeat timeout "+
				"(a stale goroutine of an earlier attempt kept it alive)", d, err)
		}
		time.Sleep(time.Minute) // the spawned goroutine ends
		_ = stopWithin(t, sv, time.Hour)
	})
}

// Recycle with Setup's context (a worker's, not an attempt's) must do
// nothing, as documented; it makes every worker leave before its first
// task, forever.
func TestHostileRecycleInSetupLivelocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var setups atomic.Int64
		p, err := NewWithSetup("jobs", func(ctx context.Context) (Handler[int, int], func(), error) {
			if setups.Add(1) < 200 { // bounded, so that the test ends
				Recycle(ctx)
			}
			return func(_ context.Context, n int) (int, error) { return n, nil }, nil, nil
		}, quiet(WithWorkers(1))...)
		if err != nil {
			t.Fatal(err)
		}
		sv := serve(t, p)
		tk := submit(t, p, 1)
		if _, err, ok := ended(tk, time.Hour); !ok || err != nil {
			t.Errorf("task: ended %v, %v", ok, err)
		}
		if n := setups.Load(); n > 2 {
			t.Errorf("%d worker setups for one task: Recycle on Setup's context made each worker leave before its first task", n)
		}
		_ = stopWithin(t, sv, time.Hour)
	})
}

// ---------------------------------------------------------------------------
// Sources.

// oneSource leases one delivery, then blocks until ctx is done.
type oneSource struct {
	d    *hostileDelivery
	once atomic.Bool
}

func (s *oneSource) Lease(ctx context.Context) (Lease[string], error) {
	if s.once.CompareAndSwap(false, true) {
		return s.d, nil
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// hostileDelivery checks the Lease contract: one method at a time, none
// after Ack, Nack or DeadLetter.
type hostileDelivery struct {
	attempt    int
	inside     atomic.Int64
	settled    atomic.Bool
	extendGate chan struct{} // Extend waits for it, if set
	mu         sync.Mutex
	violations []string
}

func (d *hostileDelivery) enter(op string) func() {
	if n := d.inside.Add(1); n > 1 {
		d.violate("%s called while another method of the lease runs", op)
	}
	if d.settled.Load() {
		d.violate("%s called after the lease was settled", op)
	}
	return func() { d.inside.Add(-1) }
}

func (d *hostileDelivery) violate(format string, args ...any) {
	d.mu.Lock()
	d.violations = append(d.violations, fmt.Sprintf(format, args...))
	d.mu.Unlock()
}

func (d *hostileDelivery) Task() (string, error) { defer d.enter("Task")(); return "t", nil }
func (d *hostileDelivery) Attempt() int          { defer d.enter("Attempt")(); return d.attempt }
func (d *hostileDelivery) Ack(context.Context) error {
	defer d.enter("Ack")()
	d.settled.Store(true)
	return nil
}
func (d *hostileDelivery) Nack(context.Context, time.Duration) error {
	defer d.enter("Nack")()
	d.settled.Store(true)
	return nil
}
func (d *hostileDelivery) Extend(context.Context) error {
	defer d.enter("Extend")()
	if d.extendGate != nil {
		<-d.extendGate
	}
	return nil
}
func (d *hostileDelivery) DeadLetter(context.Context, *DeadLetterError) error {
	defer d.enter("DeadLetter")()
	d.settled.Store(true)
	return nil
}

// An Extend in flight (a slow broker call) when the attempt returns: the
// pool must not ack the lease while Extend still runs, nor call Extend
// once it acked. The Source contract promises one method at a time and
// nothing after Ack. (Real time: a worker waiting on a mutex does not
// count as durably blocked in a synctest bubble.)
func TestHostileExtendOverlapsAck(t *testing.T) {
	gate := make(chan struct{})
	d := &hostileDelivery{attempt: 1, extendGate: gate}
	p, err := New("jobs", func(_ context.Context, s string) (string, error) {
		time.Sleep(30 * time.Millisecond)
		return s, nil
	}, quiet(WithSource[string](&oneSource{d: d}), WithWorkers(1), WithLeaseExtension(20*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	time.Sleep(60 * time.Millisecond) // Extend at 20ms blocks; the attempt returns at 30ms
	close(gate)
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.violations) > 0 {
		t.Errorf("Lease contract broken: %q", d.violations)
	}
	if !d.settled.Load() {
		t.Errorf("lease never settled")
	}
}

// cyclicErr unwraps to itself: errors.Is on it never returns. It breaks
// the cycle after many calls, so that the test ends.
type cyclicErr struct{ calls *atomic.Int64 }

func (e cyclicErr) Error() string { return "cyclic" }
func (e cyclicErr) Unwrap() error {
	if e.calls.Add(1) > 100000 {
		return nil
	}
	return e
}

type cyclicSource struct {
	calls *atomic.Int64
	once  atomic.Bool
}

func (s *cyclicSource) Lease(ctx context.Context) (Lease[string], error) {
	if s.once.CompareAndSwap(false, true) {
		return nil, cyclicErr{s.calls}
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// A Source's Lease error whose Unwrap cycles makes the worker spin in
// errors.Is (worker.go) instead of failing: the pool matches handler
// errors with a bounded walk, but not source errors.
func TestHostileSourceCyclicErrorSpinsWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int64
		p, err := New("jobs", func(_ context.Context, s string) (string, error) { return s, nil },
			quiet(WithSource[string](&cyclicSource{calls: &calls}), WithWorkers(1))...)
		if err != nil {
			t.Fatal(err)
		}
		sv := serve(t, p)
		if n := calls.Load(); n > 100000 {
			t.Errorf("the worker called Unwrap %d times on one Lease error: an unbounded errors.Is", n)
		}
		_ = stopWithin(t, sv, time.Hour)
	})
}

// ---------------------------------------------------------------------------
// A pool served again: a worker left stuck by the last Serve.

// A worker declared stuck when the pool stopped (no hard limit) whose
// attempt returns after the pool is served again keeps leasing tasks of
// the new Serve, on its cancelled context, outside the new supervisor.
func TestHostileStuckWorkerOfLastServeTakesTasks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		block := make(chan struct{})
		var mu sync.Mutex
		ran := map[string]string{} // task -> worker
		p := mustNew(t, func(ctx context.Context, task string) (int, error) {
			switch task {
			case "stuck":
				<-release // ignores its context
				return 0, nil
			case "busy":
				<-block
				return 0, nil
			}
			if err := ctx.Err(); err != nil {
				return 0, fmt.Errorf("ran on a done context: %w", context.Cause(ctx))
			}
			return 1, nil
		}, WithWorkers(1), WithMaxAttempts(1), WithEventHandler(func(e Event) {
			if e.Kind == EventStarted {
				mu.Lock()
				ran[e.Task.(string)] = e.Worker
				mu.Unlock()
			}
		}))
		sv := serve(t, p)
		stuck := submit(t, p, "stuck")
		synctest.Wait()
		_ = stopWithin(t, sv, time.Hour) // worker-1 stuck after the shutdown timeout
		if _, err := wait(t, stuck); !errors.Is(err, ErrClosed) {
			t.Fatalf("stuck task: %v, want ErrClosed", err)
		}
		sv = serve(t, p) // a parent's restart, say
		busy := submit(t, p, "busy")
		synctest.Wait()
		victim := submit(t, p, "victim") // waits in the ring: the one live worker is busy
		close(release)                   // the old worker's attempt returns
		synctest.Wait()
		close(block)
		_, err := wait(t, victim)
		if _, err := wait(t, busy); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		on := ran["victim"]
		mu.Unlock()
		if err != nil || on != "worker-2" {
			t.Errorf("victim ran on %s and ended with %v; want a success on worker-2, the live worker "+
				"(worker-1 was declared stuck by the last Serve)", on, err)
		}
		_ = stopWithin(t, sv, time.Hour)
	})
}

// ---------------------------------------------------------------------------
// Small API defects.

// Wait on a task that already ended, with a context that is done too,
// returns the task's result: the task ended first.
func TestHostileWaitCancelledCtxOnEndedTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew(t, func(_ context.Context, n int) (int, error) { return n, nil }, WithWorkers(1))
		sv := serve(t, p)
		tk := submit(t, p, 5)
		if _, err := wait(t, tk); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		bad := 0
		for range 200 {
			if n, err := tk.Wait(ctx); n != 5 || err != nil {
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("Wait with a done context on an ended task returned the context's error %d times in 200", bad)
		}
		_ = stopWithin(t, sv, time.Hour)
	})
}

// Stats.Busy counts live workers running an attempt: an abandoned attempt
// is on no live worker.
func TestHostileBusyCountsAbandoned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := mustNew(t, func(_ context.Context, n int) (int, error) { <-release; return n, nil },
			WithWorkers(1), WithTimeLimit(0, time.Second))
		sv := serve(t, p)
		tk := submit(t, p, 1)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if st := p.Stats(); st.Busy > st.Workers || st.Busy != 0 {
			t.Errorf("stats %+v: Busy counts the abandoned attempt, though its live worker is idle", st)
		}
		close(release)
		if _, err := wait(t, tk); err != nil {
			t.Fatal(err)
		}
		_ = stopWithin(t, sv, time.Hour)
	})
}

// The default bound on abandoned attempts is "the pool's maximum size"; it
// stays the size given to New after Resize.
func TestHostileMaxAbandonedDefaultIgnoresResize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := mustNew(t, func(_ context.Context, n int) (int, error) { <-release; return n, nil },
			WithWorkers(1), WithTimeLimit(0, time.Second))
		if err := p.Resize(4, 4); err != nil {
			t.Fatal(err)
		}
		sv := serve(t, p)
		var tks []*Task[int, int]
		for i := range 2 { // two abandoned attempts, four workers
			tks = append(tks, submit(t, p, i))
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		select {
		case err := <-sv.done:
			t.Errorf("pool of 4 workers failed with 2 abandoned attempts: %v", err)
			close(release)
			synctest.Wait()
		default:
			close(release)
			for _, tk := range tks {
				_, _ = wait(t, tk)
			}
			_ = stopWithin(t, sv, time.Hour)
		}
	})
}

// ---------------------------------------------------------------------------
// Panics that escape every supervisor and kill the process. Each runs its
// body in a child process, since the panic happens on a goroutine the test
// cannot recover on.

const childEnv = "ARBOR_POOL_HOSTILE_CHILD"

// inChild runs body in a child process (the test binary running just this
// test) and returns its output if it crashed with a panic, or "" if it did
// not. In the child it runs body and reports whether it was the child.
func inChild(t *testing.T, body func()) (crash string, child bool) {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		body()
		return "", true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil && bytes.Contains(out, []byte("panic:")) {
		return string(out), false
	}
	if err != nil {
		t.Fatalf("child process failed: %v\n%s", err, out)
	}
	return "", false
}

// firstLines returns the first n lines of s.
func firstLines(s string, n int) string {
	lines := bytes.SplitN([]byte(s), []byte("\n"), n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// A zero Pool (not made by New) should return errors matching
// arbor.ErrInvalid, as a zero arbor.Supervisor does; Serve kills the
// process with a nil dereference on a goroutine of its own.
func TestHostileZeroPoolServeCrashesProcess(t *testing.T) {
	crash, child := inChild(t, func() {
		var p Pool[int, int]
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = p.Serve(ctx)
	})
	if !child && crash != "" {
		t.Errorf("Serve on a zero Pool crashed the process:\n%s", firstLines(crash, 12))
	}
}

// panicSource leases one delivery whose methods panic when told to.
type panicSource struct {
	once    atomic.Bool
	extend  bool // Extend panics
	attempt bool // Attempt panics while the attempt runs
	running atomic.Bool
}

func (s *panicSource) Lease(ctx context.Context) (Lease[string], error) {
	if s.once.CompareAndSwap(false, true) {
		return panicLease{s}, nil
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

type panicLease struct{ s *panicSource }

func (l panicLease) Task() (string, error) { return "t", nil }
func (l panicLease) Attempt() int {
	if l.s.attempt && l.s.running.Load() {
		panic("Attempt panics")
	}
	return 1
}
func (l panicLease) Ack(context.Context) error                          { return nil }
func (l panicLease) Nack(context.Context, time.Duration) error          { return nil }
func (l panicLease) DeadLetter(context.Context, *DeadLetterError) error { return nil }
func (l panicLease) Extend(context.Context) error {
	if l.s.extend {
		panic("Extend panics")
	}
	return nil
}

// A Source whose Extend panics kills the process: Extend runs on the
// watchdog's timer goroutine, uncontained, while a panic in Ack or Nack
// only crashes a supervised worker.
func TestHostileExtendPanicCrashesProcess(t *testing.T) {
	crash, child := inChild(t, func() {
		synctest.Test(t, func(t *testing.T) {
			src := &panicSource{extend: true}
			p, err := New("jobs", func(_ context.Context, s string) (string, error) {
				time.Sleep(3 * time.Second)
				return s, nil
			}, quiet(WithSource[string](src), WithWorkers(1), WithLeaseExtension(time.Second))...)
			if err != nil {
				t.Fatal(err)
			}
			sv := serve(t, p)
			time.Sleep(5 * time.Second)
			_ = stopWithin(t, sv, time.Hour)
		})
	})
	if !child && crash != "" {
		t.Errorf("a panicking Lease.Extend crashed the process:\n%s", firstLines(crash, 12))
	}
}

// A Lease whose Attempt panics kills the process when an attempt is
// abandoned: reportAbandoned calls it on the pool's manager goroutine.
func TestHostileAttemptPanicOnAbandonCrashesProcess(t *testing.T) {
	crash, child := inChild(t, func() {
		synctest.Test(t, func(t *testing.T) {
			src := &panicSource{attempt: true}
			release := make(chan struct{})
			p, err := New("jobs", func(_ context.Context, s string) (string, error) {
				src.running.Store(true)
				<-release
				src.running.Store(false)
				return s, nil
			}, quiet(WithSource[string](src), WithWorkers(1), WithTimeLimit(0, time.Second))...)
			if err != nil {
				t.Fatal(err)
			}
			sv := serve(t, p)
			time.Sleep(2 * time.Second)
			close(release)
			synctest.Wait()
			_ = stopWithin(t, sv, time.Hour)
		})
	})
	if !child && crash != "" {
		t.Errorf("a panicking Lease.Attempt crashed the process when its attempt was abandoned:\n%s", firstLines(crash, 12))
	}
}

// An EventAbandoned handler runs on the pool's manager goroutine: its
// runtime.Goexit ends the manager, and Serve returns nil while its context
// is live, skipping the shutdown: the queue stays open, so tasks submitted
// after that are accepted and never end.
func TestHostileGoexitInEventHandlerOnManager(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := mustNew(t, func(_ context.Context, n int) (int, error) {
			if n == 0 {
				<-release
			}
			return n, nil
		}, WithWorkers(1), WithTimeLimit(0, time.Second), WithEventHandler(func(e Event) {
			if e.Kind == EventAbandoned {
				runtime.Goexit()
			}
		}))
		sv := serve(t, p)
		submit(t, p, 0)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		select {
		case err := <-sv.done:
			t.Errorf("Serve returned %v while its context was live", err)
			sv.done <- err
		default:
		}
		tk, err := p.Submit(context.Background(), 1)
		if err == nil {
			if _, err, ok := ended(tk, time.Hour); !ok {
				t.Errorf("task submitted after the manager's Goexit: accepted, never ended")
			} else if err != nil {
				t.Errorf("task: %v", err)
			}
		} else if !errors.Is(err, ErrClosed) {
			t.Errorf("Submit: %v", err)
		}
		close(release)
		_ = stopWithin(t, sv, time.Hour)
	})
}

// ---------------------------------------------------------------------------
// Attacks that held: kept as guards.

type panicErrorMsg struct{}

func (panicErrorMsg) Error() string { panic("Error panics") }

type panicIs struct{}

func (panicIs) Error() string          { return "Is panics" }
func (panicIs) Is(error) bool          { panic("Is panics") }
func (panicIs) Unwrap() error          { panic("Unwrap panics") }
func (panicIs) Format(fmt.State, rune) { panic("Format panics") }

type selfCycle struct{}

func (e selfCycle) Error() string { return "self cycle" }
func (e selfCycle) Unwrap() error { return e }

type ptrErr struct{ msg string }

func (e *ptrErr) Error() string { return e.msg } // panics on a nil *ptrErr

type sliceErr []error // not hashable

func (e sliceErr) Error() string   { return "slice" }
func (e sliceErr) Unwrap() []error { return e }

// mutual cycles through fresh values: a -> b -> a ...
type cycA struct{ n *int }
type cycB struct{ n *int }

func (e cycA) Error() string { return "a" }
func (e cycA) Unwrap() error { return cycB(e) }
func (e cycB) Error() string { return "b" }
func (e cycB) Unwrap() error { return cycA(e) }

// Handler errors that panic in Error, Is or Unwrap, cycle, are typed nil,
// unhashable or hide ErrDoNotRestart behind a cycle: every task ends
// dead-lettered, with a readable error, and the pool never panics.
func TestHostileErrorValues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := 0
		var nilPtr *ptrErr
		errs := []error{
			panicErrorMsg{}, panicIs{}, selfCycle{}, cycA{&n}, nilPtr, sliceErr{errors.New("x")},
			fmt.Errorf("wrapped: %w", panicIs{}),
			fmt.Errorf("%w %w", cycA{&n}, arbor.ErrDoNotRestart),
		}
		var attempts [8]atomic.Int64
		p := mustNew(t, func(_ context.Context, i int) (int, error) {
			attempts[i].Add(1)
			return 0, errs[i]
		}, WithWorkers(2), WithMaxAttempts(2), WithRetryBackoff(arbor.ConstantBackoff(0)),
			WithEventHandler(func(e Event) { _ = fmt.Sprint(e) }))
		sv := serve(t, p)
		var tks []*Task[int, int]
		for i := range errs {
			tks = append(tks, submit(t, p, i))
		}
		for i, tk := range tks {
			_, err, ok := ended(tk, time.Hour)
			if !ok {
				t.Errorf("task %d (%T) never ended", i, errs[i])
				continue
			}
			if !errors.Is(err, ErrDeadLetter) {
				t.Errorf("task %d: %v, want ErrDeadLetter", i, err)
			}
			_ = err.Error()
		}
		for i, want := range []int64{2, 2, 2, 2, 2, 2, 2, 1} {
			if got := attempts[i].Load(); got != want {
				t.Errorf("task %d (%T): %d attempts, want %d", i, errs[i], got, want)
			}
		}
		if err := stopWithin(t, sv, time.Hour); err != nil {
			t.Error(err)
		}
	})
}

// An unhashable error (a multi-error of type []error, as Kubernetes'
// aggregate is) that wraps arbor.ErrDoNotRestart: errors.Is finds it, and
// so does arbor's own walk, but the pool's matches skips an unhashable
// error whole, Unwrap included, so the task is retried.
func TestHostileUnhashableErrorHidesDoNotRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		err := sliceErr{errors.New("x"), arbor.ErrDoNotRestart}
		if !errors.Is(err, arbor.ErrDoNotRestart) {
			t.Fatal("errors.Is does not find it")
		}
		var attempts atomic.Int64
		p := mustNew(t, func(_ context.Context, i int) (int, error) {
			attempts.Add(1)
			return 0, err
		}, WithWorkers(1), WithMaxAttempts(3), WithRetryBackoff(arbor.ConstantBackoff(0)))
		sv := serve(t, p)
		if _, err := wait(t, submit(t, p, 1)); !errors.Is(err, ErrDeadLetter) || attempts.Load() != 1 {
			t.Errorf("task: %v after %d attempts; want dead-lettered after 1: its error wraps ErrDoNotRestart",
				err, attempts.Load())
		}
		if err := stopWithin(t, sv, time.Hour); err != nil {
			t.Error(err)
		}
	})
}

// panic(nil) and runtime.Goexit in a handler fail the attempt and crash
// the worker, which is restarted; the task is retried and succeeds.
func TestHostilePanicNilAndGoexitInHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls [2]atomic.Int64
		var mu sync.Mutex
		var fails []error
		p := mustNew(t, func(_ context.Context, i int) (int, error) {
			if calls[i].Add(1) == 1 {
				if i == 0 {
					panic(nil)
				}
				runtime.Goexit()
			}
			return i, nil
		}, WithWorkers(1), WithRetryBackoff(arbor.ConstantBackoff(0)), WithEventHandler(func(e Event) {
			if e.Kind == EventFailed {
				mu.Lock()
				fails = append(fails, e.Err)
				mu.Unlock()
			}
		}))
		sv := serve(t, p)
		for i := range 2 {
			if n, err := wait(t, submit(t, p, i)); n != i || err != nil {
				t.Errorf("task %d: %d, %v", i, n, err)
			}
		}
		var pe *arbor.PanicError
		if len(fails) != 2 || !errors.As(fails[0], &pe) || !errors.Is(fails[1], arbor.ErrGoexit) {
			t.Errorf("failures %v; want a *PanicError then ErrGoexit", fails)
		}
		if err := stopWithin(t, sv, time.Hour); err != nil {
			t.Error(err)
		}
	})
}

// A late runtime.Goexit or panic of an abandoned attempt: its task is
// settled, and the abandoned slot goes (AbandonedRunning back to 0).
func TestHostileLateGoexitAndPanicOfAbandoned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var calls [2]atomic.Int64
		p := mustNew(t, func(_ context.Context, i int) (int, error) {
			if calls[i].Add(1) == 1 {
				<-release
				if i == 0 {
					runtime.Goexit()
				}
				panic("late")
			}
			return i, nil
		}, WithWorkers(2), WithTimeLimit(0, time.Second), WithRetryBackoff(arbor.ConstantBackoff(0)))
		sv := serve(t, p)
		a, b := submit(t, p, 0), submit(t, p, 1)
		time.Sleep(2 * time.Second)
		if st := p.Stats(); st.AbandonedRunning != 2 {
			t.Errorf("stats %+v; want 2 abandoned", st)
		}
		close(release)
		for _, tk := range []*Task[int, int]{a, b} {
			if _, err := wait(t, tk); err != nil {
				t.Errorf("task: %v", err)
			}
		}
		time.Sleep(time.Minute)
		if st := p.Stats(); st.AbandonedRunning != 0 || st.Workers != 2 {
			t.Errorf("stats %+v; want no abandoned attempt left, 2 workers", st)
		}
		if err := stopWithin(t, sv, time.Hour); err != nil {
			t.Error(err)
		}
	})
}

// Setup that calls runtime.Goexit or panics once, and a release function
// that does: the workers are restarted and the pool runs every task.
func TestHostileGoexitAndPanicInSetupAndRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var setups, releases atomic.Int64
		p, err := NewWithSetup("jobs", func(ctx context.Context) (Handler[int, int], func(), error) {
			switch setups.Add(1) {
			case 1:
				runtime.Goexit()
			case 2:
				panic("setup panics")
			}
			return func(_ context.Context, n int) (int, error) { return n, nil }, func() {
				switch releases.Add(1) {
				case 1:
					runtime.Goexit()
				case 2:
					panic("release panics")
				}
			}, nil
		}, quiet(WithWorkers(1), WithMaxTasksPerWorker(1), WithSupervisor(arbor.WithIntensity(10, time.Minute)))...)
		if err != nil {
			t.Fatal(err)
		}
		sv := serve(t, p)
		for i := range 5 {
			if n, err := wait(t, submit(t, p, i)); n != i || err != nil {
				t.Errorf("task %d: %d, %v", i, n, err)
			}
		}
		if err := stopWithin(t, sv, time.Hour); err != nil {
			t.Error(err)
		}
	})
}

// Panics in event handlers, the dead-letter function and the backoff are
// contained.
func TestHostilePanicsInCallbacksContained(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int64
		p := mustNew(t, func(_ context.Context, n int) (int, error) {
			if n == 0 || calls.Add(1) == 1 {
				return 0, errors.New("fails")
			}
			return n, nil
		}, WithWorkers(1), WithMaxAttempts(2), WithRetryBackoff(panicBackoff{}),
			WithEventHandler(func(Event) { panic("event") }),
			WithDeadLetter(func(int, *DeadLetterError) { panic("dead") }))
		sv := serve(t, p)
		if _, err := wait(t, submit(t, p, 1)); err != nil {
			t.Errorf("task: %v", err)
		}
		if _, err := wait(t, submit(t, p, 0)); !errors.Is(err, ErrDeadLetter) {
			t.Errorf("task: %v, want ErrDeadLetter", err)
		}
		if infos := p.Supervisor().Children(); infos[0].Restarts != 0 {
			t.Errorf("worker restarted: %+v", infos[0])
		}
		if err := stopWithin(t, sv, time.Hour); err != nil {
			t.Error(err)
		}
	})
}

type panicBackoff struct{}

func (panicBackoff) Delay(int) time.Duration { panic("delay") }

type constBackoff time.Duration

func (b constBackoff) Delay(int) time.Duration { return time.Duration(b) }

// A negative delay retries at once; an enormous one keeps the task waiting
// (counted in Queued) until the shutdown ends it with ErrClosed.
func TestHostileBackoffExtremes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int64
		p := mustNew(t, func(_ context.Context, n int) (int, error) {
			if calls.Add(1) == 1 {
				return 0, errors.New("first fails")
			}
			return n, nil
		}, WithWorkers(1), WithRetryBackoff(constBackoff(-time.Hour)))
		sv := serve(t, p)
		start := time.Now()
		if _, err := wait(t, submit(t, p, 1)); err != nil || time.Since(start) != 0 {
			t.Errorf("negative delay: %v after %v", err, time.Since(start))
		}
		_ = stopWithin(t, sv, time.Hour)

		q := mustNew(t, func(_ context.Context, n int) (int, error) { return 0, errors.New("fails") },
			WithWorkers(1), WithRetryBackoff(constBackoff(math.MaxInt64)), WithMaxAttempts(math.MaxInt),
			WithQueue(1<<40))
		sv = serve(t, q)
		tk := submit(t, q, 1)
		time.Sleep(time.Hour)
		if st := q.Stats(); st.Queued != 1 || st.Retried != 1 {
			t.Errorf("stats %+v; want one retry waiting", st)
		}
		if err := stopWithin(t, sv, time.Hour); err != nil {
			t.Error(err)
		}
		if _, err := wait(t, tk); !errors.Is(err, ErrClosed) {
			t.Errorf("task waiting for a retry at shutdown: %v, want ErrClosed", err)
		}
	})
}

// Hundreds of attempts abandoned at once: each is replaced, none is
// attempted twice, every task ends once its attempt returns, and the
// abandoned slots go.
func TestHostileHundredsAbandoned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 300
		release := make(chan struct{})
		var running, most atomic.Int64
		var attempts [n]atomic.Int64
		p := mustNew(t, func(_ context.Context, i int) (int, error) {
			r := running.Add(1)
			defer running.Add(-1)
			for m := most.Load(); r > m && !most.CompareAndSwap(m, r); m = most.Load() {
			}
			if attempts[i].Add(1) > 1 {
				return 0, errors.New("attempted twice")
			}
			<-release
			return i, nil
		}, WithWorkers(8), WithTimeLimit(0, time.Second), WithMaxAbandoned(1000), WithQueue(n))
		sv := serve(t, p)
		var tks []*Task[int, int]
		for i := range n {
			tks = append(tks, submit(t, p, i))
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if st := p.Stats(); st.AbandonedRunning != n || st.Abandoned != n || st.Workers != 8 {
			t.Errorf("stats %+v; want %d abandoned, 8 workers", st, n)
		}
		close(release)
		for i, tk := range tks {
			if v, err := wait(t, tk); v != i || err != nil {
				t.Errorf("task %d: %d, %v", i, v, err)
			}
		}
		synctest.Wait()
		if st := p.Stats(); st.AbandonedRunning != 0 || st.Succeeded != n {
			t.Errorf("stats %+v", st)
		}
		if k := len(p.Supervisor().Children()); k != 8 {
			t.Errorf("%d children of the pool's supervisor, want 8", k)
		}
		if err := stopWithin(t, sv, time.Hour); err != nil {
			t.Error(err)
		}
	})
}

// Handlers that Resize their pool and Submit to it, beyond its capacity,
// then Wait for those tasks.
func TestHostileHandlerResizesSubmitsAndWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var p *Pool[int, int]
		p = mustNew(t, func(ctx context.Context, n int) (int, error) {
			if n == 0 {
				return 1, nil
			}
			if err := p.Resize(1+n%2, 16+n); err != nil { // enough workers for the 13 that wait
				return 0, err
			}
			var sum int
			var kids []*Task[int, int]
			for range 3 {
				tk, err := p.Submit(ctx, n-1)
				if err != nil {
					return 0, err
				}
				kids = append(kids, tk)
			}
			for _, tk := range kids {
				v, err := tk.Wait(ctx)
				if err != nil {
					return 0, err
				}
				sum += v
			}
			return sum, nil
		}, WithWorkers(2), WithQueue(1))
		sv := serve(t, p)
		if v, err := wait(t, submit(t, p, 3)); v != 27 || err != nil {
			t.Errorf("tree of tasks: %d, %v; want 27", v, err)
		}
		if err := stopWithin(t, sv, time.Hour); err != nil {
			t.Error(err)
		}
	})
}

// A pool inside a supervisor inside a supervisor fails by a crash storm;
// its parent restarts it. Every task ends, and the restarted pool runs new
// tasks.
func TestHostileNestedPoolRestartedByParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew(t, func(_ context.Context, n int) (int, error) {
			if n < 0 {
				panic(n)
			}
			return n, nil
		}, WithWorkers(2), WithMaxAttempts(100), WithRetryBackoff(arbor.ConstantBackoff(0)),
			WithSupervisor(arbor.WithIntensity(3, time.Minute)))
		root := arbor.New("root", arbor.WithLogger(nil))
		mid := arbor.New("mid", arbor.WithLogger(nil), arbor.WithIntensity(10, time.Minute))
		if err := mid.Add("jobs", p); err != nil {
			t.Fatal(err)
		}
		if err := root.Add("mid", mid); err != nil {
			t.Fatal(err)
		}
		sv := serve(t, root)
		var tks []*Task[int, int]
		for i := range 10 {
			tks = append(tks, submit(t, p, -1-i))
		}
		for _, tk := range tks {
			if _, err, ok := ended(tk, time.Hour); !ok || !errors.Is(err, ErrClosed) {
				t.Errorf("task of the failed pool: ended %v, %v; want ErrClosed", ok, err)
			}
		}
		time.Sleep(time.Minute) // the parent restarts the pool
		if v, err := wait(t, submit(t, p, 5)); v != 5 || err != nil {
			t.Errorf("task of the restarted pool: %d, %v", v, err)
		}
		var paths []string
		for n := range root.Tree(context.Background()).All() {
			paths = append(paths, n.Path)
		}
		if len(paths) != 5 {
			t.Errorf("tree %q; want root, mid, jobs and its 2 workers", paths)
		}
		if err := stopWithin(t, sv, time.Hour); err != nil {
			t.Error(err)
		}
	})
}

// Serve twice at once, Serve with a done context, Serve again after stop,
// Submit between.
func TestHostileServeTwiceAndAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew(t, func(_ context.Context, n int) (int, error) { return n, nil }, WithWorkers(1))
		done, cancel := context.WithCancel(context.Background())
		cancel()
		if err := p.Serve(done); err != nil {
			t.Errorf("Serve(done ctx) = %v", err)
		}
		for round := range 3 {
			sv := serve(t, p)
			errs := make(chan error, 4)
			for range 4 {
				go func() { errs <- p.Serve(context.Background()) }()
			}
			for range 4 {
				if err := <-errs; !errors.Is(err, arbor.ErrAlreadyServing) {
					t.Errorf("round %d: concurrent Serve = %v", round, err)
				}
			}
			if v, err := wait(t, submit(t, p, round)); v != round || err != nil {
				t.Errorf("round %d: %d, %v", round, v, err)
			}
			if err := stopWithin(t, sv, time.Hour); err != nil {
				t.Error(err)
			}
			if _, err := p.TrySubmit(1); !errors.Is(err, ErrClosed) {
				t.Errorf("TrySubmit between Serves: %v", err)
			}
		}
	})
}

// flakySource leases from a channel and misbehaves: one (nil, nil) lease,
// Ack and Nack that fail or panic.
type flakySource struct {
	ready chan *flakyLease
	mu    sync.Mutex
	nils  int
	acks  []string
}

type flakyLease struct {
	s       *flakySource
	body    string
	attempt int
}

func (s *flakySource) Lease(ctx context.Context) (Lease[string], error) {
	s.mu.Lock()
	if s.nils > 0 {
		s.nils--
		s.mu.Unlock()
		return nil, nil
	}
	s.mu.Unlock()
	select {
	case l := <-s.ready:
		l.attempt++
		return l, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *flakyLease) Task() (string, error) { return l.body, nil }
func (l *flakyLease) Attempt() int          { return l.attempt }
func (l *flakyLease) Ack(context.Context) error {
	l.s.mu.Lock()
	l.s.acks = append(l.s.acks, l.body)
	l.s.mu.Unlock()
	switch l.body {
	case "ack-fails":
		return errors.New("ack failed")
	case "ack-panics":
		panic("ack panics")
	}
	return nil
}
func (l *flakyLease) Nack(_ context.Context, d time.Duration) error {
	time.AfterFunc(d, func() { l.s.ready <- l })
	return errors.New("nack failed")
}
func (l *flakyLease) Extend(context.Context) error { return nil }
func (l *flakyLease) DeadLetter(context.Context, *DeadLetterError) error {
	return errors.New("dl failed")
}

// A Source that leases (nil, nil), fails or panics in Ack, fails Nack and
// DeadLetter: errors are reported as EventSourceError, panics crash only a
// worker, and the pool goes on.
func TestHostileSourceMisbehaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &flakySource{ready: make(chan *flakyLease, 10), nils: 1}
		var srcErrs atomic.Int64
		p, err := New("jobs", func(_ context.Context, s string) (string, error) {
			if s == "fails" {
				return "", errors.New("fails")
			}
			return s, nil
		}, quiet(WithSource[string](src), WithWorkers(1), WithMaxAttempts(2),
			WithRetryBackoff(arbor.ConstantBackoff(0)), WithSupervisor(arbor.WithIntensity(10, time.Minute)),
			WithEventHandler(func(e Event) {
				if e.Kind == EventSourceError {
					srcErrs.Add(1)
				}
			}))...)
		if err != nil {
			t.Fatal(err)
		}
		sv := serve(t, p)
		for _, b := range []string{"ack-fails", "ack-panics", "fails", "ok"} {
			src.ready <- &flakyLease{s: src, body: b}
		}
		time.Sleep(time.Minute)
		src.mu.Lock()
		acks := fmt.Sprint(src.acks)
		src.mu.Unlock()
		if acks != "[ack-fails ack-panics ok]" || srcErrs.Load() < 3 { // ack, nack, dead-letter (and the nil lease)
			t.Errorf("acks %s, %d source errors; want 3 acks and at least 3 errors", acks, srcErrs.Load())
		}
		select {
		case err := <-sv.done:
			t.Errorf("pool failed: %v", err)
		default:
			if err := stopWithin(t, sv, time.Hour); err != nil {
				t.Error(err)
			}
		}
	})
}

// blockingSource's Lease ignores its context until released.
type blockingSource struct{ release chan struct{} }

func (s blockingSource) Lease(context.Context) (Lease[string], error) {
	<-s.release
	return nil, errors.New("closed")
}

// A Lease that ignores its context: Serve still returns, once the
// supervisor declared the worker stuck.
func TestHostileLeaseIgnoresContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := blockingSource{make(chan struct{})}
		p, err := New("jobs", func(_ context.Context, s string) (string, error) { return s, nil },
			quiet(WithSource[string](src), WithWorkers(2))...)
		if err != nil {
			t.Fatal(err)
		}
		sv := serve(t, p)
		start := time.Now()
		err = stopWithin(t, sv, time.Hour)
		var se *arbor.StuckError
		if !errors.As(err, &se) || time.Since(start) > arbor.DefaultShutdownTimeout {
			t.Errorf("Serve returned %v after %v; want stuck workers after %v", err, time.Since(start), arbor.DefaultShutdownTimeout)
		}
		close(src.release)
		synctest.Wait()
	})
}

// Bad input that TestBadInput does not cover.
func TestHostileBadInput(t *testing.T) {
	h := func(_ context.Context, n int) (int, error) { return n, nil }
	for name, f := range map[string]func() error{
		"empty name":            func() error { _, err := New("", h); return err },
		"nil supervisor option": func() error { _, err := New("jobs", h, WithSupervisor(nil)); return err },
		"nil arbor logger ok":   nil,
		"setup source mismatch": func() error {
			_, err := NewWithSetup("jobs", func(context.Context) (Handler[int, int], func(), error) { return h, nil, nil },
				WithSource[string](newBroker()))
			return err
		},
	} {
		if f == nil {
			continue
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: panicked: %v", name, r)
				}
			}()
			if err := f(); !errors.Is(err, arbor.ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
		}()
	}
	p, err := New("jobs", func(_ context.Context, s string) (string, error) { return s, nil },
		WithSource[string](newBroker()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Submit(context.Background(), "x"); !errors.Is(err, arbor.ErrInvalid) {
		t.Errorf("Submit to a pool with a Source: %v", err)
	}
	if _, err := p.TrySubmit("x"); !errors.Is(err, arbor.ErrInvalid) {
		t.Errorf("TrySubmit to a pool with a Source: %v", err)
	}
}

// Submit, TrySubmit, Resize, Stats and Serve from many goroutines at once,
// in real time, with the pool stopped and served again under them, and
// handlers that succeed, fail, panic, run past their limits or submit:
// every accepted task ends exactly once (nil, ErrDeadLetter or ErrClosed),
// no two attempts of a task overlap, none runs after one returned nil.
func TestHostileConcurrentAPIStress(t *testing.T) {
	type state struct {
		running   atomic.Int64
		succeeded atomic.Bool
	}
	var mu sync.Mutex
	states := map[int]*state{}
	get := func(id int) *state {
		mu.Lock()
		defer mu.Unlock()
		if states[id] == nil {
			states[id] = &state{}
		}
		return states[id]
	}
	var violations atomic.Int64
	var inFlight sync.WaitGroup
	var nextID atomic.Int64
	var extra sync.Map // tasks handlers submitted
	var p *Pool[int, int]
	p = mustNew(t, func(ctx context.Context, id int) (int, error) {
		inFlight.Add(1)
		defer inFlight.Done()
		st := get(id)
		if st.running.Add(1) != 1 || st.succeeded.Load() {
			violations.Add(1)
		}
		defer st.running.Add(-1)
		switch id % 11 {
		case 0:
			panic("boom")
		case 1, 2:
			return 0, errors.New("fails")
		case 3: // past the hard limit, ignoring ctx
			time.Sleep(60 * time.Millisecond)
		case 4: // to the soft limit
			<-ctx.Done()
			return 0, context.Cause(ctx)
		case 5:
			n := int(nextID.Add(1)) + 1_000_000
			if tk, err := p.Submit(ctx, n); err == nil {
				extra.Store(n, tk)
			}
		}
		st.succeeded.Store(true)
		return id, nil
	}, WithAutoscale(1, 4, 10*time.Millisecond), WithQueue(8), WithTimeLimit(20*time.Millisecond, 40*time.Millisecond),
		WithRetryBackoff(arbor.ConstantBackoff(time.Millisecond)), WithMaxAbandoned(1000),
		WithSupervisor(arbor.WithIntensity(1000, time.Second)))

	stop := make(chan struct{})
	var tasks sync.Map
	var g sync.WaitGroup
	for w := range 4 {
		g.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := int(nextID.Add(1))
				var tk *Task[int, int]
				var err error
				if (i+w)%2 == 0 {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
					tk, err = p.Submit(ctx, id)
					cancel()
				} else {
					tk, err = p.TrySubmit(id)
				}
				switch {
				case err == nil:
					tasks.Store(id, tk)
				case errors.Is(err, ErrClosed), errors.Is(err, ErrFull), errors.Is(err, context.DeadlineExceeded):
					time.Sleep(time.Millisecond)
				default:
					violations.Add(1)
					t.Errorf("Submit: %v", err)
				}
			}
		})
	}
	g.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			_ = p.Resize(1+i%2, 2+i%4)
			_ = p.Stats()
		}
	})
	for round := range 6 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Serve(ctx) }()
		go func() { _ = p.Serve(ctx) }() // ErrAlreadyServing, or serves if the first has not begun
		time.Sleep(time.Duration(40+10*round) * time.Millisecond)
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Serve did not return", round)
		}
	}
	close(stop)
	g.Wait()
	// Serve once more with nothing submitting, so that tasks queued
	// between Serves (by handlers) end too, then stop it.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	inFlight.Wait()
	time.Sleep(100 * time.Millisecond) // abandoned sleepers return
	inFlight.Wait()
	n := 0
	check := func(k, v any) bool {
		n++
		tk := v.(*Task[int, int])
		select {
		case <-tk.Done():
		case <-time.After(2 * time.Second):
			t.Errorf("task %v never ended", k)
			return false
		}
		_, err := tk.Wait(context.Background())
		if err != nil && !errors.Is(err, ErrDeadLetter) && !errors.Is(err, ErrClosed) {
			t.Errorf("task %v: %v", k, err)
		}
		return true
	}
	tasks.Range(check)
	extra.Range(check)
	if v := violations.Load(); v > 0 {
		t.Errorf("%d overlapping attempts or attempts after a success", v)
	}
	if n < 50 {
		t.Errorf("only %d tasks accepted", n)
	}
	t.Logf("%d tasks, stats %+v", n, p.Stats())
}

// With a soft limit and no hard one, the shutdown lets a running attempt
// run to its soft limit, which cancels it; an attempt that ignores that
// is then left to the supervisor's shutdown timeout. But the watchdog
// rings no bell when it cancels at the soft limit, so the shutdown loop
// (pool.go shutdown) never looks again: Serve waits for the attempt to
// return, however long that is.
func TestHostileShutdownHangsPastSoftLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := mustNew(t, func(_ context.Context, n int) (int, error) { <-release; return n, nil },
			WithWorkers(1), WithTimeLimit(time.Second, 0))
		sv := serve(t, p)
		tk := submit(t, p, 1)
		synctest.Wait()
		sv.cancel()
		select {
		case <-sv.done:
			if _, err := wait(t, tk); !errors.Is(err, ErrClosed) {
				t.Errorf("task: %v, want ErrClosed", err)
			}
			close(release)
		case <-time.After(time.Hour):
			t.Errorf("Serve still running an hour after its stop; want it back after the soft limit (1s) "+
				"and the shutdown timeout (%v)", arbor.DefaultShutdownTimeout)
			close(release)
			<-sv.done
		}
		synctest.Wait()
	})
}

// A goroutine that Setup starts (a connection's keep-alive, say) and that
// calls Heartbeat with Setup's context, a worker's, not an attempt's: it
// must do nothing ("on another context it does nothing"), and not keep a
// hung attempt of that worker alive.
func TestHostileSetupContextHeartbeatHidesHang(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := NewWithSetup("jobs", func(ctx context.Context) (Handler[int, int], func(), error) {
			go func() {
				for range 600 {
					time.Sleep(100 * time.Millisecond)
					if ctx.Err() != nil {
						return
					}
					Heartbeat(ctx)
				}
			}()
			return func(ctx context.Context, _ int) (int, error) { // hung: never beats
				<-ctx.Done()
				return 0, context.Cause(ctx)
			}, nil, nil
		}, quiet(WithWorkers(1), WithHeartbeat(time.Second), WithMaxAttempts(1))...)
		if err != nil {
			t.Fatal(err)
		}
		sv := serve(t, p)
		start := time.Now()
		_, err = wait(t, submit(t, p, 1))
		if d := time.Since(start); d > 2*time.Second || !errors.Is(err, arbor.ErrHung) {
			t.Errorf("hung attempt ended after %v with %v; want cancelled with ErrHung after 1s "+
				"(Setup's goroutine beat for it)", d, err)
		}
		_ = stopWithin(t, sv, time.Hour)
		time.Sleep(time.Minute)
	})
}

// A goroutine that outlived its attempt calls Recycle with that attempt's
// context: the attempt of ctx is over, so it must do nothing, not recycle
// the worker running a later attempt.
func TestHostileStaleRecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var setups atomic.Int64
		p, err := NewWithSetup("jobs", func(ctx context.Context) (Handler[string, int], func(), error) {
			setups.Add(1)
			return func(ctx context.Context, task string) (int, error) {
				switch task {
				case "spawner":
					go func() {
						time.Sleep(time.Second)
						Recycle(ctx) // the attempt of ctx returned long ago
					}()
				case "long":
					time.Sleep(2 * time.Second)
				}
				return 0, nil
			}, nil, nil
		}, quiet(WithWorkers(1), WithTimeLimit(time.Minute, 0))...)
		if err != nil {
			t.Fatal(err)
		}
		sv := serve(t, p)
		if _, err := wait(t, submit(t, p, "spawner")); err != nil {
			t.Fatal(err)
		}
		if _, err := wait(t, submit(t, p, "long")); err != nil { // running when the stale Recycle comes
			t.Fatal(err)
		}
		synctest.Wait()
		if n := setups.Load(); n != 1 {
			t.Errorf("%d setups: a stale Recycle from an attempt that had returned recycled the worker", n)
		}
		_ = stopWithin(t, sv, time.Hour)
	})
}

// taskPanicSource leases one delivery whose Task panics, then good ones.
type taskPanicSource struct {
	n     atomic.Int64
	acked chan string
}

type taskPanicLease struct {
	s    *taskPanicSource
	body string
}

func (s *taskPanicSource) Lease(ctx context.Context) (Lease[string], error) {
	if n := s.n.Add(1); n <= 2 {
		return taskPanicLease{s, []string{"bad", "good"}[n-1]}, nil
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (l taskPanicLease) Task() (string, error) {
	if l.body == "bad" {
		panic("Task panics")
	}
	return l.body, nil
}
func (l taskPanicLease) Attempt() int                                       { return 1 }
func (l taskPanicLease) Ack(context.Context) error                          { l.s.acked <- l.body; return nil }
func (l taskPanicLease) Nack(context.Context, time.Duration) error          { return nil }
func (l taskPanicLease) Extend(context.Context) error                       { return nil }
func (l taskPanicLease) DeadLetter(context.Context, *DeadLetterError) error { return nil }

// A Lease whose Task (or Attempt, DeadLetter, Nack on the paths before an
// attempt) panics crashes the worker, which is restarted; the restarted
// worker must run the next delivery. (In a child process, real time: the
// failure is a goroutine blocked forever on a mutex.)
func TestHostileLeasePanicWedgesWorker(t *testing.T) {
	crash, child := inChild(t, func() {
		src := &taskPanicSource{acked: make(chan string, 2)}
		p, err := New("jobs", func(_ context.Context, s string) (string, error) { return s, nil },
			quiet(WithSource[string](src), WithWorkers(1))...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Serve(ctx) }()
		select {
		case <-src.acked:
		case <-time.After(2 * time.Second):
			panic("hang: the restarted worker never ran the next delivery")
		}
		cancel()
		<-done
	})
	if !child && crash != "" {
		t.Errorf("after a Lease method panicked:\n%s", firstLines(crash, 30))
	}
}

// Abandoned attempts still running when the pool stopped are forgotten
// by the next Serve (finish resets the count): Stats.AbandonedRunning says
// 0 while they run, and the WithMaxAbandoned bound starts afresh, so a
// parent that restarts a pool failing with ErrTooManyAbandoned lets hung
// goroutines pile up without bound.
func TestHostileAbandonedForgottenAcrossServes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var hung atomic.Int64
		p := mustNew(t, func(_ context.Context, n int) (int, error) {
			hung.Add(1)
			defer hung.Add(-1)
			<-release
			return n, nil
		}, WithWorkers(1), WithTimeLimit(0, time.Second), WithMaxAbandoned(1))
		sv := serve(t, p)
		submit(t, p, 1)
		time.Sleep(2 * time.Second) // abandoned: 1, within the bound
		_ = stopWithin(t, sv, time.Hour)
		sv = serve(t, p)
		if st := p.Stats(); st.AbandonedRunning != int(hung.Load()) {
			t.Errorf("after a new Serve: stats %+v, but %d abandoned attempts still run", st, hung.Load())
		}
		submit(t, p, 2)
		// A second one is abandoned at 1s: 2 run, bound 1; the pool's
		// shutdown then waits up to the hard limit's grace.
		select {
		case err := <-sv.done:
			if !errors.Is(err, ErrTooManyAbandoned) {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(time.Minute):
			t.Errorf("%d abandoned attempts run, WithMaxAbandoned(1), and the pool serves on (stats %+v)",
				hung.Load(), p.Stats())
			_ = stopWithin(t, sv, time.Hour)
		}
		close(release)
		synctest.Wait()
	})
}

// zeroSource's leases report an attempt number below 1 (a source that
// does not count deliveries), and redeliver what is nacked.
type zeroSource struct {
	ready      chan *zeroLease
	deliveries atomic.Int64
	dead       atomic.Int64
	attempt    int
}

type zeroLease struct{ s *zeroSource }

func (s *zeroSource) Lease(ctx context.Context) (Lease[string], error) {
	select {
	case l := <-s.ready:
		s.deliveries.Add(1)
		return l, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
func (l *zeroLease) Task() (string, error)     { return "t", nil }
func (l *zeroLease) Attempt() int              { return l.s.attempt }
func (l *zeroLease) Ack(context.Context) error { return nil }
func (l *zeroLease) Nack(_ context.Context, d time.Duration) error {
	time.AfterFunc(d, func() { l.s.ready <- l })
	return nil
}
func (l *zeroLease) Extend(context.Context) error { return nil }
func (l *zeroLease) DeadLetter(context.Context, *DeadLetterError) error {
	l.s.dead.Add(1)
	return nil
}

// A Source whose Attempt is 0 or negative (a contract violation, but a
// likely one: a broker without a delivery count) makes a failing task
// retry forever: WithMaxAttempts never triggers, and nothing is reported.
// Arguable: the pool could treat such a count as a source error.
func TestHostileSourceAttemptBelowOneRetriesForever(t *testing.T) {
	for _, a := range []int{0, -5} {
		synctest.Test(t, func(t *testing.T) {
			src := &zeroSource{ready: make(chan *zeroLease, 1), attempt: a}
			p, err := New("jobs", func(_ context.Context, s string) (string, error) { return "", errors.New("fails") },
				quiet(WithSource[string](src), WithWorkers(1), WithMaxAttempts(3))...)
			if err != nil {
				t.Fatal(err)
			}
			sv := serve(t, p)
			src.ready <- &zeroLease{src}
			time.Sleep(time.Hour)
			if n := src.deliveries.Load(); n > 10 {
				t.Errorf("Attempt() = %d: %d deliveries of a task that always fails in an hour, %d dead-lettered, "+
					"with WithMaxAttempts(3)", a, n, src.dead.Load())
			}
			_ = stopWithin(t, sv, time.Hour)
			time.Sleep(time.Hour) // the last redelivery's timer
		})
	}
}
