package pool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sync/errgroup"

	"github.com/arborgo/arbor"
	"github.com/arborgo/arbor/internal/gstack"
)

// A Handler runs one attempt of a task and returns its result. It should
// return soon after ctx is done; context.Cause(ctx) says why (ErrSoftTimeout,
// arbor.ErrHung, ErrClosed).
type Handler[T, R any] func(ctx context.Context, task T) (R, error)

// A Setup prepares one worker when it starts, with the worker's context:
// it returns the handler the worker runs its tasks with, which may use
// state of its own such as a connection, and a function to release that
// state when the worker stops (or nil). An error fails the worker, which
// the pool's supervisor restarts under its restart intensity.
type Setup[T, R any] func(ctx context.Context) (h Handler[T, R], release func(), err error)

// A Pool runs tasks of type T on supervised workers and gives results of
// type R. It is an arbor.Worker: serve it, or add it to a supervisor. Its
// methods are safe for concurrent use.
type Pool[T, R any] struct {
	name    string
	cfg     config
	handler Handler[T, R]
	setup   Setup[T, R]
	sup     *arbor.Supervisor
	src     Source[T]
	q       *queue[T, R] // the in-memory queue, or nil with WithSource
	dead    func(T, *DeadLetterError)
	wake    chan struct{} // the manager's doorbell

	busy, idle                                          atomic.Int64 // workers in an attempt; waiting for a task
	scales                                              atomic.Bool  // min < max: the pool autoscales
	succeeded, failed, retried, deadLettered, abandoned atomic.Uint64
	closing                                             atomic.Bool

	base atomic.Value // context.Context: the last Serve's values without its cancellation
	seen bool         // the pool has event handlers

	mu       sync.Mutex
	serving  bool
	min, max int
	slots    []*slot[T, R] // written by the manager
	nextID   int
}

// New returns a pool that runs each task with h, named name in its tree.
// Bad input returns an error matching arbor.ErrInvalid.
func New[T, R any](name string, h Handler[T, R], opts ...Option) (*Pool[T, R], error) {
	if h == nil {
		return nil, errInvalid("nil handler")
	}
	return newPool(name, h, nil, opts)
}

// NewWithSetup returns a pool whose workers each get their handler, and any
// state it uses, from setup when they start.
func NewWithSetup[T, R any](name string, setup Setup[T, R], opts ...Option) (*Pool[T, R], error) {
	if setup == nil {
		return nil, errInvalid("nil setup")
	}
	return newPool(name, nil, setup, opts)
}

func newPool[T, R any](name string, h Handler[T, R], setup Setup[T, R], opts []Option) (*Pool[T, R], error) {
	cfg := newConfig(opts)
	if cfg.err != nil {
		return nil, cfg.err
	}
	p := &Pool[T, R]{name: name, cfg: cfg, handler: h, setup: setup, wake: make(chan struct{}, 1), min: cfg.min, max: cfg.max,
		seen: len(cfg.events) > 0}
	p.scales.Store(cfg.min < cfg.max)
	switch src := cfg.source.(type) {
	case nil:
		var wake func()
		if cfg.min < cfg.max {
			wake = p.notify // tasks wait: maybe add workers
		}
		p.q = newQueue[T, R](cfg.queue, wake)
		p.src = p.q
	case Source[T]:
		p.src = src
	default:
		return nil, errInvalid("source %T does not lease %T tasks", cfg.source, *new(T))
	}
	if cfg.deadLetter != nil {
		fn, ok := cfg.deadLetter.(func(T, *DeadLetterError))
		if !ok {
			return nil, errInvalid("dead-letter function %T does not take %T tasks", cfg.deadLetter, *new(T))
		}
		p.dead = fn
	}
	// The workers are idle or abandoned when the supervisor stops them:
	// its whole shutdown is bounded by one worker's stop timeout.
	p.sup = arbor.New(name, append([]arbor.Option{arbor.WithShutdownDeadline(cfg.stopTimeout())}, cfg.supervisor...)...)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.sup.Serve(done); err != nil { // a bad name or option: Serve says so before it starts anything
		return nil, err
	}
	return p, nil
}

