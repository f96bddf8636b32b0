package pool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arborgo/arbor"
)

// slotKey is the context key of the slot a worker's context belongs to.
type slotKey struct{}

// marker is what a running attempt's goroutine shows in a dump of all
// goroutines: runAttempt's first argument, the address of its slot's mark.
type marker struct{ _ byte }

// runAttemptName is runAttempt's name in tracebacks.
const runAttemptName = "github.com/arborgo/arbor/pool.runAttempt"

// runAttempt runs one attempt; its frame marks the goroutine (see
// internal/gstack).
//
//go:noinline
func runAttempt(m *marker, run func()) {
	run()
	runtime.KeepAlive(m)
}

// A slot is one worker of a pool: a child of the pool's supervisor that
// leases tasks from the source and runs them, one at a time, on its own
// goroutine. A slot whose attempt is abandoned is replaced by a new slot;
// the old one ends when the attempt returns.
type slot[T, R any] struct {
	p    *Pool[T, R]
	name string
	mark marker
	wait waiter[T, R] // its place in the in-memory queue while idle
	run  func()       // s.attempt, bound once

	retiring  atomic.Bool  // leave after the current attempt
	recycle   atomic.Bool  // Recycle was called: leave after the current attempt
	abandoned atomic.Bool  // its attempt was abandoned: leave once it returns
	idleSince atomic.Int64 // when it began to wait for a task (Unix nanoseconds), or 0
	exited    atomic.Bool  // left for good; the manager deletes it

	mu            sync.Mutex // the current attempt, shared with the watchdog and the manager
	running       bool
	cancel        context.CancelCauseFunc // cancels the slot's context (and so the attempt's)
	attemptCancel context.CancelCauseFunc // cancels the attempt's context, when watched
	stopLease     context.CancelFunc
	reported      bool // its abandonment was reported; guarded by the pool's mu
	extending     bool // an Extend is in flight
	start         time.Time
	cancelledAt   time.Time
	lastExtend    time.Time
	lastBeat      atomic.Int64 // Unix nanoseconds
	timer         *time.Timer  // the watchdog, when the pool has limits

	token      *attemptToken // the running attempt's, under a watchdog
	lmu        sync.Mutex    // held while the lease's methods run: one at a time
	leaseDone  bool          // the lease was settled: no more Extend
	attemptNo  int           // the running (or last) attempt's number
	curAttempt int           // the same, for other goroutines: guarded by mu
	noRetry    bool          // its source gave no valid attempt number

	// The attempt, written and read by the slot's goroutine.
	h     Handler[T, R]
	actx  context.Context
	lease Lease[T]
	task  T
	res   R
	err   error
	ended bool // the handler returned (no panic, no Goexit)
	tasks int
}

func newSlot[T, R any](p *Pool[T, R], name string) *slot[T, R] {
	s := &slot[T, R]{p: p, name: name}
	s.wait.ch = make(chan *record[T, R], 1)
	s.run = s.attempt
	if p.cfg.watched() {
		s.timer = time.AfterFunc(time.Hour, s.watch)
		s.timer.Stop()
	}
	return s
}

// Serve is the worker: set up, then lease and run tasks until told to
// leave. A panic of the handler crashes it (after the task is settled), so
// that its supervisor restarts it under its restart intensity.
func (s *slot[T, R]) Serve(ctx context.Context) (err error) {
	if s.exited.Load() {
		return nil // restarted by the supervisor after it left: leave again
	}
	defer func() {
		if s.abandoned.Load() {
			// An abandoned attempt that panicked late was settled and
			// reported; its slot is replaced, not restarted.
			if r := recover(); r != nil {
				err = nil
				s.leave()
			}
		}
	}()
	err = s.serve(ctx)
	if err == nil {
		s.leave()
	}
	return err
}

