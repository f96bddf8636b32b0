package arbor

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// loop is the state of one Serve call, owned by its goroutine.
type loop struct {
	path     string          // the supervisor's path in its tree
	base     context.Context // the children's parent context: Serve's values, not its cancellation
	parent   *copyCtx        // the copy of a parent's child that this Serve is, or nil
	started  time.Time
	spare    []message // the inbox's second buffer
	shutting bool
	reason   error // why the supervisor shuts down, nil for a clean stop
	window   window

	jobs    []*job // queued stops and group restarts; jobs[0] runs
	cur     *child // the child jobs[0] waits for
	delayed []*job // group restarts waiting for their trigger's backoff delay
	giveUp  *job   // the shutdown deadline's entry in the heap, or nil

	heap       deadlines // timed waits, earliest first, served by timer
	timer      *time.Timer
	timerAt    time.Time
	timerArmed bool

	queue   []*child // starts waiting for an earlier child's readiness, in start order
	waiting *child   // the started child whose readiness the queue waits for

	orphans   []*Supervisor // nested supervisors deleted while children of theirs were stuck
	readySent bool          // this Serve has signalled its own readiness
	notifier  *notifier     // systemd notifications, for a root with WithSystemd
	em        *emitter      // where events go
	readyWait []*request    // WaitReady calls; kept across Serves
}

// Serve starts the children in the order they were added and supervises them
// until ctx is done, automatic shutdown fires or the restart intensity is
// exceeded; then it stops every child in reverse start order and returns.
//
// Serve returns nil after a shutdown caused by ctx or by automatic shutdown,
// an *IntensityError (matching ErrIntensityExceeded and reaching the last
// failure) when the intensity was exceeded, and joins a *StuckError for each
// child still stuck when it returns, nested supervisors' included. It
// returns an error matching ErrInvalid at once if an option given to New was
// bad (also when ctx is already done: serving a done context checks them),
// ErrAlreadyServing if another Serve of s is running, and nil at once,
// starting nothing, if ctx is already done.
func (s *Supervisor) Serve(ctx context.Context) error {
	if s.byName == nil {
		return errZero
	}
	if err := s.cfg.err; err != nil {
		return within(fmt.Sprintf("supervisor %q", s.name), err)
	}
	if ctx.Err() != nil {
		return nil
	}
	em := s.newEmitter(ctx) // reads ctx's values, the caller's code: no lock held
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrAlreadyServing, s.name)
	}
	if err := s.firstRejected(); err != nil {
		s.mu.Unlock()
		return within(fmt.Sprintf("supervisor %q", s.name), err)
	}
	s.drain() // exits that came while no loop ran
	s.serving = true
	s.serves++
	s.setUp(ctx, em)
	s.mu.Unlock()
	s.loop.notifier = s.startNotifier(ctx)

	l := &s.loop
	s.emit(EventSupervisorStarted, nil, nil)
	s.begin()
	done := ctx.Done()
	for !l.shutting || l.cur != nil || len(l.jobs) > 0 {
		if !l.shutting && s.ready() {
			s.signalReady()
		}
		var timerC <-chan time.Time // nil unless armed: no timer lock on every wake-up
		if l.timerArmed {
			timerC = l.timer.C
		}
		select {
		case <-s.wake:
			s.drain()
		case <-done:
			done = nil
			s.shutdown(nil)
		case <-timerC:
			l.timerArmed = false
			s.due()
		}
		s.advance()
	}
	return s.end()
}

// setUp prepares the loop of a new Serve. Called with mu held, before the
// loop owns the children.
func (s *Supervisor) setUp(ctx context.Context, em *emitter) {
	l := &s.loop
	timer := l.timer
	if timer == nil {
		timer = time.NewTimer(time.Hour)
	}
	timer.Stop()
	*l = loop{
		parent:    em.parent, // read from ctx before the lock: ctx's methods are the caller's code
		started:   time.Now(),
		spare:     l.spare,
		timer:     timer,
		heap:      l.heap[:0],
		window:    window{max: s.cfg.maxRestarts, period: s.cfg.period},
		queue:     l.queue[:0],
		readyWait: l.readyWait,
	}
	l.em, l.path = em, em.path
	l.base = hideCopy{Context: context.WithoutCancel(ctx), em: em, up: l.parent}
}