// Supervisor returns the supervisor of the pool's workers, which Serve
// serves: each worker is one of its children, named "worker-1",
// "worker-2", and so on. It makes the pool an arbor.Nested worker, so that a
// tree shows the workers below the pool.
func (p *Pool[T, R]) Supervisor() *arbor.Supervisor { return p.sup }

// errZero is returned by the methods of a Pool not made by New.
var errZero = errInvalid("a zero Pool: make pools with New or NewWithSetup")

// Submit queues task and returns its handle. While the queue is full it
// waits for room, until ctx is done (it then returns ctx's error). A
// handler of the pool that submits with its own context (or one derived
// from it) never waits: its task is queued beyond the capacity, so that a
// pool whose workers all submit cannot deadlock. Tasks submitted before
// Serve wait for it; while the pool does not serve (it shut down), Submit
// returns an error matching ErrClosed. A pool with a Source has no queue:
// Submit returns an error matching arbor.ErrInvalid.
func (p *Pool[T, R]) Submit(ctx context.Context, task T) (*Task[T, R], error) {
	if ctx == nil {
		return nil, errInvalid("nil context")
	}
	return p.submit(ctx, task, true)
}

// TrySubmit queues task if there is room, and returns an error matching
// ErrFull at once if there is not.
func (p *Pool[T, R]) TrySubmit(task T) (*Task[T, R], error) {
	return p.submit(context.Background(), task, false)
}

func (p *Pool[T, R]) submit(ctx context.Context, task T, wait bool) (*Task[T, R], error) {
	if p.sup == nil {
		return nil, errZero
	}
	q := p.q
	if q == nil {
		return nil, errInvalid("pool %q takes its tasks from a Source", p.name)
	}
	t := &Task[T, R]{rec: record[T, R]{q: q, task: task}}
	if !(wait && p.ownHandler(ctx)) {
		if wait {
			if err := q.room.Acquire(ctx, 1); err != nil {
				return nil, err
			}
		} else if !q.room.TryAcquire(1) {
			if q.isClosed() {
				return nil, ErrClosed
			}
			return nil, ErrFull
		}
		t.rec.admitted = true
	}
	if !q.put(&t.rec) {
		if t.rec.admitted {
			q.room.Release(1)
		}
		return nil, ErrClosed
	}
	return t, nil
}

// ownHandler reports whether ctx is the context of one of p's attempts.
func (p *Pool[T, R]) ownHandler(ctx context.Context) bool {
	s, ok := ctx.Value(slotKey{}).(*slot[T, R])
	return ok && s.p == p
}

// Resize sets the number of workers: fixed when min == max, autoscaled
// between them otherwise (see WithAutoscale). Workers beyond the new
// maximum leave after their running attempt. Bad sizes return an error
// matching arbor.ErrInvalid and change nothing.
func (p *Pool[T, R]) Resize(min, max int) error {
	switch {
	case p.sup == nil:
		return errZero
	case min < 1:
		return errInvalid("minimum %d workers: need at least 1", min)
	case max < min:
		return errInvalid("maximum %d workers below minimum %d", max, min)
	}
	p.mu.Lock()
	p.min, p.max = min, max
	p.scales.Store(min < max)
	if p.q != nil {
		p.q.mu.Lock()
		if min < max {
			p.q.wake = p.notify
		} else {
			p.q.wake = nil
		}
		p.q.mu.Unlock()
	}
	p.mu.Unlock()
	p.notify()
	return nil
}

