package bench

import (
	"bytes"
	"context"
	"errors"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arborgo/arbor"
	"github.com/thejerf/suture/v4"
)

// work is the body of every child in these benchmarks.
type work = func(ctx context.Context) error

// An impl builds a supervisor that runs n copies of w as its children and
// returns its Serve. Everything per child is allocated in build, so that
// memory measured after build and Serve is the cost of supervision (plus
// the goroutines themselves).
type impl struct {
	name  string
	build func(n int, w work) func(ctx context.Context) error
}

var impls = []impl{
	{"arbor", buildArbor},
	{"suture", buildSuture},
	{"raw", buildRaw},
}

// startStopImpls adds arbor-opts, arbor's children added with an option, to
// BenchmarkStartStop.
var startStopImpls = []impl{
	impls[0],
	{"arbor-opts", buildArborOpts},
	impls[1],
	impls[2],
}

// buildArbor: default OneForOne, Permanent children, no logging, and a
// restart intensity that is never exceeded (at most MaxInt32 restarts within
// one nanosecond), so no benchmark escalates.
func buildArbor(n int, w work) func(ctx context.Context) error {
	s := newArbor()
	for i := range n {
		if err := s.Add("c"+strconv.Itoa(i), arbor.WorkerFunc(w)); err != nil {
			panic(err)
		}
	}
	return s.Serve
}

// buildArborOpts is buildArbor with every child added with an option,
// WithShutdownTimeout(5s), the default value: a child added with options gets
// a spec of its own, while children added without share one per supervisor.
// Only BenchmarkStartStop runs it, to compare memory per idle child.
func buildArborOpts(n int, w work) func(ctx context.Context) error {
	s := newArbor()
	for i := range n {
		if err := s.Add("c"+strconv.Itoa(i), arbor.WorkerFunc(w), arbor.WithShutdownTimeout(5*time.Second)); err != nil {
			panic(err)
		}
	}
	return s.Serve
}

func newArbor() *arbor.Supervisor {
	return arbor.New("bench", arbor.WithLogger(nil), arbor.WithIntensity(math.MaxInt32, time.Nanosecond))
}

// arborTerminate and arborRemove are the only calls of Supervisor.Terminate
// and Supervisor.Remove here, so that a change of their signatures is an edit
// of these two lines.
// Both wait without a deadline of their own: the child's shutdown timeout
// bounds the wait, as it bounds suture's RemoveAndWait here.
func arborTerminate(s *arbor.Supervisor, name string) error {
	return s.Terminate(context.Background(), name)
}
func arborRemove(s *arbor.Supervisor, name string) error { return s.Remove(context.Background(), name) }

// sutureFunc adapts a func to suture.Service. Its String method gives suture
// the service's name, as a real service would; without it suture formats the
// func value with %#v on every Add.
type sutureFunc func(ctx context.Context) error

func (f sutureFunc) Serve(ctx context.Context) error { return f(ctx) }
func (f sutureFunc) String() string                  { return "child" }

// buildSuture: a failure threshold that is never reached, so suture never
// backs off, no jitter, and an EventHook that drops every event (the default
// one logs each failure with log.Print). Panics are recovered, as by
// default.
func buildSuture(n int, w work) func(ctx context.Context) error {
	s := newSuture()
	for range n {
		s.Add(sutureFunc(w))
	}
	return s.Serve
}

func newSuture() *suture.Supervisor {
	return suture.New("bench", suture.Spec{
		EventHook:        func(suture.Event) {},
		FailureThreshold: math.MaxFloat64,
		FailureBackoff:   time.Nanosecond, // never used; 0 would mean the 15 s default
		BackoffJitter:    suture.NoJitter{},
	})
}

// raw is the smallest supervisor that does the same job: one loop that
// starts each run in a new goroutine with its own context.WithCancel, starts
// a new run when one returns an error or panics, and on cancellation waits
// for every run to return. It keeps no names, no state, no intensity, no
// stack trace of a panic and stops all children at once rather than in
// order: a lower bound, not a usable supervisor.
type raw struct {
	w       work
	cancels []context.CancelFunc
	exits   chan int // index of the child whose run returned with a failure (>= 0) or cleanly (^i)
}

