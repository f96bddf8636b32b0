package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/arborgo/arbor"
)

func TestSubmitWaitTypedResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew(t, func(_ context.Context, s string) (int, error) { return len(s), nil }, WithWorkers(2))
		sv := serve(t, p)
		tk := submit(t, p, "four")
		n, err := wait(t, tk)
		if n != 4 || err != nil {
			t.Fatalf("Wait = %d, %v; want 4, nil", n, err)
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestQueueBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		p := mustNew(t, func(_ context.Context, n int) (int, error) { <-gate; return n, nil }, WithWorkers(1), WithQueue(2))
		sv := serve(t, p)
		first := submit(t, p, 1) // taken by the worker
		synctest.Wait()
		queued := []*Task[int, int]{submit(t, p, 2), submit(t, p, 3)}
		if _, err := p.TrySubmit(4); !errors.Is(err, ErrFull) {
			t.Fatalf("TrySubmit on a full queue: %v, want ErrFull", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		start := time.Now()
		_, err := p.Submit(ctx, 4)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("Submit on a full queue returned %v after %v; want DeadlineExceeded after 1s", err, time.Since(start))
		}
		// A Submit waiting for room gets it when a task leaves the queue.
		got := make(chan *Task[int, int])
		go func() { got <- submit(t, p, 5) }()
		synctest.Wait()
		close(gate)
		late := <-got
		for _, tk := range append(queued, first, late) {
			if _, err := wait(t, tk); err != nil {
				t.Fatal(err)
			}
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSubmitBeforeServeAndAfterStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew(t, func(_ context.Context, n int) (int, error) { return n * 2, nil }, WithWorkers(1))
		early := submit(t, p, 21)
		sv := serve(t, p)
		if n, err := wait(t, early); n != 42 || err != nil {
			t.Fatalf("task submitted before Serve: %d, %v", n, err)
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Submit(context.Background(), 1); !errors.Is(err, ErrClosed) {
			t.Fatalf("Submit after the pool stopped: %v, want ErrClosed", err)
		}
		if _, err := p.TrySubmit(1); !errors.Is(err, ErrClosed) {
			t.Fatalf("TrySubmit after the pool stopped: %v, want ErrClosed", err)
		}
		// Served again (as a parent's restart does), it takes tasks again.
		sv = serve(t, p)
		if n, err := wait(t, submit(t, p, 2)); n != 4 || err != nil {
			t.Fatalf("after a second Serve: %d, %v", n, err)
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// A handler that submits to its own pool never waits for room: with one
// worker and a queue of one, a tree of tasks completes.
func TestHandlerSubmitsToOwnPool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var p *Pool[int, int]
		var mu sync.Mutex
		var children []*Task[int, int]
		var runs atomic.Int64
		p = mustNew(t, func(ctx context.Context, depth int) (int, error) {
			runs.Add(1)
			for range 2 {
				if depth == 0 {
					break
				}
				tk, err := p.Submit(ctx, depth-1)
				if err != nil {
					return 0, err
				}
				mu.Lock()
				children = append(children, tk)
				mu.Unlock()
			}
			return depth, nil
		}, WithWorkers(1), WithQueue(1))
		sv := serve(t, p)
		if _, err := wait(t, submit(t, p, 5)); err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			mu.Lock()
			if i == len(children) {
				mu.Unlock()
				break
			}
			tk := children[i]
			mu.Unlock()
			if _, err := wait(t, tk); err != nil {
				t.Fatal(err)
			}
		}
		if got := runs.Load(); got != 63 {
			t.Fatalf("%d tasks ran, want 63", got)
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRetryWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var starts []time.Time
		p := mustNew(t, func(ctx context.Context, n int) (int, error) {
			starts = append(starts, time.Now())
			if a := Attempt(ctx); a != len(starts) {
				return 0, fmt.Errorf("Attempt(ctx) = %d in attempt %d", a, len(starts))
			}
			if len(starts) < 3 {
				return 0, fmt.Errorf("attempt %d failed", len(starts))
			}
			return n, nil
		}, WithWorkers(1), WithRetryBackoff(arbor.ExponentialBackoff{Initial: time.Second, Max: time.Hour, Multiplier: 3}))
		sv := serve(t, p)
		if n, err := wait(t, submit(t, p, 7)); n != 7 || err != nil {
			t.Fatalf("Wait = %d, %v", n, err)
		}
		if len(starts) != 3 || starts[1].Sub(starts[0]) != time.Second || starts[2].Sub(starts[1]) != 3*time.Second {
			t.Fatalf("attempts at %v; want 3, spaced 1s then 3s", starts)
		}
		if Attempt(context.Background()) != 0 {
			t.Fatal("Attempt outside an attempt is not 0")
		}
		st := p.Stats()
		if st.Succeeded != 1 || st.Failed != 2 || st.Retried != 2 || st.DeadLettered != 0 {
			t.Fatalf("stats %+v", st)
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

var errLast = errors.New("last failure")

func TestDeadLetter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var attempts atomic.Int64
		var dead []*DeadLetterError
		var deadTasks []string
		p := mustNew(t, func(_ context.Context, s string) (int, error) {
			n := attempts.Add(1)
			if n == 3 {
				return 0, fmt.Errorf("attempt 3: %w", errLast)
			}
			return 0, fmt.Errorf("attempt %d", n)
		}, WithWorkers(1), WithMaxAttempts(3), WithRetryBackoff(arbor.ConstantBackoff(time.Millisecond)),
			WithDeadLetter(func(task string, err *DeadLetterError) {
				deadTasks = append(deadTasks, task)
				dead = append(dead, err)
			}))
		sv := serve(t, p)
		_, err := wait(t, submit(t, p, "doomed"))
		var dl *DeadLetterError
		if !errors.Is(err, ErrDeadLetter) || !errors.Is(err, errLast) || !errors.As(err, &dl) {
			t.Fatalf("Wait error %v: want ErrDeadLetter reaching the last failure", err)
		}
		if dl.Attempt != 3 || len(dl.Attempts) != 3 || dl.Attempts[0].Error() != "attempt 1" {
			t.Fatalf("dead letter %+v", dl)
		}
		if len(dead) != 1 || dead[0] != dl || deadTasks[0] != "doomed" {
			t.Fatalf("dead-letter callback saw %v %v", deadTasks, dead)
		}
		if attempts.Load() != 3 {
			t.Fatalf("%d attempts, want 3", attempts.Load())
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestHandlerRefusesRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var attempts atomic.Int64
		p := mustNew(t, func(_ context.Context, s string) (int, error) {
			attempts.Add(1)
			return 0, fmt.Errorf("malformed: %w", arbor.ErrDoNotRestart)
		}, WithWorkers(1), WithMaxAttempts(5))
		sv := serve(t, p)
		_, err := wait(t, submit(t, p, "x"))
		if !errors.Is(err, ErrDeadLetter) || !errors.Is(err, arbor.ErrDoNotRestart) || attempts.Load() != 1 {
			t.Fatalf("after %d attempts: %v; want one attempt, dead-lettered", attempts.Load(), err)
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// A panic fails the task and crashes the worker, which its supervisor
// restarts; the task is retried and succeeds.
func TestPanicCrashesWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var attempts atomic.Int64
		var failures []error
		var mu sync.Mutex
		p := mustNew(t, func(_ context.Context, n int) (int, error) {
			if attempts.Add(1) == 1 {
				panic("boom")
			}
			return n, nil
		}, WithWorkers(1), WithRetryBackoff(arbor.ConstantBackoff(0)), WithEventHandler(func(e Event) {
			if e.Kind == EventFailed {
				mu.Lock()
				failures = append(failures, e.Err)
				mu.Unlock()
			}
		}))
		sv := serve(t, p)
		if n, err := wait(t, submit(t, p, 9)); n != 9 || err != nil {
			t.Fatalf("Wait = %d, %v", n, err)
		}
		var pe *arbor.PanicError
		if len(failures) != 1 || !errors.As(failures[0], &pe) || pe.Value != "boom" {
			t.Fatalf("failures %v; want one *arbor.PanicError", failures)
		}
		infos := p.Supervisor().Children()
		if len(infos) != 1 || infos[0].Name != "worker-1" || infos[0].Restarts != 1 {
			t.Fatalf("workers %+v; want worker-1 restarted once", infos)
		}
		var pe2 *arbor.PanicError
		if !errors.As(infos[0].LastError, &pe2) {
			t.Fatalf("worker's last error %v, want its panic", infos[0].LastError)
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// A crash storm exceeds the restart intensity of the pool's supervisor: the
// pool fails, and every task ends.
func TestCrashStormFailsPool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew(t, func(_ context.Context, n int) (int, error) { panic(n) },
			WithWorkers(2), WithMaxAttempts(100), WithRetryBackoff(arbor.ConstantBackoff(0)),
			WithSupervisor(arbor.WithIntensity(3, time.Minute)))
		sv := serve(t, p)
		var tasks []*Task[int, int]
		for i := range 10 {
			tasks = append(tasks, submit(t, p, i))
		}
		err := <-sv.done
		if !errors.Is(err, arbor.ErrIntensityExceeded) {
			t.Fatalf("Serve returned %v, want ErrIntensityExceeded", err)
		}
		for _, tk := range tasks {
			if _, err := wait(t, tk); !errors.Is(err, ErrClosed) {
				t.Fatalf("task after the pool failed: %v, want ErrClosed", err)
			}
		}
		sv.cancel()
	})
}