// Stats returns the pool's counts.
func (p *Pool[T, R]) Stats() Stats {
	st := Stats{
		Busy:         int(p.busy.Load()),
		Succeeded:    p.succeeded.Load(),
		Failed:       p.failed.Load(),
		Retried:      p.retried.Load(),
		DeadLettered: p.deadLettered.Load(),
		Abandoned:    p.abandoned.Load(),
	}
	if p.q != nil {
		st.Queued = p.q.len()
	}
	p.mu.Lock()
	for _, s := range p.slots {
		if s.live() {
			st.Workers++
		}
	}
	for _, s := range p.slots {
		if s.abandoned.Load() && !s.exited.Load() {
			st.AbandonedRunning++
		}
	}
	p.mu.Unlock()
	return st
}

// notify rings the manager's doorbell. It never blocks.
func (p *Pool[T, R]) notify() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Pool[T, R]) stopping() bool { return p.closing.Load() }

// ackCtx is the context for telling a source how a task ended: Serve's
// values, not its cancellation, so that a shutdown still settles tasks.
func (p *Pool[T, R]) ackCtx() context.Context {
	if ctx, ok := p.base.Load().(context.Context); ok {
		return ctx
	}
	return context.Background()
}

// Serve runs the pool until ctx is done or it fails, then shuts it down
// (see the package doc) and returns: nil after ctx ended it, the error of
// its supervisor (such as an *arbor.IntensityError when workers crash too
// often), an error matching ErrTooManyAbandoned, joined with a
// *arbor.StuckError for each worker still stuck. It returns an error
// matching arbor.ErrAlreadyServing if another Serve runs, and nil at once if
// ctx is already done.
func (p *Pool[T, R]) Serve(ctx context.Context) error {
	if p.sup == nil {
		return errZero
	}
	if ctx == nil {
		return errInvalid("nil context")
	}
	if ctx.Err() != nil {
		return nil
	}
	p.mu.Lock()
	if p.serving {
		p.mu.Unlock()
		return fmt.Errorf("%w: pool %q", arbor.ErrAlreadyServing, p.name)
	}
	p.serving = true
	p.mu.Unlock()
	base := context.WithoutCancel(ctx)
	p.base.Store(base)
	p.closing.Store(false)
	if p.q != nil {
		p.q.open()
	}

	g, gctx := errgroup.WithContext(base)
	sctx, stopSup := context.WithCancel(base)
	var supErr, manErr error
	g.Go(func() error {
		supErr = p.sup.Serve(sctx)
		return supErr
	})
	g.Go(func() error {
		defer stopSup()
		manErr = p.manage(ctx, gctx)
		p.shutdown(gctx)
		return manErr
	})
	_ = g.Wait()
	p.finish()
	switch {
	case manErr == nil:
		return supErr
	case supErr == nil:
		return manErr
	}
	return errors.Join(manErr, supErr)
}

// manage keeps the pool's size and replaces workers that left, until ctx
// is done, the supervisor stopped (gctx), or too many attempts are
// abandoned.
func (p *Pool[T, R]) manage(ctx, gctx context.Context) error {
	idle := time.NewTimer(p.cfg.idle)
	defer idle.Stop()
	armed := true
	for {
		if err := p.reconcile(ctx); err != nil {
			return err
		}
		var idleC <-chan time.Time // only while the pool may shrink
		p.mu.Lock()
		shrinks := p.min < p.max
		p.mu.Unlock()
		switch {
		case shrinks && !armed:
			idle.Reset(p.cfg.idle)
			armed = true
			idleC = idle.C
		case shrinks:
			idleC = idle.C
		case armed:
			idle.Stop()
			armed = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-gctx.Done():
			return nil
		case <-p.wake:
		case <-idleC:
			armed = false
			p.scaleDown()
		}
	}
}

