package arbor

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Ready tells the supervisor that started the worker serving ctx, or a context
// derived from it, that the worker is up. A supervisor waiting for that signal
// (see WithReadiness) then starts its next child. Only the first call per
// copy of a child counts; Ready on a context no supervisor made, or by a child
// not asked to signal readiness, does nothing. It never blocks.
func Ready(ctx context.Context) {
	copyOf(ctx).signal()
}

// signal posts the copy's readiness to its supervisor, the first time only.
func (x *copyCtx) signal() {
	if x != nil && x.w != nil && x.w.readied.CompareAndSwap(false, true) {
		x.s.post(message{cp: x, ready: true})
	}
}

// Heartbeat tells the supervisor that started the worker serving ctx, or a
// context derived from it, that the worker is making progress (see
// WithHeartbeat). It costs an atomic store and never blocks; on a context no
// supervisor made, or by a child without a heartbeat period, it does nothing.
func Heartbeat(ctx context.Context) {
	if x := copyOf(ctx); x != nil && x.w != nil {
		x.w.beat.Store(int64(time.Since(x.w.born)))
	}
}

// WithReadiness makes the child signal readiness by calling Ready on its
// context, and makes the supervisor wait for that signal before it starts the
// next child: at every start, including restarts and group restarts (OTP's
// synchronous start, systemd's Type=notify). Until then the child is
// Starting. If startTimeout is positive and the child is not ready by then,
// the start counts as a failure: the child's context is cancelled with a cause
// matching ErrStartTimeout, and it is handled as a child that failed with that
// error once it returns (or declared stuck if it does not return within its
// shutdown timeout). Zero waits without limit; negative values are rejected.
func WithReadiness(startTimeout time.Duration) ChildOption {
	return childOption(func(c *childSpec) {
		if startTimeout < 0 {
			c.fail(invalidf("negative start timeout %v", startTimeout))
			return
		}
		c.readiness, c.startTimeout = true, startTimeout
	})
}

// WithHeartbeat watches the child with a heartbeat watchdog (systemd's
// WatchdogSec): the worker must call Heartbeat on its context at least once
// per period. The watch starts when the child is ready. A child that sends no
// heartbeat for a whole period is hung: its context is cancelled with a cause
// matching ErrHung, the supervisor logs it, and it is handled as a child that
// failed with that error once it returns, by its restart policy, strategy,
// backoff and the restart intensity. If it does not return within its
// shutdown timeout it is declared stuck. The period must be positive; a
// *Supervisor child cannot take a heartbeat.
func WithHeartbeat(period time.Duration) ChildOption {
	return childOption(func(c *childSpec) {
		if period <= 0 {
			c.fail(invalidf("heartbeat period %v is not positive", period))
			return
		}
		c.heartbeat = period
	})
}

// ready reports whether every child is ready: none is starting, restarting,
// stopping or stuck, children exempt from readiness aside.
func (s *Supervisor) ready() bool {
	n := &s.n
	return n[Starting]+n[Restarting]+n[Stopping]+n[Stuck] == 0
}

// signalReady tells the supervisor's parent, or systemd for a root, that all
// its children are ready, once per Serve, and answers WaitReady calls.
func (s *Supervisor) signalReady() {
	l := &s.loop
	if !l.readySent {
		l.readySent = true
		l.parent.signal()
		l.notifier.ready()
	}
	for i, w := range l.readyWait {
		w.reply <- answer{}
		l.readyWait[i] = nil
	}
	l.readyWait = l.readyWait[:0]
}

// WaitReady waits until s serves and is ready, that is every child is
// ready (none starting, restarting, stopping or stuck, see Health), or ctx
// is done, and returns context.Cause(ctx) then. It may be called before Serve: it
// then waits for Serve. A supervisor that shuts down is not ready.
func (s *Supervisor) WaitReady(ctx context.Context) error {
	_, err := s.call(ctx, &request{kind: reqReady, ctx: ctx})
	return err
}

// addReadyWaiter answers a WaitReady call now if s is ready, or keeps it for
// when it is, dropping calls that gave up.
func (s *Supervisor) addReadyWaiter(req *request) {
	l := &s.loop
	if s.active() && s.ready() {
		req.reply <- answer{}
		return
	}
	kept := l.readyWait[:0]
	for _, w := range l.readyWait {
		if w.ctx.Err() == nil {
			kept = append(kept, w)
		}
	}
	clear(l.readyWait[len(kept):])
	l.readyWait = append(kept, req)
}

// enqueue makes c wait in the start queue, in start order.
func (s *Supervisor) enqueue(c *child) {
	l := &s.loop
	s.setPhase(c, phQueued)
	i, _ := slices.BinarySearchFunc(l.queue, c.ord, func(x *child, ord uint64) int {
		switch {
		case x.ord < ord:
			return -1
		case x.ord > ord:
			return 1
		}
		return 0
	})
	l.queue = slices.Insert(l.queue, i, c)
}

// dequeue takes c out of the start queue. The caller sets its phase.
func (s *Supervisor) dequeue(c *child) {
	c.restartNext = false
	if i := slices.Index(s.loop.queue, c); i >= 0 {
		s.loop.queue = slices.Delete(s.loop.queue, i, i+1)
	}
}

// cancelStart cancels c's pending start, if any: a delayed restart or a
// queued start. A group restart that would start c skips it since c.gen
// changed.
func (s *Supervisor) cancelStart(c *child) {
	switch c.ph {
	case phDelayed:
		s.unschedule(c)
	case phQueued:
		s.dequeue(c)
	}
	if c.cold != nil {
		c.cold.nextStart = time.Time{}
	}
}

// startQueued starts queued children in start order until one has to be
// waited for.
func (s *Supervisor) startQueued() {
	l := &s.loop
	for l.waiting == nil && len(l.queue) > 0 && !l.shutting {
		c := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		s.launch(c)
	}
	if len(l.queue) == 0 {
		l.queue = l.queue[:0:0]
	}
}

// readied handles a readiness signal from copy cp.
func (s *Supervisor) readied(cp *copyCtx) {
	c := cp.c
	if c.cp != cp || c.ph != phStarting || !s.serving {
		return // an old copy, one being stopped, or one that outlived its Serve
	}
	s.unschedule(c) // its start timeout
	if s.loop.waiting == c {
		s.loop.waiting = nil
	}
	s.setPhase(c, phRunning)
	s.emit(EventChildReady, c, nil)
	s.armBeat(c)
}

// armBeat starts c's heartbeat watchdog, if it has one.
func (s *Supervisor) armBeat(c *child) {
	if c.heartbeat > 0 {
		c.cp.w.beatFrom = time.Now()
		s.deadline(entry{due: c.cp.w.beatFrom.Add(c.heartbeat), c: c}, waitBeat)
	}
}

// checkBeat declares c hung if its last heartbeat is a whole period old, and
// otherwise waits for the end of the period from that heartbeat.
func (s *Supervisor) checkBeat(c *child, now time.Time) {
	w := c.cp.w
	last := w.born.Add(time.Duration(w.beat.Load()))
	if last.Before(w.beatFrom) {
		last = w.beatFrom
	}
	if next := last.Add(c.heartbeat); next.After(now) {
		s.deadline(entry{due: next, c: c}, waitBeat)
		return
	}
	s.cancelAsFailed(c, fmt.Errorf("%w: child %q sent no heartbeat for %v", ErrHung, c.name, c.heartbeat))
}
