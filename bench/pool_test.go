package bench

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alitto/pond/v2"
	"github.com/panjf2000/ants/v2"
	"golang.org/x/sync/errgroup"

	"github.com/arborgo/arbor"
	"github.com/arborgo/arbor/pool"
)

// The task pool benchmarks (README.md, "Task pool") run the same no-op
// handler, which returns a result, on five task pools:
//
//   - arbor: pool.New with WithWorkers(n), WithQueue(b.N) (so that Submit never
//     waits for room), no logger, and a supervisor without a logger.
//   - pond: pond.NewResultPool[int](n), its defaults (an unbounded queue),
//     tasks submitted with SubmitErr, results read from their futures.
//   - ants: ants.NewPoolWithFuncGeneric[int](n, f), its defaults (Invoke blocks
//     while every worker is busy: ants has no queue); f writes the result into
//     the task's slot of a results slice and signals a WaitGroup (throughput)
//     or a channel (latency).
//   - errgroup: an errgroup.Group with SetLimit(n) (Go blocks while n tasks
//     run; one goroutine per task), results written to the task's slot.
//   - chan: the lower bound, n goroutines ranging over a buffered channel of
//     task ids; results written to the task's slot, and the submitter waits
//     once per batch (close the channel, then a WaitGroup for the workers) or
//     reads each result from a channel (latency).
//   - chan-task: chan with a handle per task, like arbor's: a job holding
//     the task, its result and a done channel, allocated per task, and the
//     submitter waits on each job's done channel. Not a required contender:
//     it shows what a per-task handle costs by itself.
//
// Every benchmark has one submitter goroutine, the benchmark's.

// noop is the handler every pool runs: it returns its task plus one. A
// negative task is a warm-up task, which holds its worker until as many
// warm-up tasks run as there are workers, so that every worker has started
// before the clock runs.
//
//go:noinline
func noop(_ context.Context, n int) (int, error) {
	if n < 0 {
		warm.arrive()
	}
	return n + 1, nil
}

// epoch is the origin of the monotonic clock readings of the latency
// benchmarks.
var epoch = time.Now()

func now() int64 { return int64(time.Since(epoch)) }

// sentAt and startLat are the latency benchmark's: when task i was about to
// be submitted, and how long after that its handler started.
var sentAt, startLat []int64

// latNoop is noop that first records how long ago its task was submitted.
func latNoop(ctx context.Context, n int) (int, error) {
	if n >= 0 {
		startLat[n] = now() - sentAt[n]
	}
	return noop(ctx, n)
}

// A barrier lets the warm-up tasks through once all have arrived.
type barrier struct {
	left atomic.Int64
	all  chan struct{}
}

var warm *barrier

func (w *barrier) arrive() {
	if w.left.Add(-1) == 0 {
		close(w.all)
	}
	<-w.all
}

func newBarrier(n int) *barrier {
	w := &barrier{all: make(chan struct{})}
	w.left.Store(int64(n))
	return w
}

var bg = context.Background()

// A taskPool is one contender, started with its workers.
type taskPool interface {
	// batch submits tasks 0..k-1, then waits for every result, and returns
	// their sum. k is at most the size the pool was made for.
	batch(k int) int
	// one submits task i and waits for its result.
	one(i int) int
	// stop shuts the pool down and waits for its goroutines.
	stop(b *testing.B)
}

type handler = func(context.Context, int) (int, error)

type contender struct {
	name string
	// start returns the pool with n workers, every one started, running h:
	// for one batch of size tasks, or for single tasks (one) if single.
	start func(b *testing.B, n, size int, h handler, single bool) taskPool
}

var contenders = []contender{
	{"arbor", startArbor},
	{"pond", startPond},
	{"ants", startAnts},
	{"errgroup", startErrgroup},
	{"chan", startChan},
	{"chan-task", startChanTask},
}

