package arbor

import (
	"slices"
	"time"
)

// copyReturned handles the return of copy cp: the one place that decides what a
// copy's return means.
//
//   - A copy the supervisor stopped (claimed), or any copy once the
//     supervisor shuts down or does not serve, has stopped: what follows is
//     the stop's intent (then).
//   - A copy the supervisor cancelled as failed (a missed start timeout or
//     heartbeat) has failed with that cause, whatever it returned.
//   - Any other copy exited by itself: the restart rules decide.
func (s *Supervisor) copyReturned(cp *copyCtx, err error, class errClass) {
	c := cp.c
	if c.cp != cp {
		return // cannot happen: each copy exits once, and c.cp is the live one
	}
	c.cp = nil
	cp.cancel(nil)
	s.unschedule(c) // its start timeout, heartbeat or stop timeout
	if s.serving {
		if s.loop.waiting == c {
			s.loop.waiting = nil
		}
		if s.loop.cur == c {
			s.loop.cur = nil
		}
	}
	var hung error
	if x := c.cold; x != nil {
		hung, x.hung = x.hung, nil
	}
	if c.ph == phStuck {
		c.cold.stuck.stack.forget() // its stack can no longer be found
		s.emit(EventChildUnstuck, c, err)
	}
	switch {
	case c.claimed || !s.active():
		if c.ph != phStopping && c.ph != phStuck && err != nil {
			// It failed by itself before the stop reached it.
			c.lastErr = err
			c.count.Failures++
			s.emit(EventChildFailed, c, err)
		} else {
			s.emit(EventChildStopped, c, nil)
		}
		if sub := c.sub; sub != nil && class.stuck {
			c.coldRec().below = err // its children that outlived it, for the callers waiting
			if (c.then == thenRemove || c.restart == Temporary) && s.serving && !slices.Contains(s.loop.orphans, sub) {
				s.loop.orphans = append(s.loop.orphans, sub) // Health and Serve's result still name them
			}
		}
		s.afterStop(c)
	case hung != nil:
		s.decideRestart(c, hung, errClass{})
	default:
		s.decideRestart(c, err, class)
	}
}

// afterStop settles a child whose stopped copy returned, by the stop's
// intent.
func (s *Supervisor) afterStop(c *child) {
	then := c.then
	c.then, c.claimed = thenSettle, false
	switch {
	case then == thenRemove || c.restart == Temporary:
		s.delete(c)
	case then == thenStart && s.active():
		s.start(c)
	case c.pendingStarts > 0 && s.active():
		// A group restart will start it: one queued after any Terminate,
		// which dropped the pending starts from before.
		s.setPhase(c, phGrouped)
	default:
		s.setPhase(c, phIdle)
	}
	if c.cold != nil {
		c.cold.below = nil
	}
}

// decideRestart applies the restart decision, backoff and strategy to a child that
// returned by itself with err.
func (s *Supervisor) decideRestart(c *child, err error, class errClass) {
	if err != nil {
		c.lastErr = err
		c.count.Failures++
		s.emit(EventChildFailed, c, err)
	} else {
		s.emit(EventChildExited, c, nil)
	}
	if class.terminateTree {
		s.retire(c)
		s.shutdown(&treeError{path: s.loop.path, child: c.name, err: err})
		return
	}
	if !s.restarts(c, err, class) {
		s.retire(c)
		if c.significant {
			s.significantExit()
		}
		return
	}
	now := time.Now()
	x := c.coldRec()
	if reset := c.resetAfter; reset > 0 && now.UnixNano()-c.started >= int64(reset) {
		x.failures = 0
	}
	x.failures++
	x.exitErr = err
	delay := s.delayFor(c)
	at := now.Add(delay)
	if delay > 0 {
		s.emitDelay(EventRestartScheduled, c, err, delay)
	}
	switch {
	case s.cfg.strategy != OneForOne:
		s.setPhase(c, phIdle)
		s.groupRestart(c, at)
	case delay == 0:
		s.restartOne(c, now) // from its live phase: no State change to stamp
	default:
		x.nextStart = at
		s.setPhase(c, phDelayed)
		s.deadline(entry{due: at, c: c}, waitRestart)
	}
}

// restarts decides whether c, which exited by itself with err, is restarted.
func (s *Supervisor) restarts(c *child, err error, class errClass) bool {
	if c.restart == Temporary || class.doNotRestart {
		return false
	}
	if c.restartIf == nil {
		return c.restart.restarts(err != nil)
	}
	return s.ask(c, err)
}

// ask calls c's restart predicate through guard. A predicate that panics
// or calls runtime.Goexit is logged and the child's restart policy decides
// instead.
func (s *Supervisor) ask(c *child, err error) bool {
	var restart bool
	if perr := guard(func() { restart = c.restartIf(err) }); perr != nil {
		s.emit(EventPolicyPanicked, c, perr)
		return c.restart.restarts(err != nil)
	}
	return restart
}

// guard runs f, a policy of the user's, on a goroutine of its own and waits
// for it, so that neither a panic nor runtime.Goexit in f can end the
// supervisor's goroutine. It returns a *PanicError for a panic (its Value
// is ErrGoexit for runtime.Goexit), nil if f returned.
func guard(f func()) (err *PanicError) {
	done := make(chan struct{})
	go func() {
		returned := false
		defer func() {
			if !returned {
				if v := recover(); v != nil {
					err = newPanicError(v)
				} else {
					err = &PanicError{Value: ErrGoexit}
				}
			}
			close(done)
		}()
		f()
		returned = true
	}()
	<-done
	return err
}

// retire records that c exited by itself and will not be restarted.
func (s *Supervisor) retire(c *child) {
	if c.restart == Temporary {
		s.delete(c)
	} else {
		s.setPhase(c, phIdle)
	}
}

// restartOne restarts c now, within the restart intensity.
func (s *Supervisor) restartOne(c *child, now time.Time) {
	if !s.loop.window.allow(now.Sub(s.loop.started)) {
		s.escalate(c)
		return
	}
	c.restartNext = true
	s.start(c)
}

// orphanLeftovers returns the stuck children of the nested supervisors
// removed in this Serve while children of theirs were stuck, unless a
// supervisor has a parent again, which reports them.
func (s *Supervisor) orphanLeftovers() []error {
	var errs []error
	for _, sub := range s.loop.orphans {
		treeMu.Lock()
		owned := sub.owner != nil
		treeMu.Unlock()
		if !owned {
			errs = append(errs, sub.leftovers()...)
		}
	}
	return errs
}

// escalate shuts the supervisor down because c's restart would exceed the
// restart intensity.
func (s *Supervisor) escalate(c *child) {
	var last error
	if c.cold != nil {
		last = c.cold.exitErr
	}
	if c.cp == nil && c.ph != phRemoved { // no copy runs: it is not restarted
		s.setPhase(c, phIdle)
	}
	reason := &IntensityError{
		Supervisor:  s.loop.path,
		Child:       c.name,
		MaxRestarts: s.cfg.maxRestarts,
		Period:      s.cfg.period,
		Err:         last,
	}
	s.emit(EventIntensityExceeded, c, reason)
	s.shutdown(reason)
}

// significantExit applies automatic shutdown after a significant child exited
// without being restarted.
func (s *Supervisor) significantExit() {
	switch s.cfg.autoShutdown {
	case AnySignificant:
		s.shutdown(nil)
	case AllSignificant:
		for x := s.head; x != nil; x = x.next {
			if x.significant && x.ph != phIdle {
				return
			}
		}
		s.shutdown(nil)
	}
}