func buildRaw(n int, w work) func(ctx context.Context) error {
	r := &raw{w: w, cancels: make([]context.CancelFunc, n), exits: make(chan int)}
	return r.Serve
}

func (r *raw) start(ctx context.Context, i int) {
	cctx, cancel := context.WithCancel(ctx)
	r.cancels[i] = cancel
	go func() {
		failed := true
		defer func() {
			recover()
			if failed {
				r.exits <- i
			} else {
				r.exits <- ^i
			}
		}()
		failed = r.w(cctx) != nil
	}()
}

func (r *raw) Serve(ctx context.Context) error {
	for i := range r.cancels {
		r.start(ctx, i)
	}
	alive := len(r.cancels)
	for {
		select {
		case i := <-r.exits:
			failed := i >= 0
			if !failed {
				i = ^i
			}
			r.cancels[i]()
			if failed && ctx.Err() == nil {
				r.start(ctx, i)
			} else {
				alive--
			}
		case <-ctx.Done():
			for ; alive > 0; alive-- {
				i := <-r.exits
				if i < 0 {
					i = ^i
				}
				r.cancels[i]()
			}
			return nil
		}
	}
}

var errFail = errors.New("child failed")

// serve runs serve in a new goroutine; the returned channel yields its
// result.
func serve(ctx context.Context, serve func(context.Context) error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	return done
}

// checkServe fails b if Serve returned an error other than the one each
// implementation returns for a cancelled context.
func checkServe(b *testing.B, err error) {
	b.Helper()
	if err != nil && !errors.Is(err, context.Canceled) {
		b.Fatalf("Serve: %v", err)
	}
}

// noLeak fails b if more goroutines run than before the benchmark once
// everything has had a few seconds to finish.
func noLeak(b *testing.B, before int) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			if len(buf) > 8000 {
				buf = append(buf[:8000:8000], "\n..."...)
			}
			b.Fatalf("%d goroutines leaked:\n%s", runtime.NumGoroutine()-before, bytes.TrimSpace(buf))
		}
		time.Sleep(time.Millisecond)
	}
}

// inUse returns the memory held by the heap and by goroutine stacks after a
// full collection.
func inUse() (heap, stack uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.StackInuse
}

// BenchmarkStartStop starts N idle children, waits until every one runs,
// then cancels Serve's context and waits for Serve to return.
//
// ns/child is the time of start plus stop per child (start-ns/child and
// stop-ns/child split it); Add is not timed. B/child is the heap and stack
// memory in use per child while all N are idle, against a baseline taken
// before the supervisor was created, so it includes the child's goroutine,
// context and the supervisor's bookkeeping; heap-B/child and stack-B/child
// split it. stack-B/child depends on the runtime's adaptive initial stack
// size (GODEBUG adaptivestackstart): the collection that takes the baseline
// sees only the harness's few deep stacks and sets it to 4 KiB, and children
// get 2 KiB stacks only once a collection during the start has seen idle
// children. Run with GODEBUG=adaptivestackstart=0 to compare fixed 2 KiB
// stacks; see README.md. arbor-opts is arbor with each child added with an
// option (buildArborOpts).
func BenchmarkStartStop(b *testing.B) {
	for _, im := range startStopImpls {
		b.Run(im.name, func(b *testing.B) {
			for _, n := range []int{1000, 10000, 100000} {
				b.Run("N="+strconv.Itoa(n), func(b *testing.B) { benchStartStop(b, im, n) })
			}
		})
	}
}

