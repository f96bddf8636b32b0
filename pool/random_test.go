package pool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/arborgo/arbor"
)

// fate is what one attempt of a task does.
type fate int

const (
	succeed fate = iota
	fail
	crash    // panics
	refuse   // fails with arbor.ErrDoNotRestart
	overrun  // ignores its context past the hard limit, then returns nil
	overfail // ignores its context past the hard limit, then fails
	slow     // runs past the soft limit, returns when cancelled
)

// ledger records every attempt of every task, and catches two attempts of
// one task at once and attempts after a success.
type ledger struct {
	mu        sync.Mutex
	running   map[int]bool
	attempts  map[int]int
	succeeded map[int]bool
	bad       []string
}

func (l *ledger) start(task int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running[task] {
		l.bad = append(l.bad, fmt.Sprintf("task %d: two attempts at once", task))
	}
	if l.succeeded[task] {
		l.bad = append(l.bad, fmt.Sprintf("task %d: attempt after a success", task))
	}
	l.running[task] = true
	l.attempts[task]++
	return l.attempts[task]
}

func (l *ledger) end(task int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running[task] = false
	if ok {
		l.succeeded[task] = true
	}
}

// TestRandomized submits thousands of tasks whose attempts succeed, fail,
// panic, refuse retries, hang past the hard limit or overrun the soft one,
// while the pool is resized, and checks that every task ended exactly once,
// as its attempts say, and that no task ever ran twice at once or after it
// succeeded.
func TestRandomized(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { randomRun(t, seed, 2500, false) })
		})
	}
}

// TestRandomizedShutdown does the same, and shuts the pool down while tasks
// run: then each task succeeded, was dead-lettered, or ended with ErrClosed,
// and Submit fails with ErrClosed once the pool stopped.
func TestRandomizedShutdown(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { randomRun(t, 100+seed, 1500, true) })
		})
	}
}

func randomRun(t *testing.T, seed uint64, tasks int, stopEarly bool) {
	const maxAttempts = 4
	rng := rand.New(rand.NewPCG(seed, 1))
	// Each task's fate per attempt, drawn up front: the handler must not
	// draw from rng concurrently.
	fates := make([][maxAttempts]fate, tasks)
	for i := range fates {
		for a := range fates[i] {
			switch r := rng.IntN(100); {
			case r < 55:
				fates[i][a] = succeed
			case r < 75:
				fates[i][a] = fail
			case r < 82:
				fates[i][a] = crash
			case r < 85:
				fates[i][a] = refuse
			case r < 88:
				fates[i][a] = overrun
			case r < 91:
				fates[i][a] = overfail
			default:
				fates[i][a] = slow
			}
		}
	}
	l := &ledger{running: map[int]bool{}, attempts: map[int]int{}, succeeded: map[int]bool{}}
	p := mustNew(t, func(ctx context.Context, task int) (int, error) {
		n := l.start(task)
		ok := false
		defer func() { l.end(task, ok) }()
		switch fates[task][n-1] {
		case fail:
			return 0, fmt.Errorf("task %d attempt %d failed", task, n)
		case crash:
			panic(fmt.Sprintf("task %d attempt %d panicked", task, n))
		case refuse:
			return 0, fmt.Errorf("task %d: %w", task, arbor.ErrDoNotRestart)
		case overrun, overfail:
			time.Sleep(3 * time.Second) // past the hard limit, whatever ctx says
			if fates[task][n-1] == overfail {
				return 0, errors.New("late failure")
			}
		case slow:
			<-ctx.Done()
			return 0, ctx.Err()
		}
		ok = true
		return task, nil
	}, WithAutoscale(2, 8, time.Second), WithQueue(64), WithMaxAttempts(maxAttempts),
		WithTimeLimit(time.Second, 2*time.Second), WithRetryBackoff(arbor.ConstantBackoff(100*time.Millisecond)),
		WithMaxAbandoned(1000), WithSupervisor(arbor.WithIntensity(1_000_000, time.Second)))
	sv := serve(t, p)
	handles := make([]*Task[int, int], tasks)
	var wg sync.WaitGroup
	for g := range 4 { // four submitters, each with every fourth task
		wg.Go(func() {
			for i := g; i < tasks; i += 4 {
				tk, err := p.Submit(context.Background(), i)
				if stopEarly && errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Submit(%d): %v", i, err)
					return
				}
				handles[i] = tk
			}
		})
	}
	// Resizes while the tasks run.
	for range 10 {
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
		lo := 1 + rng.IntN(4)
		if err := p.Resize(lo, lo+rng.IntN(6)); err != nil {
			t.Fatal(err)
		}
	}
	var stopErr error
	if stopEarly {
		stopErr = sv.stop()
	}
	wg.Wait()
	var succeeded, dead, closed int
	for i, tk := range handles {
		if tk == nil {
			continue // refused: the pool had stopped
		}
		res, err := wait(t, tk)
		l.mu.Lock()
		n, ok := l.attempts[i], l.succeeded[i]
		l.mu.Unlock()
		last := succeed
		if n > 0 {
			last = fates[i][n-1]
		} else if err == nil || !errors.Is(err, ErrClosed) {
			t.Fatalf("task %d ended with %v after no attempt", i, err)
		}
		switch {
		case err == nil:
			succeeded++
			if res != i || !ok || (last != succeed && last != overrun) {
				t.Fatalf("task %d succeeded with %d after %d attempts, last %v", i, res, n, last)
			}
		case errors.Is(err, ErrDeadLetter):
			dead++
			var dl *DeadLetterError
			if !errors.As(err, &dl) || dl.Attempt != n || len(dl.Attempts) != n || ok {
				t.Fatalf("task %d dead-lettered (%v) after %d attempts", i, err, n)
			}
			if n < maxAttempts && last != refuse {
				t.Fatalf("task %d dead-lettered after %d attempts, last %v", i, n, last)
			}
		case stopEarly && errors.Is(err, ErrClosed):
			closed++
		default:
			t.Fatalf("task %d ended with %v", i, err)
		}
	}
	if !stopEarly {
		stopErr = sv.stop()
	}
	var se *arbor.StuckError
	if stopErr != nil && !errors.As(stopErr, &se) { // a worker running an overrun may be stuck
		t.Fatal(stopErr)
	}
	time.Sleep(time.Minute) // abandoned attempts return
	st := p.Stats()
	submitted := 0
	for _, tk := range handles {
		if tk != nil {
			submitted++
		}
	}
	if int(st.Succeeded) != succeeded || int(st.DeadLettered) != dead || succeeded+dead+closed != submitted ||
		(!stopEarly && submitted != tasks) {
		t.Fatalf("stats %+v; %d succeeded, %d dead, %d closed of %d submitted", st, succeeded, dead, closed, submitted)
	}
	if stopEarly {
		if _, err := p.Submit(context.Background(), 0); !errors.Is(err, ErrClosed) {
			t.Fatalf("Submit after the pool stopped: %v", err)
		}
	}
	if len(l.bad) > 0 {
		t.Fatalf("violations: %v", l.bad[:min(len(l.bad), 10)])
	}
	t.Logf("seed %d: %d succeeded, %d dead-lettered, %d closed, stats %+v", seed, succeeded, dead, closed, st)
}

func (f fate) String() string {
	return [...]string{"succeed", "fail", "crash", "refuse", "overrun", "overfail", "slow"}[f]
}