func (s *slot[T, R]) serve(ctx context.Context) error {
	p := s.p
	ctx, cancel := context.WithCancelCause(context.WithValue(ctx, slotKey{}, s))
	defer cancel(nil)
	lctx, stopLease := context.WithCancel(ctx)
	defer stopLease()
	s.mu.Lock()
	s.cancel, s.stopLease = cancel, stopLease
	s.mu.Unlock()
	if s.leaving() || p.stopping() {
		return nil
	}
	h := p.handler
	if p.setup != nil {
		var release func()
		var err error
		h, release, err = p.setup(ctx)
		if err != nil {
			return fmt.Errorf("pool %q: worker setup: %w", p.name, err)
		}
		if release != nil {
			defer release()
		}
		if h == nil {
			return fmt.Errorf("pool %q: worker setup returned a nil handler", p.name)
		}
		arbor.Ready(ctx)
	}
	s.h = h
	s.tasks = 0
	for !s.leaving() {
		since := int64(1) // idle; when from matters only to an autoscaling pool
		if p.scales.Load() {
			since = time.Now().UnixNano()
		}
		s.idleSince.Store(since)
		l, err := s.next(lctx)
		s.idleSince.Store(0)
		if err == nil && l == nil {
			err = errors.New("Lease returned neither a lease nor an error")
		}
		if err != nil {
			if lctx.Err() != nil || err == errQueueClosed {
				return nil
			}
			err = fmt.Errorf("pool %q: lease: %w", p.name, err)
			p.event(Event{Kind: EventSourceError, Pool: p.name, Worker: s.name, Err: err})
			return err
		}
		s.handle(ctx, l)
		if s.abandoned.Load() {
			return nil
		}
		s.tasks++
		if p.cfg.maxTasks > 0 && s.tasks >= p.cfg.maxTasks {
			s.recycle.Store(true)
		}
	}
	return nil
}

// next leases a task, counted as idle meanwhile.
func (s *slot[T, R]) next(ctx context.Context) (Lease[T], error) {
	p := s.p
	p.idle.Add(1)
	idle := true
	defer func() { // also when Lease panics
		if idle {
			p.idle.Add(-1)
		}
	}()
	var l Lease[T]
	var err error
	if p.q != nil {
		var r *record[T, R]
		if r, err = p.q.lease(ctx, &s.wait); err == nil {
			l = r
		}
	} else {
		l, err = p.src.Lease(ctx)
	}
	idle = false
	if p.idle.Add(-1) == 0 && err == nil && p.q == nil && p.scales.Load() {
		p.notify() // no worker waits on the source: demand for one more
	}
	return l, err
}

// leaving reports whether the slot should leave instead of leasing again.
func (s *slot[T, R]) leaving() bool {
	return s.retiring.Load() || s.recycle.Load() || s.abandoned.Load() || s.exited.Load()
}

// leave marks the slot as gone for good and tells the manager, which
// deletes it from the pool's supervisor.
func (s *slot[T, R]) leave() {
	s.exited.Store(true)
	s.p.notify()
}

// handle runs one delivery: an attempt, then its settlement.
func (s *slot[T, R]) handle(ctx context.Context, l Lease[T]) {
	p := s.p
	task, err := s.open(l)
	if err != nil {
		p.deadLetter(s, l, task, s.attemptNo, []error{err})
		return
	}
	if p.stopping() { // leased as the pool began to shut down: not run
		p.notRun(s, l)
		return
	}
	var zero R
	s.task, s.actx = task, ctx
	s.res, s.err, s.ended = zero, nil, false
	var cancel context.CancelCauseFunc
	var tok *attemptToken
	if p.cfg.watched() {
		// The attempt's own context, which tells its heartbeats from those
		// of other attempts' goroutines.
		tok = &attemptToken{s: s}
		s.actx, cancel = context.WithCancelCause(context.WithValue(ctx, attemptKey{}, tok))
		defer cancel(nil)
	}
	s.begin(cancel, tok)
	p.busy.Add(1)
	if p.seen {
		p.event(Event{Kind: EventStarted, Pool: p.name, Worker: s.name, Task: task, Attempt: s.attemptNo})
	}
	defer func() {
		// Runs on a panic or runtime.Goexit too: the task is settled
		// before the worker crashes.
		late := s.end()
		if !late {
			p.busy.Add(-1) // an abandoned attempt left the count when abandoned
		}
		if s.ended {
			p.settle(s, l, late, s.res, s.err)
			return
		}
		r := recover()
		if r == nil {
			p.settle(s, l, late, zero, arbor.ErrGoexit)
			return
		}
		p.settle(s, l, late, zero, &arbor.PanicError{Value: r})
		panic(r)
	}()
	runAttempt(&s.mark, s.run)
}

// attempt calls the handler.
func (s *slot[T, R]) attempt() {
	s.res, s.err = s.h(s.actx, s.task)
	s.ended = true
}