func benchStartStop(b *testing.B, im impl, n int) {
	g0 := runtime.NumGoroutine()
	var startT, stopT time.Duration
	var heapPer, stackPer float64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		heap0, stack0 := inUse()
		var running atomic.Int64
		allUp := make(chan struct{})
		srv := im.build(n, func(ctx context.Context) error {
			if running.Add(1) == int64(n) {
				close(allUp)
			}
			<-ctx.Done()
			return nil
		})
		ctx, cancel := context.WithCancel(context.Background())
		b.StartTimer()

		t0 := time.Now()
		done := serve(ctx, srv)
		<-allUp
		t1 := time.Now()

		b.StopTimer()
		heap1, stack1 := inUse()
		heapPer += (float64(heap1) - float64(heap0)) / float64(n)
		stackPer += (float64(stack1) - float64(stack0)) / float64(n)
		b.StartTimer()

		t2 := time.Now()
		cancel()
		err := <-done
		t3 := time.Now()

		checkServe(b, err)
		startT += t1.Sub(t0)
		stopT += t3.Sub(t2)
	}
	b.StopTimer()
	per := float64(n * b.N)
	b.ReportMetric(float64((startT+stopT).Nanoseconds())/per, "ns/child")
	b.ReportMetric(float64(startT.Nanoseconds())/per, "start-ns/child")
	b.ReportMetric(float64(stopT.Nanoseconds())/per, "stop-ns/child")
	b.ReportMetric((heapPer+stackPer)/float64(b.N), "B/child")
	b.ReportMetric(heapPer/float64(b.N), "heap-B/child")
	b.ReportMetric(stackPer/float64(b.N), "stack-B/child")
	noLeak(b, g0)
}

// BenchmarkRestartLatency runs one child. Each run records the time it
// entered Serve, waits for a signal from the benchmark goroutine and then
// records the time and fails (returns an error, or panics in /panic). The
// latency of a restart is the time from one run's failure to the next run's
// entry; p50-ns and p99-ns are over b.N restarts.
func BenchmarkRestartLatency(b *testing.B) {
	for _, im := range impls {
		b.Run(im.name, func(b *testing.B) {
			b.Run("error", func(b *testing.B) { benchRestartLatency(b, im, false) })
			b.Run("panic", func(b *testing.B) { benchRestartLatency(b, im, true) })
		})
	}
}

func benchRestartLatency(b *testing.B, im impl, panics bool) {
	g0 := runtime.NumGoroutine()
	samples := make([]time.Duration, 0, b.N)
	var failedAt time.Time // when the last run failed; zero before the first
	signal := make(chan struct{})
	measured := make(chan struct{})
	srv := im.build(1, func(ctx context.Context) error {
		// Runs are sequential and the supervisor orders each run's end before
		// the next one's start, so this state needs no lock.
		entered := time.Now()
		if !failedAt.IsZero() {
			samples = append(samples, entered.Sub(failedAt))
			if len(samples) == b.N {
				close(measured)
			}
		}
		select {
		case <-signal:
		case <-ctx.Done():
			return nil
		}
		failedAt = time.Now()
		if panics {
			panic(errFail)
		}
		return errFail
	})
	ctx, cancel := context.WithCancel(context.Background())
	b.ReportAllocs()
	b.ResetTimer()
	done := serve(ctx, srv)
	for range b.N {
		signal <- struct{}{}
	}
	<-measured
	b.StopTimer()
	cancel()
	checkServe(b, <-done)

	slices.Sort(samples)
	b.ReportMetric(float64(percentile(samples, 0.50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(percentile(samples, 0.99).Nanoseconds()), "p99-ns")
	noLeak(b, g0)
}

// percentile returns the q-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// BenchmarkRestartThroughput runs children that fail at once on every run,
// and counts restarts until b.N restarts (runs after each child's first)
// have happened, then stops. restarts/s is b.N over the time from Serve's
// start to the run that reached the count.
func BenchmarkRestartThroughput(b *testing.B) {
	for _, im := range impls {
		b.Run(im.name, func(b *testing.B) {
			for _, n := range []int{1, 100} {
				b.Run("children="+strconv.Itoa(n), func(b *testing.B) { benchRestartThroughput(b, im, n) })
			}
		})
	}
}

func benchRestartThroughput(b *testing.B, im impl, n int) {
	g0 := runtime.NumGoroutine()
	target := int64(b.N + n) // n first runs, then b.N restarts
	var runs atomic.Int64
	var reachedAt time.Time
	reached := make(chan struct{})
	srv := im.build(n, func(ctx context.Context) error {
		if runs.Add(1) == target {
			reachedAt = time.Now()
			close(reached)
		}
		return errFail
	})
	ctx, cancel := context.WithCancel(context.Background())
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	done := serve(ctx, srv)
	<-reached
	b.StopTimer()
	cancel()
	checkServe(b, <-done)

	elapsed := reachedAt.Sub(t0)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "restarts/s")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N), "ns/restart")
	noLeak(b, g0)
}