// begin starts the children of a new Serve in start order. A child whose
// copy from an earlier Serve is still stuck starts when that copy returns; a
// terminated child stays Stopped.
func (s *Supervisor) begin() {
	for c := s.head; c != nil; {
		next := c.next
		c.restarts, c.lastErr = 0, nil
		if x := c.cold; x != nil { // failures and delays start afresh
			x.failures, x.exitErr, x.nextStart = 0, nil, time.Time{}
		}
		switch {
		case c.ph.live(): // a stuck copy from an earlier Serve still runs
			if !c.terminated && c.then == thenSettle {
				c.then = thenStart
			}
		case c.terminated:
		default:
			s.start(c)
		}
		c = next
	}
}

// end finishes a Serve: it works out the result, forgets temporary children,
// and hands the children back to the mutex, answering what came meanwhile.
func (s *Supervisor) end() error {
	l := &s.loop
	l.timer.Stop()
	for _, e := range l.heap {
		if e.c != nil {
			e.c.slot = -1
		}
	}
	clear(l.heap)
	l.heap = l.heap[:0]
	l.stopNotifier()
	var errs []error
	if l.reason != nil {
		errs = append(errs, l.reason)
	}
	for c := s.head; c != nil; {
		next := c.next
		c.pendingStarts, c.restartNext = 0, false
		if c.cold != nil {
			c.cold.nextStart = time.Time{}
		}
		switch {
		case c.ph.live(): // stuck: the shutdown waited for every other copy
			if se := c.stuckErr(); se != nil {
				errs = append(errs, se)
			}
			if c.then == thenStart {
				c.then = thenSettle
			}
		case c.restart == Temporary:
			s.delete(c)
		default:
			if sub := c.sub; sub != nil {
				errs = append(errs, sub.leftovers()...)
			}
		}
		c = next
	}
	errs = append(errs, s.orphanLeftovers()...)
	em := l.em
	waiters := l.readyWait
	clear(l.queue)
	*l = loop{spare: l.spare, timer: l.timer, heap: l.heap, queue: l.queue[:0], readyWait: waiters}
	var err error
	switch len(errs) {
	case 0:
	case 1:
		err = errs[0]
	default:
		err = errors.Join(errs...)
	}
	s.mu.Lock()
	s.serving = false
	s.drain() // exits and requests that came since the last drain
	s.mu.Unlock()
	em.emit(EventSupervisorStopped, nil, err, 0)
	if em.own {
		em.d.close() // the root delivers its tree's last events before it returns
	}
	return err
}

// leftovers returns the *StuckError of every child of s still stuck, and of
// the supervisors nested in s that no longer serve, while s does not serve.
func (s *Supervisor) leftovers() []error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return nil // served again: it reports its own
	}
	s.drain()
	type item struct {
		err error
		sub *Supervisor
	}
	var items []item // in start order
	for c := s.head; c != nil; c = c.next {
		if se := c.stuckErr(); se != nil {
			items = append(items, item{err: se})
		} else if sub := c.sub; sub != nil {
			items = append(items, item{sub: sub})
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, it := range items {
		if it.sub != nil {
			errs = append(errs, it.sub.leftovers()...)
		} else {
			errs = append(errs, it.err)
		}
	}
	return errs
}

// link appends c to the children.
func (s *Supervisor) link(c *child) {
	s.ords++
	c.ord = s.ords
	if c.exempt {
		s.nExempt[c.state()]++
	} else {
		s.n[c.state()]++
	}
	c.prev = s.tail
	if s.tail != nil {
		s.tail.next = c
	} else {
		s.head = c
	}
	s.tail = c
	s.byName[c.name] = c
}

// delete removes c from the children; its name is free again.
func (s *Supervisor) delete(c *child) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		s.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		s.tail = c.prev
	}
	c.prev, c.next = nil, nil
	delete(s.byName, c.name)
	s.setPhase(c, phRemoved)
	if sub := c.sub; sub != nil {
		s.release(sub)
	}
}

// childInfos describes every child, in start order.
func (s *Supervisor) childInfos() []ChildInfo {
	infos := make([]ChildInfo, 0, len(s.byName))
	for c := s.head; c != nil; c = c.next {
		infos = append(infos, c.info())
	}
	return infos
}

// firstRejected returns, of the Add calls refused as invalid while s did
// not serve, the one with the first name, or nil, and forgets them all: a
// Serve reports them once. Called with mu held.
func (s *Supervisor) firstRejected() error {
	var first string
	var err error
	for name, e := range s.rejected {
		if err == nil || name < first {
			first, err = name, e
		}
	}
	clear(s.rejected)
	return err
}
