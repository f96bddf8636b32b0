package pool

// Hostile tests, third pass: re-attacks on the fixes of commit 20732b6
// (attempt tokens, lmu, abandoned attempts across Serves, contained
// callbacks, noRetry, the one-allocation record, autoscale on a Source).
//
// Defects reproduced (they fail until fixed): LeasePanicStopsSourceAutoscale,
// AbandonedDuringShutdownUnreported, AdriftReturnedStillCounted,
// DeadLetterResubmitDeadlocks, HungExtendPilesUpWatchdogs. Guards of attacks
// that held: CallbacksReenterPool, RealTimeStress.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/arborgo/arbor"
)

// panicLeaseSource panics in its first Lease, then leases from a broker.
type panicLeaseSource struct {
	b        *broker
	panicked atomic.Bool
}

func (s *panicLeaseSource) Lease(ctx context.Context) (Lease[string], error) {
	if s.panicked.CompareAndSwap(false, true) {
		panic("lease: broker client bug")
	}
	return s.b.Lease(ctx)
}

// A Source whose Lease panicked once (the worker crashes and is restarted,
// as promised) leaves the pool's idle count one too high for good: serve
// (worker.go) adds 1 before Lease and takes it back only after Lease
// returned. The autoscaling rule for a Source ("whenever a worker takes a
// task and none is left waiting on the source", reconcile's
// p.idle.Load() == 0) then never fires: the pool stays at its minimum
// while tasks wait.
func TestHostileLeasePanicStopsSourceAutoscale(t *testing.T) {
	for _, panics := range []bool{false, true} {
		t.Run(fmt.Sprint("panics=", panics), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBroker()
				var src Source[string] = b
				if panics {
					src = &panicLeaseSource{b: b}
				}
				release := make(chan struct{})
				p, err := New("jobs", func(_ context.Context, s string) (string, error) {
					<-release
					return s, nil
				}, quiet(WithSource(src), WithAutoscale(1, 4, time.Hour))...)
				if err != nil {
					t.Fatal(err)
				}
				sv := serve(t, p)
				time.Sleep(time.Minute) // the crashed worker is restarted
				for i := range 4 {
					b.publish(fmt.Sprint(i), "x", 0)
				}
				time.Sleep(time.Minute)
				if st := p.Stats(); st.Busy != 4 || st.Workers != 4 {
					t.Errorf("4 tasks wait on the source, autoscale 1..4: stats %+v (pool idle count %d, 0 expected)",
						st, p.idle.Load())
				}
				close(release)
				_ = stopWithin(t, sv, time.Hour)
			})
		})
	}
}

// An attempt abandoned during the shutdown (cancelled with ErrClosed, it
// ignores its context past the hard limit's grace) is never reported: the
// manager, which counts and reports abandoned attempts (reconcile), has
// returned before shutdown() waits for them, and finish keeps the slot
// adrift uncounted (counted is false). So: no EventAbandoned, no log,
// Stats.Abandoned 0, Stats.AbandonedRunning 0 while it runs between
// Serves; and if it returns before the next Serve, it is never reported
// at all.
func TestHostileAbandonedDuringShutdownUnreported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var running atomic.Int64
		var abandonedEvents atomic.Int64
		p := mustNew(t, func(_ context.Context, n int) (int, error) {
			running.Add(1)
			defer running.Add(-1)
			<-release // ignores its context
			return n, nil
		}, WithWorkers(1), WithTimeLimit(0, time.Second), WithEventHandler(func(e Event) {
			if e.Kind == EventAbandoned {
				abandonedEvents.Add(1)
			}
		}))
		sv := serve(t, p)
		tk := submit(t, p, 1)
		time.Sleep(100 * time.Millisecond)
		_ = stopWithin(t, sv, time.Hour) // cancelled now, abandoned at +1s
		if _, err := wait(t, tk); !errors.Is(err, ErrClosed) {
			t.Errorf("task: %v", err)
		}
		st := p.Stats()
		if running.Load() != 1 {
			t.Fatalf("the attempt should still run")
		}
		if st.Abandoned != 1 || st.AbandonedRunning != 1 || abandonedEvents.Load() != 1 {
			t.Errorf("an attempt abandoned at the shutdown still runs: stats %+v, %d EventAbandoned",
				st, abandonedEvents.Load())
		}
		close(release) // it returns between Serves
		synctest.Wait()
		sv = serve(t, p)
		if st := p.Stats(); st.Abandoned != 1 || abandonedEvents.Load() != 1 {
			t.Errorf("after it returned and the pool served again: stats %+v, %d EventAbandoned (it was never reported)",
				st, abandonedEvents.Load())
		}
		_ = stopWithin(t, sv, time.Hour)
	})
}