// begin records the start of an attempt, whose context cancel cancels (nil
// when the pool watches no limit) and carries tok, and arms the watchdog.
func (s *slot[T, R]) begin(cancel context.CancelCauseFunc, tok *attemptToken) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running, s.attemptCancel, s.token = true, cancel, tok
	s.curAttempt = s.attemptNo
	s.cancelledAt = time.Time{}
	if cancel == nil {
		return
	}
	now := time.Now()
	s.start, s.lastExtend = now, now
	s.lastBeat.Store(now.UnixNano())
	s.arm(now)
}

// end stops watching the attempt and reports whether it was abandoned.
func (s *slot[T, R]) end() (late bool) {
	s.mu.Lock()
	s.running, s.attemptCancel, s.token = false, nil, nil
	late = s.abandoned.Load()
	s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.p.stopping() {
		s.p.notify() // the shutdown waits for running attempts
	}
	return late
}

// cancelAttempt cancels the running attempt with cause. Called with mu held.
func (s *slot[T, R]) cancelAttempt(now time.Time, cause error) {
	if !s.cancelledAt.IsZero() {
		return
	}
	s.cancelledAt = now
	if s.attemptCancel != nil {
		s.attemptCancel(cause)
	} else if s.cancel != nil {
		s.cancel(cause) // no watchdog: the attempt runs on the slot's context
	}
}

// abandonAt is when the running attempt is abandoned: at its hard limit, or
// the hard limit's grace after it was cancelled for another reason. Called
// with mu held, the pool having a hard limit.
func (s *slot[T, R]) abandonAt() time.Time {
	cfg := &s.p.cfg
	at := s.start.Add(cfg.hard)
	if !s.cancelledAt.IsZero() {
		if g := s.cancelledAt.Add(cfg.hard - cfg.soft); g.Before(at) {
			at = g
		}
	}
	return at
}

// arm sets the watchdog for the running attempt's next deadline. Called
// with mu held.
func (s *slot[T, R]) arm(now time.Time) {
	if s.timer == nil {
		return
	}
	cfg := &s.p.cfg
	var next time.Time
	earliest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if s.cancelledAt.IsZero() && !s.abandoned.Load() {
		if cfg.soft > 0 {
			earliest(s.start.Add(cfg.soft))
		}
		if cfg.beat > 0 {
			earliest(time.Unix(0, s.lastBeat.Load()).Add(cfg.beat))
		}
	}
	if cfg.hard > 0 && !s.abandoned.Load() {
		earliest(s.abandonAt())
	}
	if cfg.extend > 0 {
		earliest(s.lastExtend.Add(cfg.extend))
	}
	if !next.IsZero() {
		s.timer.Reset(next.Sub(now))
	}
}

// watch is the watchdog of the running attempt: it cancels it at its soft
// limit or when it misses a heartbeat, abandons it at its hard limit, and
// extends its lease. It runs on the timer's goroutine.
func (s *slot[T, R]) watch() {
	p := s.p
	cfg := &p.cfg
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return
	}
	now := time.Now()
	if s.cancelledAt.IsZero() && !s.abandoned.Load() {
		switch {
		case cfg.soft > 0 && !now.Before(s.start.Add(cfg.soft)):
			s.cancelAttempt(now, ErrSoftTimeout)
		case cfg.beat > 0 && now.Sub(time.Unix(0, s.lastBeat.Load())) >= cfg.beat:
			s.cancelAttempt(now, arbor.ErrHung)
		}
	}
	abandon := false
	if cfg.hard > 0 && !s.abandoned.Load() && !now.Before(s.abandonAt()) {
		s.abandoned.Store(true)
		abandon = true
		p.busy.Add(-1)
		if s.attemptCancel != nil {
			s.attemptCancel(ErrAbandoned) // no effect if it was cancelled before
		}
	}
	var extend Lease[T]
	if cfg.extend > 0 && !s.extending && !now.Before(s.lastExtend.Add(cfg.extend)) {
		extend, s.lastExtend, s.extending = s.lease, now, true // one Extend in flight at a time
	}
	cancelled := !s.cancelledAt.IsZero()
	s.arm(now)
	s.mu.Unlock()
	if abandon || (cancelled && p.stopping()) {
		p.notify() // the manager counts it, or the shutdown waits no more
	}
	if extend != nil {
		s.lmu.Lock()
		var err error
		if !s.leaseDone && s.lease == extend {
			contain(func() { err = extend.Extend(p.ackCtx()) })
		}
		s.lmu.Unlock()
		s.mu.Lock()
		s.extending = false
		s.mu.Unlock()
		if err != nil {
			p.sourceError(s, "extend", err)
		}
	}
}

