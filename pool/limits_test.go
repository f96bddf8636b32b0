package pool

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/arborgo/arbor"
)

func TestSoftLimitCancelsAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cause error
		p := mustNew(t, func(ctx context.Context, _ int) (int, error) {
			start := time.Now()
			<-ctx.Done()
			cause = context.Cause(ctx)
			if time.Since(start) != time.Second {
				return 0, errors.New("cancelled at the wrong time")
			}
			return 0, ctx.Err()
		}, WithWorkers(1), WithMaxAttempts(1), WithTimeLimit(time.Second, 0))
		sv := serve(t, p)
		_, err := wait(t, submit(t, p, 1))
		if !errors.Is(cause, ErrSoftTimeout) || !errors.Is(err, ErrDeadLetter) || !errors.Is(err, context.Canceled) {
			t.Fatalf("cause %v, task error %v", cause, err)
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

//go:noinline
func ignoresCancellation(release <-chan struct{}) { <-release }

// At its hard limit an attempt is abandoned: a fresh worker takes its
// place at once, the abandonment is reported with the attempt's stack, and
// the task, which waits for the abandoned attempt, counts its late success.
func TestHardLimitAbandons(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var mu sync.Mutex
		var events []Event
		var attempts = map[string]int{}
		p := mustNew(t, func(ctx context.Context, name string) (string, error) {
			mu.Lock()
			attempts[name]++
			mu.Unlock()
			if name == "hang" {
				ignoresCancellation(release)
			}
			return name, nil
		}, WithWorkers(1), WithTimeLimit(time.Second, 3*time.Second), WithEventHandler(func(e Event) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		}))
		sv := serve(t, p)
		start := time.Now()
		hang := submit(t, p, "hang")
		next := submit(t, p, "next")
		if _, err := wait(t, next); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Fatalf("the next task ran after %v, want at the hard limit, 3s", d)
		}
		st := p.Stats()
		if st.Abandoned != 1 || st.AbandonedRunning != 1 || st.Workers != 1 {
			t.Fatalf("stats %+v; want one abandoned attempt still running and one live worker", st)
		}
		mu.Lock()
		var ab *Event
		for i := range events {
			if events[i].Kind == EventAbandoned {
				ab = &events[i]
			}
		}
		mu.Unlock()
		if ab == nil || ab.Worker != "worker-1" || ab.Task != "hang" || !bytes.Contains(ab.Stack, []byte("ignoresCancellation")) {
			t.Fatalf("abandoned event %+v; want worker-1's, with a stack through ignoresCancellation", ab)
		}
		select {
		case <-hang.Done():
			t.Fatal("the abandoned task ended while its attempt still ran")
		default:
		}
		close(release)
		if got, err := wait(t, hang); got != "hang" || err != nil {
			t.Fatalf("late success: %q, %v", got, err)
		}
		synctest.Wait()
		st = p.Stats()
		if st.AbandonedRunning != 0 || st.Succeeded != 2 || attempts["hang"] != 1 {
			t.Fatalf("stats %+v, attempts %v", st, attempts)
		}
		var names []string
		for _, c := range p.Supervisor().Children() {
			names = append(names, c.Name)
		}
		if len(names) != 1 || names[0] != "worker-2" {
			t.Fatalf("workers %v; want the fresh worker-2 only", names)
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// A task whose abandoned attempt fails late is retried only then: never
// two attempts at once.
func TestAbandonedRetriedOnlyAfterReturn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var running, most, attempts atomic.Int64
		p := mustNew(t, func(ctx context.Context, _ int) (int, error) {
			n := running.Add(1)
			defer running.Add(-1)
			if n > most.Load() {
				most.Store(n)
			}
			if attempts.Add(1) == 1 {
				<-release
				return 0, errors.New("late failure")
			}
			return 1, nil
		}, WithWorkers(2), WithTimeLimit(time.Second, 2*time.Second), WithRetryBackoff(arbor.ConstantBackoff(0)))
		sv := serve(t, p)
		tk := submit(t, p, 1)
		time.Sleep(time.Minute) // long past the hard limit
		if attempts.Load() != 1 {
			t.Fatalf("%d attempts while the abandoned one runs", attempts.Load())
		}
		close(release)
		if _, err := wait(t, tk); err != nil {
			t.Fatal(err)
		}
		if attempts.Load() != 2 || most.Load() != 1 {
			t.Fatalf("%d attempts, %d at once", attempts.Load(), most.Load())
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTooManyAbandonedFailsPool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := mustNew(t, func(ctx context.Context, _ int) (int, error) { <-release; return 0, nil },
			WithWorkers(1), WithTimeLimit(0, time.Second), WithMaxAbandoned(1))
		sv := serve(t, p)
		a, b := submit(t, p, 1), submit(t, p, 2)
		err := <-sv.done
		if !errors.Is(err, ErrTooManyAbandoned) {
			t.Fatalf("Serve returned %v, want ErrTooManyAbandoned", err)
		}
		var se *arbor.StuckError
		if !errors.As(err, &se) {
			t.Fatalf("Serve returned %v; want the stuck workers reported too", err)
		}
		for _, tk := range []*Task[int, int]{a, b} {
			if _, err := wait(t, tk); !errors.Is(err, ErrClosed) || !errors.Is(err, ErrAbandoned) {
				t.Fatalf("task of an attempt still running when the pool stopped: %v", err)
			}
		}
		close(release)
		synctest.Wait()
		sv.cancel()
	})
}

func TestHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cause error
		p := mustNew(t, func(ctx context.Context, beats int) (int, error) {
			for range beats {
				select {
				case <-time.After(500 * time.Millisecond):
					Heartbeat(ctx)
				case <-ctx.Done():
					return 0, ctx.Err()
				}
			}
			<-ctx.Done()
			cause = context.Cause(ctx)
			return 0, ctx.Err()
		}, WithWorkers(1), WithMaxAttempts(1), WithHeartbeat(time.Second))
		sv := serve(t, p)
		start := time.Now()
		_, err := wait(t, submit(t, p, 20))
		// 20 beats over 10s kept it alive; then it was hung a second after
		// its last beat.
		if !errors.Is(cause, arbor.ErrHung) || !errors.Is(err, ErrDeadLetter) || time.Since(start) != 11*time.Second {
			t.Fatalf("cause %v, error %v, after %v", cause, err, time.Since(start))
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// An attempt cancelled for a missed heartbeat that ignores it is abandoned
// after the hard limit's grace (hard minus soft), before its hard limit.
func TestHungAttemptAbandonedAfterGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := mustNew(t, func(ctx context.Context, n int) (int, error) {
			if n == 1 {
				<-release
			}
			return n, nil
		}, WithWorkers(1), WithHeartbeat(time.Second), WithTimeLimit(10*time.Second, 12*time.Second))
		sv := serve(t, p)
		start := time.Now()
		hung := submit(t, p, 1)
		if _, err := wait(t, submit(t, p, 2)); err != nil {
			t.Fatal(err)
		}
		// Hung at 1s, abandoned 2s later.
		if d := time.Since(start); d != 3*time.Second {
			t.Fatalf("the next task ran after %v, want 3s", d)
		}
		close(release)
		if _, err := wait(t, hung); err != nil {
			t.Fatal(err)
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}