// BenchmarkBackoffWaiting holds N arbor children that each failed once and
// now wait in a one-hour backoff, against N idle running children, in one
// run. B/child is heap plus stack memory per child (against a baseline taken
// before the supervisor was created); goroutines/child counts the goroutines
// beyond the baseline per child: a waiting child should have none (the
// supervisor's own timer restarts it), a running one its own.
func BenchmarkBackoffWaiting(b *testing.B) {
	const n = 100000
	for _, waiting := range []bool{true, false} {
		name := "idle-running"
		if waiting {
			name = "waiting"
		}
		b.Run(name+"/N="+strconv.Itoa(n), func(b *testing.B) {
			g0 := runtime.NumGoroutine()
			var bytesPer, gPer float64
			for range b.N {
				heap0, stack0 := inUse()
				var up atomic.Int64
				s := arbor.New("bench", arbor.WithLogger(nil),
					arbor.WithIntensity(math.MaxInt32, time.Hour),
					arbor.WithBackoff(arbor.ConstantBackoff(time.Hour)))
				for i := range n {
					err := s.Add("c"+strconv.Itoa(i), arbor.WorkerFunc(func(ctx context.Context) error {
						up.Add(1)
						if waiting {
							return errFail
						}
						<-ctx.Done()
						return nil
					}))
					if err != nil {
						b.Fatal(err)
					}
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := serve(ctx, s.Serve)
				want := arbor.Running
				if waiting {
					want = arbor.Restarting
				}
				for {
					if up.Load() == n {
						ready := 0
						for _, c := range s.Children() {
							if c.State == want {
								ready++
							}
						}
						if ready == n {
							break
						}
					}
					time.Sleep(10 * time.Millisecond)
				}
				heap1, stack1 := inUse()
				bytesPer += (float64(heap1+stack1) - float64(heap0+stack0)) / n
				gPer += float64(runtime.NumGoroutine()-g0-1) / n // less Serve's own goroutine
				cancel()
				checkServe(b, <-done)
			}
			b.ReportMetric(bytesPer/float64(b.N), "B/child")
			b.ReportMetric(gPer/float64(b.N), "goroutines/child")
			noLeak(b, g0)
		})
	}
}

// A dynImpl builds a supervisor with no children of its own and the
// operations on one dynamic child at a time, as a server that runs a child
// per connection uses them while the supervisor serves. All funcs are made
// once in build, so that B/op and allocs/op are the supervisor's.
type dynImpl struct {
	name  string
	build func(w work) dyn
	// terminate tells whether BenchmarkTerminate runs the implementation.
	terminate bool
}

// dyn holds one supervisor's operations on its dynamic child, which the
// benchmark calls one at a time from one goroutine. add adds the child,
// which starts at once (the supervisor serves); remove removes it and
// returns once it has returned. term stops it and returns once it has
// returned, and restart starts it again.
type dyn struct {
	serve         func(ctx context.Context) error
	add, remove   func() error
	term, restart func() error
}

var dynImpls = []dynImpl{
	{"arbor", buildArborDyn, true},
	{"suture", buildSutureDyn, true},
	{"raw", buildRawDyn, false},
}

// dynName is the dynamic child's name in arbor: the benchmarks never run
// two at once, so every op reuses it and formats no name.
const dynName = "conn"

// stopTimeout bounds suture's RemoveAndWait like arbor's default shutdown
// timeout bounds Remove.
const stopTimeout = arbor.DefaultShutdownTimeout

// buildArborDyn: arbor's Add and Remove (which waits), Terminate (which
// waits) and Restart; the child has the defaults, as in buildArbor.
func buildArborDyn(w work) dyn {
	s := newArbor()
	var wk arbor.Worker = arbor.WorkerFunc(w)
	return dyn{
		serve:   s.Serve,
		add:     func() error { return s.Add(dynName, wk) },
		remove:  func() error { return arborRemove(s, dynName) },
		term:    func() error { return arborTerminate(s, dynName) },
		restart: func() error { return s.Restart(dynName) },
	}
}

// buildSutureDyn: suture's Add, which returns a token, and RemoveAndWait.
// suture cannot stop a service and keep it, so term and restart are
// RemoveAndWait and Add again.
func buildSutureDyn(w work) dyn {
	s := newSuture()
	var svc suture.Service = sutureFunc(w)
	var tok suture.ServiceToken
	add := func() error { tok = s.Add(svc); return nil }
	remove := func() error { return s.RemoveAndWait(tok, stopTimeout) }
	return dyn{serve: s.Serve, add: add, remove: remove, term: remove, restart: add}
}

// rawDyn is raw's dynamic child: a goroutine with its own
// context.WithCancel, a deferred recover() and a done channel it closes on
// return. No loop takes part; Serve only waits, once its context is done,
// for every child to return, and stops them through a context of its own
// from which theirs derive.
type rawDyn struct {
	w      work
	base   context.Context
	stop   context.CancelFunc // cancels base
	wg     sync.WaitGroup
	cancel context.CancelFunc // the current child's
	done   chan struct{}      // closed when the current child returns
}

func buildRawDyn(w work) dyn {
	r := &rawDyn{w: w}
	r.base, r.stop = context.WithCancel(context.Background())
	return dyn{serve: r.Serve, add: r.add, remove: r.remove}
}

func (r *rawDyn) add() error {
	ctx, cancel := context.WithCancel(r.base)
	done := make(chan struct{})
	r.cancel, r.done = cancel, done
	r.wg.Add(1)
	go func() {
		defer func() {
			recover()
			cancel()
			close(done)
			r.wg.Done()
		}()
		r.w(ctx)
	}()
	return nil
}

func (r *rawDyn) remove() error {
	r.cancel()
	<-r.done
	return nil
}

func (r *rawDyn) Serve(ctx context.Context) error {
	<-ctx.Done()
	r.stop()
	r.wg.Wait()
	return nil
}

// dynWork is the dynamic child: it signals up when it runs, then waits for
// its context.
func dynWork(up chan<- struct{}) work {
	return func(ctx context.Context) error {
		up <- struct{}{}
		<-ctx.Done()
		return nil
	}
}

// BenchmarkDynamicLife measures a child's whole dynamic life while the
// supervisor serves: per op, the benchmark adds the child, waits until it
// signals that it runs, removes it and waits until it has returned (arbor:
// Add, Remove; suture: Add, RemoveAndWait; raw: a goroutine with its own
// cancel, cancelled and waited for). The supervisor has no other child. One
// life before the clock starts makes sure that it serves.
func BenchmarkDynamicLife(b *testing.B) {
	for _, im := range dynImpls {
		b.Run(im.name, func(b *testing.B) {
			g0 := runtime.NumGoroutine()
			up := make(chan struct{}, 1)
			d := im.build(dynWork(up))
			ctx, cancel := context.WithCancel(context.Background())
			done := serve(ctx, d.serve)
			life := func() {
				if err := d.add(); err != nil {
					b.Fatalf("add: %v", err)
				}
				<-up
				if err := d.remove(); err != nil {
					b.Fatalf("remove: %v", err)
				}
			}
			life()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				life()
			}
			b.StopTimer()
			cancel()
			checkServe(b, <-done)
			noLeak(b, g0)
		})
	}
}

