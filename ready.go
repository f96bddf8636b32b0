package arbor

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// copyKey finds a child copy's copyCtx among a context's values.
type copyKey struct{}

// copyCtx is the context a supervisor gives one copy of a child: the copy's
// cancellable context, plus where the copy signals readiness and heartbeats.
// It answers Value(copyKey{}) with itself and passes everything else on, so
// contexts derived from it find it and cancel with it as usual.
type copyCtx struct {
	context.Context
	s       *Supervisor
	c       *child
	run     uint64
	born    time.Time    // when the copy started, if its heartbeat is watched
	beat    atomic.Int64 // the last heartbeat, in nanoseconds after born
	readied atomic.Bool

	beatFrom time.Time // when its heartbeat watch was armed; the loop's own
}

func (x *copyCtx) Value(key any) any {
	if key == (copyKey{}) {
		return x
	}
	return x.Context.Value(key)
}

// hideCopy is a supervisor's base context for its children: it hides the
// supervisor's own copyCtx, so that a child without one of its own cannot
// signal for its supervisor.
// It also carries the supervisor's emitter, where nested supervisors send
// their events.
type hideCopy struct {
	context.Context
	em *emitter
}

func (h hideCopy) Value(key any) any {
	switch key {
	case copyKey{}:
		return nil
	case emitKey{}:
		return h.em
	}
	return h.Context.Value(key)
}

func copyOf(ctx context.Context) *copyCtx {
	if ctx == nil {
		return nil
	}
	x, _ := ctx.Value(copyKey{}).(*copyCtx)
	return x
}

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
	if x != nil && x.readied.CompareAndSwap(false, true) {
		x.s.post(message{c: x.c, run: x.run, ready: true})
	}
}

// Heartbeat tells the supervisor that started the worker serving ctx, or a
// context derived from it, that the worker is making progress (see
// WithHeartbeat). It costs an atomic store and never blocks; on a context no
// supervisor made, or by a child without a heartbeat period, it does nothing.
func Heartbeat(ctx context.Context) {
	if x := copyOf(ctx); x != nil && !x.born.IsZero() {
		x.beat.Store(int64(time.Since(x.born)))
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

// set moves c to state st, keeping the count of children per state.
func (s *Supervisor) set(c *child, st State) {
	s.l.n[c.state]--
	s.l.n[st]++
	if c.state != st {
		c.state, c.since = st, time.Now().UnixNano()
	}
}

// ready reports whether every child is ready: none is starting, restarting,
// stopping or stuck.
func (s *Supervisor) ready() bool {
	n := &s.l.n
	return n[Starting]+n[Restarting]+n[Stopping]+n[Stuck] == 0
}

// signalReady tells the supervisor's parent, or systemd for a root, that all
// its children are ready, once per Serve.
func (s *Supervisor) signalReady() {
	s.l.parent.signal()
	s.l.notifier.ready()
}

// enqueue makes c wait in the start queue, in start order.
func (s *Supervisor) enqueue(c *child) {
	l := &s.l
	c.queued = true
	s.set(c, Starting)
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

// dequeue takes c out of the start queue, if it waits there. The caller sets
// its state.
func (s *Supervisor) dequeue(c *child) {
	if !c.queued {
		return
	}
	c.queued, c.isRestart = false, false
	if i := slices.Index(s.l.queue, c); i >= 0 {
		s.l.queue = slices.Delete(s.l.queue, i, i+1)
	}
}

// startQueued starts queued children in start order until one has to be
// waited for.
func (s *Supervisor) startQueued() {
	l := &s.l
	for l.waiting == nil && len(l.queue) > 0 && !l.shutting {
		c := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		c.queued = false
		s.launch(c)
	}
	if len(l.queue) == 0 {
		l.queue = l.queue[:0:0]
	}
}

// readied handles a readiness signal from copy run of c.
func (s *Supervisor) readied(c *child, run uint64) {
	if c.removed || run != c.run || !c.alive || c.state != Starting {
		return // an old copy, or one being stopped
	}
	s.unschedule(c) // its start timeout
	if s.l.waiting == c {
		s.l.waiting = nil
	}
	s.set(c, Running)
	s.emit(EventChildReady, c, nil)
	s.armBeat(c)
}

// armBeat starts c's heartbeat watchdog, if it has one.
func (s *Supervisor) armBeat(c *child) {
	if c.heartbeat > 0 {
		c.cc.beatFrom = time.Now()
		s.deadline(c, c.cc.beatFrom.Add(c.heartbeat), waitBeat)
	}
}

// checkBeat declares c hung if its last heartbeat is a whole period old, and
// otherwise waits for the end of the period from that heartbeat.
func (s *Supervisor) checkBeat(c *child, now time.Time) {
	last := c.cc.born.Add(time.Duration(c.cc.beat.Load()))
	if last.Before(c.cc.beatFrom) {
		last = c.cc.beatFrom
	}
	if next := last.Add(c.heartbeat); next.After(now) {
		s.deadline(c, next, waitBeat)
		return
	}
	s.hang(c, fmt.Errorf("%w: child %q sent no heartbeat for %v", ErrHung, c.name, c.heartbeat))
}

// hang cancels c as failed with cause, and waits for it to return until its
// shutdown timeout.
func (s *Supervisor) hang(c *child, cause error) {
	c.x().hung, c.stopping = cause, true
	c.cancel(cause)
	s.set(c, Stopping)
	s.emit(EventChildHung, c, cause)
	if c.timeout > 0 {
		s.deadline(c, time.Now().Add(c.timeout), waitHang)
	}
}

// hangStuck declares stuck a hung child that did not return within its
// shutdown timeout. Its failure is handled when it returns.
func (s *Supervisor) hangStuck(c *child) {
	if s.l.waiting == c {
		s.l.waiting = nil // later starts go on without it
	}
	s.declareStuck(c)
}