// reconcile deletes the workers that left, counts abandoned attempts, and
// adds or retires workers to match the pool's size.
func (p *Pool[T, R]) reconcile(ctx context.Context) error {
	if n, bound := p.account(); n > bound {
		return fmt.Errorf("%w: pool %q has more than %d", ErrTooManyAbandoned, p.name, bound)
	}
	if ctx.Err() != nil {
		return nil
	}
	p.mu.Lock()
	min, max := p.min, p.max
	var live, idle []*slot[T, R]
	for _, s := range p.slots {
		if s.live() {
			live = append(live, s)
			if s.idleSince.Load() != 0 {
				idle = append(idle, s)
			}
		}
	}
	p.mu.Unlock()
	want := len(live)
	switch {
	case p.q != nil:
		// Tasks wait in the ring only while no worker waits for one.
		want += p.q.backlog()
	case min < max && p.idle.Load() == 0:
		// A source hides its backlog: a worker short of idle ones took
		// the last task, so more may wait.
		want++
	}
	want = clamp(want, min, max)
	for n := len(live); n < want; n++ {
		p.addSlot()
	}
	if excess := len(live) - want; excess > 0 {
		// Idle workers leave first; busy ones after their attempt.
		rest := slices.DeleteFunc(slices.Clone(live), func(s *slot[T, R]) bool { return slices.Contains(idle, s) })
		for _, s := range append(idle, rest...)[:excess] {
			s.retire()
		}
	}
	return nil
}

// account deletes the workers that left and reports newly abandoned
// attempts; it returns how many abandoned attempts still run, and how many
// may. The manager calls it, and the shutdown, until Serve returns.
func (p *Pool[T, R]) account() (abandoned, bound int) {
	var gone, fresh []*slot[T, R]
	p.mu.Lock()
	keep := p.slots[:0]
	for _, s := range p.slots {
		if s.exited.Load() {
			gone = append(gone, s)
			continue
		}
		keep = append(keep, s)
		if s.abandoned.Load() {
			abandoned++
			if !s.reported {
				s.reported = true
				fresh = append(fresh, s)
			}
		}
	}
	clear(p.slots[len(keep):])
	p.slots = keep
	bound = p.cfg.maxAbandoned
	if bound < 0 {
		bound = p.max
	}
	p.mu.Unlock()
	for _, s := range gone {
		_ = p.sup.Remove(context.Background(), s.name) // it returned, or is returning
	}
	if len(fresh) > 0 {
		p.reportAbandoned(fresh)
	}
	return abandoned, bound
}

func clamp(n, lo, hi int) int {
	return max(lo, min(n, hi))
}

// addSlot adds a new worker to the pool's supervisor.
func (p *Pool[T, R]) addSlot() {
	p.mu.Lock()
	p.nextID++
	s := newSlot(p, "worker-"+strconv.Itoa(p.nextID))
	p.slots = append(p.slots, s)
	p.mu.Unlock()
	opts := []arbor.ChildOption{arbor.WithRestart(arbor.Transient), arbor.WithShutdownTimeout(p.cfg.stopTimeout())}
	if p.setup != nil {
		opts = append(opts, arbor.WithReadiness(0))
	}
	if err := p.sup.Add(s.name, s, opts...); err != nil {
		s.exited.Store(true) // the supervisor no longer takes children: it stopped
	}
}

// scaleDown retires the workers of an autoscaling pool that stayed idle for
// the whole idle window, down to its minimum.
func (p *Pool[T, R]) scaleDown() {
	cutoff := time.Now().Add(-p.cfg.idle).UnixNano()
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.slots {
		if s.live() {
			n++
		}
	}
	for _, s := range p.slots {
		if n <= p.min {
			return
		}
		if since := s.idleSince.Load(); s.live() && since != 0 && since <= cutoff {
			s.retire()
			n--
		}
	}
}