// An adrift abandoned attempt (counted by a Serve) that returns between
// Serves stays in Stats.AbandonedRunning until the next Serve reconciles:
// the count only the manager updates.
func TestHostileAdriftReturnedStillCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := mustNew(t, func(_ context.Context, n int) (int, error) {
			<-release
			return n, nil
		}, WithWorkers(1), WithTimeLimit(0, time.Second))
		sv := serve(t, p)
		submit(t, p, 1)
		time.Sleep(2 * time.Second) // abandoned and counted while serving
		_ = stopWithin(t, sv, time.Hour)
		if st := p.Stats(); st.AbandonedRunning != 1 {
			t.Errorf("between Serves, one abandoned attempt runs: %+v", st)
		}
		close(release)
		synctest.Wait()
		if st := p.Stats(); st.AbandonedRunning != 0 {
			t.Errorf("the abandoned attempt returned, between Serves: stats %+v", st)
		}
	})
}

// slowExtendSource leases one delivery whose first Extend blocks until
// released.
type slowExtendSource struct {
	once    atomic.Bool
	release chan struct{}
	extends atomic.Int64
}

type slowExtendLease struct{ s *slowExtendSource }

func (s *slowExtendSource) Lease(ctx context.Context) (Lease[string], error) {
	if s.once.CompareAndSwap(false, true) {
		return slowExtendLease{s}, nil
	}
	<-ctx.Done()
	return nil, ctx.Err()
}
func (l slowExtendLease) Task() (string, error)     { return "t", nil }
func (l slowExtendLease) Attempt() int              { return 1 }
func (l slowExtendLease) Ack(context.Context) error { return nil }
func (l slowExtendLease) Nack(context.Context, time.Duration) error {
	return nil
}
func (l slowExtendLease) Extend(context.Context) error {
	if l.s.extends.Add(1) == 1 {
		<-l.s.release
	}
	return nil
}
func (l slowExtendLease) DeadLetter(context.Context, *DeadLetterError) error { return nil }

// An Extend that hangs (a broker call stuck on the network) makes each
// later tick of the watchdog park a goroutine on lmu (watch, worker.go):
// one per extension period for as long as it hangs, and when it returns,
// a burst of Extends back to back. Real time: lmu is a mutex.
func TestHostileHungExtendPilesUpWatchdogs(t *testing.T) {
	src := &slowExtendSource{release: make(chan struct{})}
	attemptDone := make(chan struct{})
	p, err := New("jobs", func(ctx context.Context, s string) (string, error) {
		<-attemptDone
		return s, nil
	}, quiet(WithSource[string](src), WithWorkers(1), WithLeaseExtension(2*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	time.Sleep(30 * time.Millisecond) // the first Extend at 2ms hangs
	base := src.extends.Load()
	time.Sleep(200 * time.Millisecond)
	parked := countGoroutines("watch")
	close(src.release)
	time.Sleep(20 * time.Millisecond)
	burst := src.extends.Load() - base
	close(attemptDone)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if parked > 2 || burst > 20 {
		t.Errorf("one Extend hung 200ms, extension every 2ms: %d watchdog goroutines parked, "+
			"then %d Extends within 20ms", parked, burst)
	}
}

// countGoroutines counts the goroutines whose stack has a frame of the
// slot's method name.
func countGoroutines(method string) int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("pool.(*slot[...])."+method+"(")) {
			n++
		}
	}
	return n
}

// reentrantSource's leases call back into the pool from every method.
type reentrantSource struct {
	b     *broker
	p     atomic.Pointer[Pool[string, string]]
	calls atomic.Int64
}

type reentrantLease struct {
	Lease[string]
	s *reentrantSource
}

func (s *reentrantSource) poke() {
	if p := s.p.Load(); p != nil {
		s.calls.Add(1)
		_ = p.Stats()
		_ = p.Resize(1, 3)
	}
}
func (s *reentrantSource) Lease(ctx context.Context) (Lease[string], error) {
	l, err := s.b.Lease(ctx)
	if err != nil {
		return nil, err
	}
	return reentrantLease{l, s}, nil
}
func (l reentrantLease) Task() (string, error) { l.s.poke(); return l.Lease.Task() }
func (l reentrantLease) Attempt() int          { l.s.poke(); return l.Lease.Attempt() }
func (l reentrantLease) Ack(ctx context.Context) error {
	l.s.poke()
	return l.Lease.Ack(ctx)
}
func (l reentrantLease) Nack(ctx context.Context, d time.Duration) error {
	l.s.poke()
	return l.Lease.Nack(ctx, d)
}
func (l reentrantLease) Extend(ctx context.Context) error { l.s.poke(); return l.Lease.Extend(ctx) }
func (l reentrantLease) DeadLetter(ctx context.Context, e *DeadLetterError) error {
	l.s.poke()
	return l.Lease.DeadLetter(ctx, e)
}