// warmUp runs n warm-up tasks with submit, which must not wait for them, and
// then waits until every one of them has run.
func warmUp(n int, submit func(id int), wait func()) {
	warm = newBarrier(n)
	for range n {
		submit(-1)
	}
	<-warm.all
	wait()
}

// arbor

type arborPool struct {
	p     *pool.Pool[int, int]
	tasks []*pool.Task[int, int]
	stopF context.CancelFunc
	done  <-chan error
}

func startArbor(b *testing.B, n, size int, h handler, _ bool) taskPool {
	p, err := pool.New("bench", h, pool.WithWorkers(n), pool.WithQueue(max(size, n)),
		pool.WithLogger(nil), pool.WithSupervisor(arbor.WithLogger(nil)))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	a := &arborPool{p: p, tasks: make([]*pool.Task[int, int], size), stopF: cancel, done: serve(ctx, p.Serve)}
	var warmTasks []*pool.Task[int, int]
	warmUp(n, func(id int) {
		t, err := p.Submit(bg, id)
		if err != nil {
			b.Fatal(err)
		}
		warmTasks = append(warmTasks, t)
	}, func() {
		for _, t := range warmTasks {
			if _, err := t.Wait(bg); err != nil {
				b.Fatal(err)
			}
		}
	})
	return a
}

func (a *arborPool) batch(k int) int {
	for i := range k {
		t, err := a.p.Submit(bg, i)
		if err != nil {
			panic(err)
		}
		a.tasks[i] = t
	}
	sum := 0
	for i, t := range a.tasks[:k] {
		r, err := t.Wait(bg)
		if err != nil {
			panic(err)
		}
		sum += r
		a.tasks[i] = nil
	}
	return sum
}

func (a *arborPool) one(i int) int {
	t, err := a.p.Submit(bg, i)
	if err != nil {
		panic(err)
	}
	r, err := t.Wait(bg)
	if err != nil {
		panic(err)
	}
	return r
}

func (a *arborPool) stop(b *testing.B) {
	a.stopF()
	checkServe(b, <-a.done)
}

// pond

type pondPool struct {
	p       pond.ResultPool[int]
	h       handler
	futures []pond.ResultTask[int]
}

func startPond(b *testing.B, n, size int, h handler, _ bool) taskPool {
	p := pond.NewResultPool[int](n)
	var warmTasks []pond.ResultTask[int]
	warmUp(n, func(id int) {
		warmTasks = append(warmTasks, p.SubmitErr(func() (int, error) { return h(bg, id) }))
	}, func() {
		for _, t := range warmTasks {
			if _, err := t.Wait(); err != nil {
				b.Fatal(err)
			}
		}
	})
	return &pondPool{p: p, h: h, futures: make([]pond.ResultTask[int], size)}
}

func (q *pondPool) batch(k int) int {
	h := q.h
	for i := range k {
		q.futures[i] = q.p.SubmitErr(func() (int, error) { return h(bg, i) })
	}
	sum := 0
	for i, f := range q.futures[:k] {
		r, err := f.Wait()
		if err != nil {
			panic(err)
		}
		sum += r
		q.futures[i] = nil
	}
	return sum
}

func (q *pondPool) one(i int) int {
	h := q.h
	r, err := q.p.SubmitErr(func() (int, error) { return h(bg, i) }).Wait()
	if err != nil {
		panic(err)
	}
	return r
}

func (q *pondPool) stop(*testing.B) { q.p.StopAndWait() }

// ants

type antsPool struct {
	p      *ants.PoolWithFuncGeneric[int]
	out    []int
	wg     sync.WaitGroup
	single bool // results on res, else in out with wg
	res    chan int
}