// BenchmarkTerminate stops a running child and starts it again, per op:
// term, which returns once the child has returned, then restart and a wait
// until the child signals that it runs. For arbor these are Terminate and
// Restart, and the child stays in the supervisor, Stopped, in between.
// suture cannot stop a service and keep it, so its op is RemoveAndWait and
// Add, the same calls as DynamicLife/suture in the other order; raw's would
// be DynamicLife/raw again and is left out.
//
// ns/op, B/op and allocs/op cover the pair. terminate-ns/op times term
// alone, and restart-ns/op the rest, with time.Now around each call (b's
// StopTimer would stop the world to read memory statistics twice per op).
func BenchmarkTerminate(b *testing.B) {
	for _, im := range dynImpls {
		if !im.terminate {
			continue
		}
		b.Run(im.name, func(b *testing.B) {
			g0 := runtime.NumGoroutine()
			up := make(chan struct{}, 1)
			d := im.build(dynWork(up))
			ctx, cancel := context.WithCancel(context.Background())
			done := serve(ctx, d.serve)
			if err := d.add(); err != nil {
				b.Fatalf("add: %v", err)
			}
			<-up
			var termT, restartT time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				if err := d.term(); err != nil {
					b.Fatalf("terminate: %v", err)
				}
				t1 := time.Now()
				if err := d.restart(); err != nil {
					b.Fatalf("restart: %v", err)
				}
				<-up
				t2 := time.Now()
				termT += t1.Sub(t0)
				restartT += t2.Sub(t1)
			}
			b.StopTimer()
			b.ReportMetric(float64(termT.Nanoseconds())/float64(b.N), "terminate-ns/op")
			b.ReportMetric(float64(restartT.Nanoseconds())/float64(b.N), "restart-ns/op")
			if err := d.remove(); err != nil {
				b.Fatalf("remove: %v", err)
			}
			cancel()
			checkServe(b, <-done)
			noLeak(b, g0)
		})
	}
}