// shut is the pool's shutdown reaching the slot: it leases no more, and its
// running attempt is cancelled now with the cause ErrClosed, unless the pool
// has a soft limit, which it then runs to.
func (s *slot[T, R]) shut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopLease != nil {
		s.stopLease()
	}
	if s.running && s.p.cfg.soft == 0 {
		s.cancelAttempt(time.Now(), ErrClosed)
		s.arm(time.Now())
	}
}

// draining reports whether the shutdown must still wait for the slot: it
// runs an attempt not yet cancelled, or, under a hard limit, one not yet
// abandoned (which the watchdog soon does). Without a hard limit a
// cancelled attempt is left to the supervisor's shutdown timeout.
func (s *slot[T, R]) draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running || s.abandoned.Load() {
		return false
	}
	return s.cancelledAt.IsZero() || s.p.cfg.hard > 0
}

// heldLease returns the lease of the running attempt, or nil.
func (s *slot[T, R]) heldLease() Lease[T] {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	return s.lease
}

// attemptKey is the context key of an attempt's token.
type attemptKey struct{}

// An attemptToken identifies one attempt run under a watchdog.
type attemptToken struct {
	s interface{ beat(*attemptToken) }
}

// beat records a heartbeat of the attempt tok, if it still runs.
func (s *slot[T, R]) beat(tok *attemptToken) {
	s.mu.Lock()
	if s.running && s.token == tok {
		s.lastBeat.Store(time.Now().UnixNano())
	}
	s.mu.Unlock()
}

// askRecycle makes the slot leave after its running attempt: the attempt
// tok, or, without a watchdog (tok nil), whichever runs.
func (s *slot[T, R]) askRecycle(tok *attemptToken) {
	s.mu.Lock()
	if s.running && (tok == nil || s.token == tok) {
		s.recycle.Store(true)
	}
	s.mu.Unlock()
}

// attemptNumber returns the number of the running attempt, tok's if not
// nil, or 0.
func (s *slot[T, R]) attemptNumber(tok *attemptToken) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running || (tok != nil && tok != s.token) {
		return 0
	}
	return s.curAttempt
}

// open reads a new lease's attempt number and task. A delivery beyond the
// maximum number of attempts (a source whose earlier attempts died with
// their process) or a task that cannot be read is an error: it is
// dead-lettered without an attempt.
func (s *slot[T, R]) open(l Lease[T]) (task T, err error) {
	s.lmu.Lock()
	defer s.lmu.Unlock() // the lease's methods are the user's code: they may panic
	s.mu.Lock()
	s.lease = l
	s.mu.Unlock()
	s.leaseDone = false
	s.attemptNo = l.Attempt()
	if s.attemptNo < 1 {
		s.p.sourceError(s, "attempt", fmt.Errorf("Lease.Attempt returned %d: the task gets no retry", s.attemptNo))
		s.attemptNo = max(s.attemptNo, 1)
		s.noRetry = true
	} else {
		s.noRetry = false
	}
	if s.attemptNo > s.p.cfg.attempts {
		var zero T
		return zero, fmt.Errorf("pool %q: delivery %d of a task that has %d attempts: an earlier attempt never settled (its process died?)",
			s.p.name, s.attemptNo, s.p.cfg.attempts)
	}
	task, err = l.Task()
	if err != nil {
		err = fmt.Errorf("pool %q: task cannot be read: %w", s.p.name, err)
	}
	return task, err
}

// settleLease runs f, the lease's last method call (Ack, Nack or
// DeadLetter), holding lmu: the watchdog's Extend never overlaps it, nor
// comes after it. Only the lease's own methods run under lmu; the pool's
// events and callbacks around them do not.
func (s *slot[T, R]) settleLease(f func() error) error {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	s.leaseDone = true
	return f()
}

// retire makes the slot leave: at once if idle, else after its attempt.
func (s *slot[T, R]) retire() {
	s.retiring.Store(true)
	s.mu.Lock()
	if s.stopLease != nil {
		s.stopLease()
	}
	s.mu.Unlock()
}

// live reports whether the slot counts as one of the pool's workers.
func (s *slot[T, R]) live() bool {
	return !s.exited.Load() && !s.abandoned.Load() && !s.retiring.Load() && !s.recycle.Load()
}