// reportAbandoned reports newly abandoned attempts, with their stacks,
// taken in one dump of all goroutines.
func (p *Pool[T, R]) reportAbandoned(slots []*slot[T, R]) {
	want := make(map[uintptr]bool, len(slots))
	for _, s := range slots {
		want[markID(&s.mark)] = true
	}
	stacks := gstack.FindAll(runAttemptName, want)
	for _, s := range slots {
		p.abandoned.Add(1)
		stack := stacks[markID(&s.mark)]
		attempt := s.attemptNo
		p.event(Event{Kind: EventAbandoned, Pool: p.name, Worker: s.name, Task: s.task, Attempt: attempt, Err: ErrAbandoned, Stack: stack})
		if p.cfg.logger != nil {
			p.cfg.logger.Error("task attempt abandoned at its hard time limit", "pool", p.name, "worker", s.name,
				"attempt", attempt, "stack", string(stack))
		}
	}
}

// shutdown stops the pool taking tasks, ends those never started, and waits
// for the running attempts to return, be cancelled, or be abandoned.
func (p *Pool[T, R]) shutdown(gctx context.Context) {
	p.closing.Store(true)
	if p.q != nil {
		p.q.close()
	}
	p.mu.Lock()
	slots := slices.Clone(p.slots)
	p.mu.Unlock()
	for _, s := range slots {
		s.shut()
	}
	for {
		p.account() // attempts abandoned meanwhile are reported
		waiting := false
		for _, s := range slots {
			if s.draining() {
				waiting = true
				break
			}
		}
		if !waiting {
			return
		}
		select {
		case <-p.wake:
		case <-gctx.Done():
			return // the supervisor stopped the workers itself
		}
	}
}

// finish settles what Serve leaves behind once the supervisor returned:
// tasks of the in-memory queue held by attempts still running end with
// ErrClosed, and the workers are deleted, for a later Serve to start anew.
func (p *Pool[T, R]) finish() {
	p.account() // abandoned during the supervisor's shutdown: reported too
	p.mu.Lock()
	slots := p.slots
	p.slots = nil
	p.serving = false
	p.mu.Unlock()
	var zero R
	var adrift []*slot[T, R]
	for _, s := range slots {
		if m, ok := s.heldLease().(*record[T, R]); ok {
			m.finish(zero, fmt.Errorf("%w: its attempt on %s was still running (%w)", ErrClosed, s.name, ErrAbandoned))
		}
		if s.abandoned.Load() && !s.exited.Load() {
			// Still counted against WithMaxAbandoned, across Serves,
			// until it returns: a parent restarting the pool must not
			// let abandoned goroutines pile up.
			adrift = append(adrift, s)
		} else {
			s.exited.Store(true)
		}
		_ = p.sup.Remove(context.Background(), s.name)
	}
	p.mu.Lock()
	p.slots = append(p.slots, adrift...)
	p.mu.Unlock()
}

// settle decides what becomes of a task after an attempt returned (late,
// if it was abandoned) with res and err.
func (p *Pool[T, R]) settle(s *slot[T, R], l Lease[T], late bool, res R, err error) {
	attempt := s.attemptNo
	m, mem := l.(*record[T, R])
	if mem && m.claimed.Load() {
		p.discarded(s, attempt, err)
		return
	}
	if err == nil {
		if mem && !m.finish(res, nil) { // claimed under the CAS: the pool's end may race a late return
			p.discarded(s, attempt, nil)
			return
		}
		p.succeeded.Add(1) // counted before Wait can return
		if p.seen {
			p.event(Event{Kind: EventSucceeded, Pool: p.name, Worker: s.name, Task: s.task, Attempt: attempt})
		}
		if aerr := s.settleLease(func() error { return l.Ack(p.ackCtx()) }); aerr != nil {
			p.sourceError(s, "ack", aerr)
		}
		return
	}
	if late && !matches(err, ErrAbandoned) {
		err = fmt.Errorf("%w, then returned: %w", ErrAbandoned, err)
	}
	p.failed.Add(1)
	if mem {
		m.errs = append(m.errs, err)
	}
	p.event(Event{Kind: EventFailed, Pool: p.name, Worker: s.name, Task: s.task, Attempt: attempt, Err: err})
	switch {
	case p.stopping():
		p.notRun(s, l)
	case attempt >= p.cfg.attempts || s.noRetry || matches(err, arbor.ErrDoNotRestart):
		errs := []error{err}
		if mem {
			errs = slices.Clone(m.errs)
		}
		p.deadLetter(s, l, s.task, attempt, errs)
	default:
		delay := p.delay(attempt)
		p.retried.Add(1)
		p.event(Event{Kind: EventRetried, Pool: p.name, Worker: s.name, Task: s.task, Attempt: attempt, Err: err, Delay: delay})
		if nerr := s.settleLease(func() error { return l.Nack(p.ackCtx(), delay) }); nerr != nil {
			p.sourceError(s, "nack", nerr)
		}
	}
}

