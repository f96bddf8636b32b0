package arbor

import (
	"time"
)

// shutdown makes the supervisor stop: no start happens any more, and every
// live child is stopped, one at a time in reverse start order.
func (s *Supervisor) shutdown(reason error) {
	l := &s.loop
	if l.shutting {
		return
	}
	l.shutting, l.reason = true, reason
	l.notifier.stopping()
	s.emit(EventSupervisorStopping, nil, reason)
	// Pending starts: delayed restarts, group restarts waiting for their
	// delay, queued starts and queued jobs.
	s.dropPendingStarts()
	clear(l.delayed)
	l.delayed = l.delayed[:0]
	clear(l.jobs)
	l.jobs = l.jobs[:0]
	for _, x := range l.queue {
		s.setPhase(x, phIdle)
	}
	clear(l.queue)
	l.queue, l.waiting = l.queue[:0], nil
	var stops []stopRef
	for x := s.tail; x != nil; x = x.prev {
		x.pendingStarts, x.restartNext = 0, false
		if x.cold != nil {
			x.cold.nextStart = time.Time{}
		}
		if x.then == thenStart {
			x.then = thenSettle
		}
		switch {
		case x.ph.live():
			x.claimed = true
			stops = append(stops, stopRef{c: x, cp: x.cp, gen: x.gen})
		case x.ph != phIdle:
			s.setPhase(x, phIdle)
		}
	}
	l.jobs = append(l.jobs, &job{stops: stops, slot: -1})
	if d := s.cfg.shutdownDeadline; d > 0 {
		l.giveUp = &job{slot: -1}
		s.deadline(entry{due: time.Now().Add(d), j: l.giveUp}, waitStop)
	}
}

// giveUpStopping ends a shutdown that reached its deadline
// (WithShutdownDeadline): every child still running is cancelled and
// declared stuck at once, and Serve returns.
func (s *Supervisor) giveUpStopping() {
	l := &s.loop
	clear(l.jobs)
	l.jobs, l.cur = l.jobs[:0], nil
	for c := s.tail; c != nil; c = c.prev {
		if c.ph == phStarting || c.ph == phRunning || c.ph == phStopping {
			s.cancelCopy(c, nil)
			s.unschedule(c)
			s.declareStuck(c)
		}
	}
}

// beginStop stops c for the job in progress, which waits for it.
func (s *Supervisor) beginStop(c *child) {
	s.cancelCopy(c, nil)
	s.loop.cur = c
}

// cancelCopy cancels c's live copy: as a stop when cause is nil, or as a
// failure with cause (a missed start timeout or heartbeat). Then it waits
// for the copy up to c's shutdown timeout. A stop decided after the
// cancellation as a failure turns the copy's return into a stop.
func (s *Supervisor) cancelCopy(c *child, cause error) {
	if cause == nil {
		c.claimed = true // its return is a stop; hung, if set, stays its stuck error's cause
		if s.loop.waiting == c {
			s.loop.waiting = nil // later starts go on without it
		}
	}
	if c.ph != phStarting && c.ph != phRunning {
		return // cancelled already: its shutdown timeout runs
	}
	if cause != nil {
		c.coldRec().hung = cause // the starts waiting for it wait until it returns or is stuck
	}
	c.cp.cancel(cause)
	s.unschedule(c) // its start timeout or heartbeat
	s.setPhase(c, phStopping)
	if c.timeout > 0 {
		s.deadline(entry{due: time.Now().Add(c.timeout), c: c}, waitStop)
	}
}

// cancelAsFailed cancels c as failed with cause: it missed its start timeout or its
// heartbeat. Its failure is handled when it returns.
func (s *Supervisor) cancelAsFailed(c *child, cause error) {
	s.cancelCopy(c, cause)
	s.emit(EventChildHung, c, cause)
}

// declareStuck records that c's copy did not return within its shutdown
// timeout. Its stack is found when first asked for (see StuckError.Stack),
// so that declaring many children stuck costs no dump of all goroutines.
func (s *Supervisor) declareStuck(c *child) {
	x := c.coldRec()
	x.stuck = &StuckError{
		Supervisor: s.loop.path,
		Child:      c.name,
		Err:        x.hung,
		stack:      watchStack(c.cp),
	}
	c.count.Stuck++
	if s.loop.cur == c {
		s.loop.cur = nil
	}
	if s.loop.waiting == c {
		s.loop.waiting = nil // later starts go on without it
	}
	s.setPhase(c, phStuck) // answers the calls waiting for it
	s.emit(EventChildStuck, c, x.stuck)
}