func startAnts(b *testing.B, n, size int, h handler, single bool) taskPool {
	a := &antsPool{out: make([]int, size), res: make(chan int, 1), single: single}
	p, err := ants.NewPoolWithFuncGeneric(n, func(i int) {
		r, err := h(bg, i)
		if err != nil {
			panic(err)
		}
		switch {
		case i < 0: // warm-up
			a.wg.Done()
		case a.single:
			a.res <- r
		default:
			a.out[i] = r
			a.wg.Done()
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	a.p = p
	warmUp(n, func(id int) {
		a.wg.Add(1)
		if err := p.Invoke(id); err != nil {
			b.Fatal(err)
		}
	}, a.wg.Wait)
	return a
}

func (a *antsPool) batch(k int) int {
	a.wg.Add(k)
	for i := range k {
		if err := a.p.Invoke(i); err != nil {
			panic(err)
		}
	}
	a.wg.Wait()
	sum := 0
	for _, r := range a.out[:k] {
		sum += r
	}
	return sum
}

func (a *antsPool) one(i int) int {
	if err := a.p.Invoke(i); err != nil {
		panic(err)
	}
	return <-a.res
}

func (a *antsPool) stop(b *testing.B) {
	if err := a.p.ReleaseTimeout(5 * time.Second); err != nil {
		b.Fatal(err)
	}
}

// errgroup

type errgroupPool struct {
	g   errgroup.Group
	h   handler
	out []int
	res chan int
}

func startErrgroup(_ *testing.B, n, size int, h handler, _ bool) taskPool {
	e := &errgroupPool{h: h, out: make([]int, size), res: make(chan int, 1)}
	e.g.SetLimit(n)
	return e // no workers to start: Go starts a goroutine per task
}

func (e *errgroupPool) batch(k int) int {
	h, out := e.h, e.out
	for i := range k {
		e.g.Go(func() (err error) {
			out[i], err = h(bg, i)
			return err
		})
	}
	if err := e.g.Wait(); err != nil {
		panic(err)
	}
	sum := 0
	for _, r := range out[:k] {
		sum += r
	}
	return sum
}

func (e *errgroupPool) one(i int) int {
	h, res := e.h, e.res
	e.g.Go(func() error {
		r, err := h(bg, i)
		res <- r
		return err
	})
	return <-res
}

func (e *errgroupPool) stop(*testing.B) {
	if err := e.g.Wait(); err != nil {
		panic(err)
	}
}

// chan: the lower bound

type chanPool struct {
	h      handler
	jobs   chan int
	out    []int
	res    chan int
	single bool // results on res, else in out
	halted bool
	wg     sync.WaitGroup
}

// startChan starts n workers. For a batch, the channel has room for the
// whole batch and the submitter waits once, for the workers to return after
// it closed the channel: a pool good for one batch.
func startChan(_ *testing.B, n, size int, h handler, single bool) taskPool {
	c := &chanPool{h: h, jobs: make(chan int, max(size, n)), out: make([]int, size), res: make(chan int, 1), single: single}
	for range n {
		c.wg.Go(func() {
			for i := range c.jobs {
				r, err := c.h(bg, i)
				if err != nil {
					panic(err)
				}
				if i < 0 || c.single {
					c.res <- r
				} else {
					c.out[i] = r
				}
			}
		})
	}
	warmUp(n, func(id int) { c.jobs <- id }, func() {
		for range n {
			<-c.res
		}
	})
	return c
}

func (c *chanPool) batch(k int) int {
	if c.halted {
		panic("chan pool: one batch only")
	}
	for i := range k {
		c.jobs <- i
	}
	c.halt()
	sum := 0
	for _, r := range c.out[:k] {
		sum += r
	}
	return sum
}

func (c *chanPool) one(i int) int {
	c.jobs <- i
	return <-c.res
}

func (c *chanPool) halt() {
	if !c.halted {
		c.halted = true
		close(c.jobs)
		c.wg.Wait()
	}
}

func (c *chanPool) stop(*testing.B) { c.halt() }

// chan-task: the lower bound with a handle per task, as arbor's Submit
// returns: a job with its task, its result and a done channel, both
// allocated per task, sent over a buffered channel to n goroutines; the
// submitter waits on each job's done channel.

type job struct {
	in, out int
	done    chan struct{}
}

type chanTaskPool struct {
	h    handler
	jobs chan *job
	held []*job
	wg   sync.WaitGroup
}

func startChanTask(_ *testing.B, n, size int, h handler, _ bool) taskPool {
	c := &chanTaskPool{h: h, jobs: make(chan *job, max(size, n)), held: make([]*job, size)}
	for range n {
		c.wg.Go(func() {
			for j := range c.jobs {
				r, err := c.h(bg, j.in)
				if err != nil {
					panic(err)
				}
				j.out = r
				close(j.done)
			}
		})
	}
	var warmJobs []*job
	warmUp(n, func(id int) {
		j := &job{in: id, done: make(chan struct{})}
		warmJobs = append(warmJobs, j)
		c.jobs <- j
	}, func() {
		for _, j := range warmJobs {
			<-j.done
		}
	})
	return c
}

func (c *chanTaskPool) submit(i int) *job {
	j := &job{in: i, done: make(chan struct{})}
	c.jobs <- j
	return j
}

func (c *chanTaskPool) batch(k int) int {
	for i := range k {
		c.held[i] = c.submit(i)
	}
	sum := 0
	for i, j := range c.held[:k] {
		<-j.done
		sum += j.out
		c.held[i] = nil
	}
	return sum
}

func (c *chanTaskPool) one(i int) int {
	j := c.submit(i)
	<-j.done
	return j.out
}

func (c *chanTaskPool) stop(*testing.B) {
	close(c.jobs)
	c.wg.Wait()
}

var poolWorkers = []int{1, 4, 64}

// BenchmarkPoolThroughput submits b.N tasks, one after the other from the
// benchmark's goroutine, then waits for every result (in submission order)
// and sums them. ns/op and tasks/s are per task, allocs/op and B/op too. The
// workers are started, and the slices of handles or results allocated,
// before the clock runs.
func BenchmarkPoolThroughput(b *testing.B) {
	for _, n := range poolWorkers {
		b.Run("workers="+strconv.Itoa(n), func(b *testing.B) {
			for _, c := range contenders {
				b.Run(c.name, func(b *testing.B) { benchPoolThroughput(b, c, n) })
			}
		})
	}
}

func benchPoolThroughput(b *testing.B, c contender, n int) {
	g0 := runtime.NumGoroutine()
	p := c.start(b, n, b.N, noop, false)
	b.ReportAllocs()
	b.ResetTimer()
	sum := p.batch(b.N)
	b.StopTimer()
	if want := b.N * (b.N + 1) / 2; sum != want {
		b.Fatalf("sum of results %d, want %d", sum, want)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
	p.stop(b)
	noLeak(b, g0)
}

// BenchmarkPoolLatency submits one task at a time and waits for its result
// before it submits the next, so every worker is idle at each Submit. The
// handler records, first thing, the time since just before Submit; p50-ns
// and p99-ns (nearest rank) are over the b.N tasks. ns/op is the whole round
// trip, allocs/op and B/op are per task.
func BenchmarkPoolLatency(b *testing.B) {
	for _, n := range poolWorkers {
		b.Run("workers="+strconv.Itoa(n), func(b *testing.B) {
			for _, c := range contenders {
				b.Run(c.name, func(b *testing.B) { benchPoolLatency(b, c, n) })
			}
		})
	}
}

func benchPoolLatency(b *testing.B, c contender, n int) {
	g0 := runtime.NumGoroutine()
	sentAt, startLat = make([]int64, b.N), make([]int64, b.N)
	p := c.start(b, n, 1, latNoop, true)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		sentAt[i] = now()
		if r := p.one(i); r != i+1 {
			b.Fatalf("task %d: result %d", i, r)
		}
	}
	b.StopTimer()
	p.stop(b)
	lat := make([]time.Duration, b.N)
	for i, d := range startLat {
		lat[i] = time.Duration(d)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(percentile(lat, 0.50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(percentile(lat, 0.99).Nanoseconds()), "p99-ns")
	sentAt, startLat = nil, nil
	noLeak(b, g0)
}

// BenchmarkPoolQueuedMemory holds the only worker of a pool in a task and
// queues b.N more tasks behind it, keeping their handles (in a slice
// allocated beforehand). B/queued-task is the growth of HeapAlloc, each
// reading after runtime.GC(), per queued task: the task's record, its handle
// and its place in the queue. ns/op and allocs/op are those of a Submit that
// queues. ants and errgroup have no queue: a task submitted while every
// worker is busy blocks its submitter, so they are left out. chan is a
// channel of task ids of capacity b.N plus a results slice of b.N ints, both
// made after the baseline.
func BenchmarkPoolQueuedMemory(b *testing.B) {
	b.Run("arbor", func(b *testing.B) {
		g0 := runtime.NumGoroutine()
		hold, held := make(chan struct{}), make(chan struct{})
		p, err := pool.New("bench", func(ctx context.Context, n int) (int, error) {
			if n < 0 {
				close(held)
				<-hold
				return 0, nil
			}
			return noop(ctx, n)
		}, pool.WithWorkers(1), pool.WithQueue(b.N), pool.WithLogger(nil), pool.WithSupervisor(arbor.WithLogger(nil)))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(bg)
		done := serve(ctx, p.Serve)
		first, err := p.Submit(bg, -2)
		if err != nil {
			b.Fatal(err)
		}
		<-held
		tasks := make([]*pool.Task[int, int], b.N)
		per := queuedBytes(b, func() {
			for i := range b.N {
				if tasks[i], err = p.Submit(bg, i); err != nil {
					b.Fatal(err)
				}
			}
		})
		close(hold)
		if _, err := first.Wait(bg); err != nil {
			b.Fatal(err)
		}
		for _, t := range tasks {
			if _, err := t.Wait(bg); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(per, "B/queued-task")
		cancel()
		checkServe(b, <-done)
		noLeak(b, g0)
	})
	b.Run("pond", func(b *testing.B) {
		g0 := runtime.NumGoroutine()
		hold, held := make(chan struct{}), make(chan struct{})
		p := pond.NewResultPool[int](1)
		first := p.SubmitErr(func() (int, error) {
			close(held)
			<-hold
			return noop(bg, 0)
		})
		<-held
		futures := make([]pond.ResultTask[int], b.N)
		per := queuedBytes(b, func() {
			for i := range b.N {
				futures[i] = p.SubmitErr(func() (int, error) { return noop(bg, i) })
			}
		})
		close(hold)
		if _, err := first.Wait(); err != nil {
			b.Fatal(err)
		}
		for _, f := range futures {
			if _, err := f.Wait(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(per, "B/queued-task")
		p.StopAndWait()
		noLeak(b, g0)
	})
	b.Run("chan", func(b *testing.B) {
		g0 := runtime.NumGoroutine()
		hold := make(chan struct{})
		var jobs chan int
		var out []int
		var wg sync.WaitGroup
		ready := make(chan struct{})
		wg.Go(func() {
			<-hold // the worker is busy with a task until hold is closed
			<-ready
			for i := range jobs {
				out[i], _ = noop(bg, i)
			}
		})
		per := queuedBytes(b, func() {
			jobs, out = make(chan int, b.N), make([]int, b.N)
			for i := range b.N {
				jobs <- i
			}
		})
		close(ready)
		close(hold)
		close(jobs)
		wg.Wait()
		b.ReportMetric(per, "B/queued-task")
		noLeak(b, g0)
	})
}

// queuedBytes times queue and returns the growth of the live heap across it
// per b.N.
func queuedBytes(b *testing.B, queue func()) float64 {
	h0 := liveHeap()
	b.ReportAllocs()
	b.ResetTimer()
	queue()
	b.StopTimer()
	return float64(int64(liveHeap())-int64(h0)) / float64(b.N)
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