// discarded logs the late result of an abandoned attempt whose task had
// ended (the pool stopped meanwhile).
func (p *Pool[T, R]) discarded(s *slot[T, R], attempt int, err error) {
	if p.cfg.logger != nil {
		p.cfg.logger.Warn("late result of an abandoned attempt discarded: its task had ended", "pool", p.name,
			"worker", s.name, "attempt", attempt, "error", err)
	}
}

// notRun gives back a task the pool will not run (more) as it shuts down.
func (p *Pool[T, R]) notRun(s *slot[T, R], l Lease[T]) {
	if m, ok := l.(*record[T, R]); ok {
		var zero R
		m.finish(zero, m.closedErr())
		return
	}
	if err := s.settleLease(func() error { return l.Nack(p.ackCtx(), 0) }); err != nil {
		p.sourceError(s, "nack", err)
	}
}

// deadLetter ends a task for good.
func (p *Pool[T, R]) deadLetter(s *slot[T, R], l Lease[T], task T, attempt int, errs []error) {
	dl := &DeadLetterError{Attempts: errs, Attempt: attempt}
	p.deadLettered.Add(1)
	p.event(Event{Kind: EventDeadLettered, Pool: p.name, Worker: s.name, Task: task, Attempt: attempt, Err: dl})
	if p.cfg.logger != nil {
		p.cfg.logger.Warn("task dead-lettered", "pool", p.name, "worker", s.name, "attempt", attempt, "error", safeMessage(dl))
	}
	if p.dead != nil {
		contain(func() { p.dead(task, dl) })
	}
	if err := s.settleLease(func() error { return l.DeadLetter(p.ackCtx(), dl) }); err != nil {
		p.sourceError(s, "dead-letter", err)
	}
}

// delay returns the retry backoff's delay after attempt failed attempts.
func (p *Pool[T, R]) delay(attempt int) (d time.Duration) {
	contain(func() { d = p.cfg.backoff.Delay(attempt) })
	return max(d, 0)
}

// sourceError reports a source's failure to be told how a task ended.
func (p *Pool[T, R]) sourceError(s *slot[T, R], op string, err error) {
	worker := ""
	if s != nil {
		worker = s.name
	}
	err = fmt.Errorf("pool %q: %s: %w", p.name, op, err)
	p.event(Event{Kind: EventSourceError, Pool: p.name, Worker: worker, Err: err})
	if p.cfg.logger != nil {
		p.cfg.logger.Error("task source failed", "pool", p.name, "worker", worker, "error", safeMessage(err))
	}
}

// event calls the event handlers with e. Callers on the path of every task
// check p.seen first, so that an Event is not even built without handlers.
func (p *Pool[T, R]) event(e Event) {
	for _, h := range p.cfg.events {
		contain(func() { h(e) })
	}
}

// contain runs f, user code, on a goroutine of its own and waits for it: a
// panic or runtime.Goexit there must not take a worker (and the task it
// settles), the manager or a timer's goroutine down with it.
func contain(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = recover() }()
		f()
	}()
	<-done
}

// markID is the value a mark's address prints as in a traceback.
func markID(m *marker) uintptr { return uintptr(unsafe.Pointer(m)) }