// Guard: lease methods (run under slot.lmu), event handlers and the
// dead-letter function that call back into the pool (Stats, Resize,
// Submit, Wait on another task) while its workers settle, watchdogs
// extend, and the pool shuts down. Real time, with deadlines: a mutex
// deadlock would hang synctest.
func TestHostileCallbacksReenterPool(t *testing.T) {
	b := newBroker()
	src := &reentrantSource{b: b}
	var other atomic.Pointer[Task[int, int]]
	mem := mustNew(t, func(_ context.Context, n int) (int, error) { return n, nil }, WithWorkers(1))
	pokeMem := func() {
		_ = mem.Stats()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		defer cancel()
		if tk, err := mem.Submit(ctx, 1); err == nil {
			other.Store(tk)
		}
		if tk := other.Load(); tk != nil {
			_, _ = tk.Wait(ctx)
		}
	}
	p, err := New("jobs", func(ctx context.Context, s string) (string, error) {
		time.Sleep(3 * time.Millisecond)
		if s == "bad" {
			return "", errors.New("bad")
		}
		return s, nil
	}, quiet(WithSource[string](src), WithAutoscale(1, 2, 10*time.Millisecond), WithMaxAttempts(2),
		WithRetryBackoff(arbor.ConstantBackoff(time.Millisecond)), WithLeaseExtension(time.Millisecond),
		WithTimeLimit(0, 50*time.Millisecond),
		WithEventHandler(func(Event) {
			src.poke()
			pokeMem()
		}),
		WithDeadLetter(func(string, *DeadLetterError) { src.poke(); pokeMem() }))...)
	if err != nil {
		t.Fatal(err)
	}
	src.p.Store(p)
	deadline := time.After(5 * time.Second)
	for cycle := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		mctx, mcancel := context.WithCancel(context.Background())
		done, mdone := make(chan error, 1), make(chan error, 1)
		go func() { done <- p.Serve(ctx) }()
		go func() { mdone <- mem.Serve(mctx) }()
		for i := range 20 {
			body := "ok"
			if i%3 == 0 {
				body = "bad"
			}
			b.publish(fmt.Sprint(cycle, "-", i), body, 0)
		}
		time.Sleep(60 * time.Millisecond)
		cancel()
		mcancel()
		for _, c := range []chan error{done, mdone} {
			select {
			case <-c:
			case <-deadline:
				t.Fatalf("cycle %d: Serve did not return: deadlock? (source calls %d)", cycle, src.calls.Load())
			}
		}
	}
	time.Sleep(20 * time.Millisecond) // broker's nack timers
	if src.calls.Load() == 0 {
		t.Errorf("no callback ran")
	}
}

