package pool

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/arborgo/arbor"
)

// At shutdown, tasks never started end with ErrClosed; a running attempt,
// without a soft limit, is cancelled with the cause ErrClosed, and its task
// ends with ErrClosed too.
func TestShutdownEndsEveryTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cause error
		p := mustNew(t, func(ctx context.Context, n int) (int, error) {
			<-ctx.Done()
			cause = context.Cause(ctx)
			return 0, ctx.Err()
		}, WithWorkers(1))
		sv := serve(t, p)
		var tasks []*Task[int, int]
		for i := range 4 {
			tasks = append(tasks, submit(t, p, i))
		}
		synctest.Wait()
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
		if !errors.Is(cause, ErrClosed) {
			t.Fatalf("running attempt's cause %v, want ErrClosed", cause)
		}
		for _, tk := range tasks {
			if _, err := wait(t, tk); !errors.Is(err, ErrClosed) {
				t.Fatalf("task %d: %v, want ErrClosed", tk.rec.task, err)
			}
		}
		st := p.Stats()
		if st.Failed != 1 || st.Retried != 0 || st.Queued != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// With a soft limit, running attempts may finish during the shutdown; a
// retry that waits for its delay ends with ErrClosed.
func TestShutdownLetsAttemptsRunToSoftLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew(t, func(ctx context.Context, n int) (int, error) {
			if n == 0 {
				return 0, errors.New("retry me")
			}
			select {
			case <-time.After(5 * time.Second):
				return n, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}, WithWorkers(2), WithTimeLimit(10*time.Second, 20*time.Second), WithRetryBackoff(arbor.ConstantBackoff(time.Hour)))
		sv := serve(t, p)
		retried, long := submit(t, p, 0), submit(t, p, 1)
		synctest.Wait()
		start := time.Now()
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Fatalf("Serve returned %v after its context ended, want 5s (the running attempt)", d)
		}
		if n, err := wait(t, long); n != 1 || err != nil {
			t.Fatalf("running attempt: %d, %v; want its success", n, err)
		}
		if _, err := wait(t, retried); !errors.Is(err, ErrClosed) || err.Error() == ErrClosed.Error() {
			t.Fatalf("delayed retry: %v; want ErrClosed with its last failure", err)
		}
	})
}

// Without a hard limit, an attempt that ignores cancellation at shutdown is
// declared stuck by the pool's supervisor, which bounds the wait; the task
// ends with ErrClosed.
func TestShutdownStuckWithoutHardLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := mustNew(t, func(ctx context.Context, n int) (int, error) { <-release; return n, nil }, WithWorkers(1))
		sv := serve(t, p)
		tk := submit(t, p, 1)
		synctest.Wait()
		start := time.Now()
		err := sv.stop()
		var se *arbor.StuckError
		if !errors.As(err, &se) || se.Child != "worker-1" {
			t.Fatalf("Serve returned %v, want worker-1 stuck", err)
		}
		if d := time.Since(start); d != arbor.DefaultShutdownTimeout {
			t.Fatalf("shutdown took %v, want %v", d, arbor.DefaultShutdownTimeout)
		}
		if _, err := wait(t, tk); !errors.Is(err, ErrClosed) {
			t.Fatalf("task: %v, want ErrClosed", err)
		}
		close(release)
		synctest.Wait()
	})
}

// Submit waiting for room when the pool shuts down returns ErrClosed.
func TestShutdownWakesBlockedSubmit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew(t, func(ctx context.Context, n int) (int, error) { <-ctx.Done(); return 0, ctx.Err() },
			WithWorkers(1), WithQueue(1))
		sv := serve(t, p)
		submit(t, p, 1)
		synctest.Wait()
		submit(t, p, 2)
		errs := make(chan error, 3)
		for i := range 3 {
			go func() {
				_, err := p.Submit(context.Background(), 10+i)
				errs <- err
			}()
		}
		synctest.Wait()
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := <-errs; !errors.Is(err, ErrClosed) {
				t.Fatalf("blocked Submit: %v, want ErrClosed", err)
			}
		}
	})
}