// BenchmarkSnapshot100k measures what a probe and the live view cost on a
// tree of 100,000 idle children, with one child failing and restarting
// continuously meanwhile: Health (a /livez answer) and Tree encoded as JSON
// (the live view's tree.json), per request; json-B is the encoded size.
func BenchmarkSnapshot100k(b *testing.B) {
	const n = 100000
	s := arbor.New("bench", arbor.WithLogger(nil), arbor.WithIntensity(math.MaxInt32, time.Nanosecond))
	var running atomic.Int64
	allUp := make(chan struct{})
	for i := range n {
		if err := s.Add("c"+strconv.Itoa(i), arbor.WorkerFunc(func(ctx context.Context) error {
			if running.Add(1) == n {
				close(allUp)
			}
			<-ctx.Done()
			return nil
		})); err != nil {
			b.Fatal(err)
		}
	}
	flapping := make(chan struct{})
	if err := s.Add("flapping", arbor.WorkerFunc(func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Millisecond):
			return errors.New("flap")
		case <-flapping:
			<-ctx.Done()
			return nil
		}
	})); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := serve(ctx, s.Serve)
	<-allUp
	defer func() {
		close(flapping)
		cancel()
		checkServe(b, <-done)
	}()
	b.Run("Health", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if h := s.Health(ctx); len(h.Checks) != n+2 {
				b.Fatalf("%d checks", len(h.Checks))
			}
		}
	})
	b.Run("TreeJSON", func(b *testing.B) {
		b.ReportAllocs()
		var size int
		for b.Loop() {
			body, err := s.Tree(ctx).MarshalJSON() // as tree.json writes it
			if err != nil {
				b.Fatal(err)
			}
			size = len(body)
		}
		b.ReportMetric(float64(size), "json-B")
	})
}