// Real-time stress under -race: handlers that succeed, fail, panic, run
// past the soft limit, ignore their context past the hard one (abandoned,
// late nil or error), recycle, beat and submit; with submitters, waiters
// on Done and Wait, Resize, Stats, and Serve stopped and restarted. Every
// task must end exactly once, with one outcome, and no two attempts of a
// task may ever run at once.
func TestHostileRealTimeStress(t *testing.T) {
	type tracked struct {
		tk       *Task[int, int]
		inflight atomic.Int32
	}
	var (
		mu      sync.Mutex
		tasks   = map[int]*tracked{}
		nextID  atomic.Int64
		overlap atomic.Int64
		p       *Pool[int, int]
	)
	get := func(id int) *tracked {
		mu.Lock()
		defer mu.Unlock()
		tr := tasks[id]
		if tr == nil {
			tr = &tracked{}
			tasks[id] = tr
		}
		return tr
	}
	add := func(ctx context.Context, try bool) {
		id := int(nextID.Add(1))
		tr := get(id)
		var tk *Task[int, int]
		var err error
		if try {
			tk, err = p.TrySubmit(id)
		} else {
			tk, err = p.Submit(ctx, id)
		}
		mu.Lock()
		if err == nil {
			tr.tk = tk
		} else {
			delete(tasks, id)
		}
		mu.Unlock()
	}
	p = mustNew(t, func(ctx context.Context, id int) (int, error) {
		tr := get(id)
		if tr.inflight.Add(1) > 1 {
			overlap.Add(1)
		}
		defer tr.inflight.Add(-1)
		switch r := rand.IntN(100); {
		case r < 45:
			return id, nil
		case r < 60:
			return 0, errors.New("fails")
		case r < 64:
			panic("boom")
		case r < 72:
			<-ctx.Done() // cancelled at the soft limit
			return 0, context.Cause(ctx)
		case r < 76:
			time.Sleep(45 * time.Millisecond) // abandoned, returns late
			if r%2 == 0 {
				return id, nil
			}
			return 0, errors.New("late")
		case r < 82:
			Recycle(ctx)
			return id, nil
		case r < 90:
			for range 3 {
				Heartbeat(ctx)
				time.Sleep(time.Millisecond)
			}
			return id, nil
		case r < 95:
			add(ctx, false) // its own context: never waits
			return id, nil
		default:
			return 0, fmt.Errorf("refused: %w", arbor.ErrDoNotRestart)
		}
	}, WithAutoscale(1, 4, 20*time.Millisecond), WithQueue(64), WithTimeLimit(10*time.Millisecond, 30*time.Millisecond),
		WithHeartbeat(20*time.Millisecond), WithMaxAttempts(3), WithRetryBackoff(arbor.ConstantBackoff(time.Millisecond)),
		WithMaxTasksPerWorker(7), WithMaxAbandoned(1000), WithSupervisor(arbor.WithIntensity(1000, time.Second)),
		WithEventHandler(func(Event) {}), WithDeadLetter(func(int, *DeadLetterError) {}))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // Serve, stopped and restarted
		for {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- p.Serve(ctx) }()
			select {
			case <-stop:
			case <-time.After(time.Duration(200+rand.IntN(200)) * time.Millisecond):
			case <-done:
				cancel()
				continue
			}
			cancel()
			if err := <-done; err != nil && !errors.Is(err, ErrTooManyAbandoned) {
				var stuck *arbor.StuckError
				if !errors.As(err, &stuck) {
					t.Errorf("Serve: %v", err)
				}
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	})
	for range 2 {
		wg.Go(func() { // submitters
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
				add(ctx, rand.IntN(2) == 0)
				cancel()
				time.Sleep(200 * time.Microsecond)
			}
		})
	}
	for range 3 {
		wg.Go(func() { // waiters, Stats, Resize
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := 1 + rand.IntN(max(1, int(nextID.Load())))
				var tk *Task[int, int]
				mu.Lock()
				if tr := tasks[id]; tr != nil {
					tk = tr.tk
				}
				mu.Unlock()
				if tk != nil {
					ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
					_ = tk.Done()
					_, _ = tk.Wait(ctx)
					cancel()
				}
				_ = p.Stats()
				if rand.IntN(50) == 0 {
					lo := 1 + rand.IntN(3)
					_ = p.Resize(lo, lo+rand.IntN(3))
				}
			}
		})
	}
	time.Sleep(2500 * time.Millisecond)
	close(stop)
	wg.Wait()
	time.Sleep(100 * time.Millisecond) // abandoned attempts return

	mu.Lock()
	defer mu.Unlock()
	var ok, dead, closed, other int
	for id, tr := range tasks {
		if tr.tk == nil {
			continue
		}
		r1, err1, fine := endedNow(tr.tk)
		if !fine {
			t.Errorf("task %d never ended", id)
			continue
		}
		//lint:ignore SA1012 Wait(nil) after the end is part of the attack
		r2, err2 := tr.tk.Wait(nil)
		if r1 != r2 || err1 != err2 {
			t.Errorf("task %d: two outcomes: (%v, %v) then (%v, %v)", id, r1, err1, r2, err2)
		}
		switch {
		case err1 == nil:
			if r1 != id {
				t.Errorf("task %d: result %d", id, r1)
			}
			ok++
		case errors.Is(err1, ErrDeadLetter):
			dead++
		case errors.Is(err1, ErrClosed):
			closed++
		default:
			other++
			t.Errorf("task %d: %v", id, err1)
		}
	}
	if n := overlap.Load(); n > 0 {
		t.Errorf("%d times two attempts of one task ran at once", n)
	}
	st := p.Stats()
	if st.Busy != 0 || st.Workers != 0 {
		t.Errorf("after the last Serve: %+v", st)
	}
	t.Logf("%d tasks: %d succeeded, %d dead-lettered, %d closed; stats %+v", len(tasks), ok, dead, closed, st)
}

// endedNow reports whether tk has ended, and its outcome.
func endedNow[T, R any](tk *Task[T, R]) (R, error, bool) {
	select {
	case <-tk.Done():
		r, err := tk.Wait(context.Background())
		return r, err, true
	default:
		var zero R
		return zero, nil, false
	}
}
