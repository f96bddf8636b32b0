package arbor

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"
)

// copyCtx is the context a supervisor gives one copy of a child: the copy's
// cancellable context, and who the copy is. It answers Value(copyKey{})
// with itself and passes everything else on, so contexts derived from it
// find it and cancel with it as usual. That is how Ready and Heartbeat find
// their child, and how Terminate and Remove recognise a call from inside
// the child they stop.
type copyCtx struct {
	context.Context
	cancel context.CancelCauseFunc
	s      *Supervisor
	c      *child
	w      *watch // readiness and heartbeats, for a child that signals them; else nil
}

// watch is what a copy that signals readiness or heartbeats shares with its
// supervisor.
type watch struct {
	born     time.Time    // when the copy started
	beat     atomic.Int64 // the last heartbeat, in nanoseconds after born
	readied  atomic.Bool
	beatFrom time.Time // when its heartbeat watch was armed; the loop's own
}

// copyKey finds a child copy's copyCtx among a context's values; upKey
// finds, from a copy's parent context, the copy that its supervisor is.
type (
	copyKey struct{}
	upKey   struct{}
)

func (x *copyCtx) Value(key any) any {
	if key == (copyKey{}) {
		return x
	}
	return x.Context.Value(key)
}

// copyOf returns the copy whose context ctx is or derives from, or nil.
func copyOf(ctx context.Context) *copyCtx {
	if ctx == nil {
		return nil
	}
	x, _ := ctx.Value(copyKey{}).(*copyCtx)
	return x
}

// up returns the copy that x's supervisor runs as in its own parent, or nil
// for a root.
func (x *copyCtx) up() *copyCtx {
	u, _ := x.Context.Value(upKey{}).(*copyCtx)
	return u
}

// callerCopy returns the copy of a child of s that ctx comes from, directly
// or through supervisors nested in that child, or nil.
func callerCopy(ctx context.Context, s *Supervisor) *copyCtx {
	for x := copyOf(ctx); x != nil; x = x.up() {
		if x.s == s {
			return x
		}
	}
	return nil
}

// hideCopy is a supervisor's base context for its children during one
// Serve: it hides the supervisor's own copyCtx, so that a child cannot
// signal for its supervisor, answers upKey with it instead, and carries the
// supervisor's emitter, where nested supervisors send their events.
type hideCopy struct {
	context.Context
	em *emitter
	up *copyCtx
}

func (h hideCopy) Value(key any) any {
	switch key {
	case copyKey{}:
		return nil
	case upKey{}:
		return h.up
	case emitKey{}:
		return h.em
	}
	return h.Context.Value(key)
}

// start runs a new copy of c, at once or, while an earlier start waits for
// its child's readiness, after it.
func (s *Supervisor) start(c *child) {
	if s.loop.waiting != nil || len(s.loop.queue) > 0 {
		s.enqueue(c)
		return
	}
	s.launch(c)
}

// launch runs a new copy of c now.
func (s *Supervisor) launch(c *child) {
	c.count.Starts++
	ctx, cancel := context.WithCancelCause(s.loop.base)
	cp := &copyCtx{Context: ctx, cancel: cancel, s: s, c: c}
	now := time.Now()
	if c.tracks || c.heartbeat > 0 { // only these listen to Ready and Heartbeat
		cp.w = &watch{born: now}
	}
	c.cp, c.claimed, c.then, c.ranIn = cp, false, thenSettle, s.serves
	c.started = now.UnixNano()
	if c.cold != nil {
		c.cold.hung, c.cold.stuck, c.cold.below = nil, nil, nil
	}
	if c.tracks {
		s.setPhaseAt(c, phStarting, now)
		if c.readiness {
			s.loop.waiting = c
			if c.startTimeout > 0 {
				s.deadline(entry{due: now.Add(c.startTimeout), c: c}, waitStart)
			}
		}
	} else {
		s.setPhaseAt(c, phRunning, now)
		s.armBeat(c)
	}
	c.since = now.UnixNano() // a new copy: running (or starting) since now, even if its State did not change
	if c.restartNext {       // counted when it happens, not when it is decided
		c.restartNext = false
		c.restarts++
		c.count.Restarts++
		s.emit(EventChildRestarted, c, nil)
	} else {
		s.emit(EventChildStarted, c, nil)
	}
	// Make the copy's done channel here: a worker's first ctx.Done() would
	// allocate it on the child's small stack, and a GC assist there can grow
	// that stack for good.
	ctx.Done()
	go childMain(cp)
}

// childMain is the body of every child goroutine: it runs one copy of the
// child's worker and posts how it ended to the supervisor, also when the
// worker leaves through runtime.Goexit. What the error matches is worked out
// here, in the child's goroutine, so that the supervisor never runs the
// methods of a worker's error.
//
// It must not be inlined, and it keeps cp live to its end, so that the
// compiler keeps it in its argument slot: goroutine dumps then print its
// true value as childMain's argument, which is how a stuck copy's stack is
// found (see stack.go). Few frames lie between it and the worker's Serve,
// since each idle child's stack holds them.
//
//go:noinline
func childMain(cp *copyCtx) {
	m := message{cp: cp, err: ErrGoexit} // stays so only if Serve leaves through runtime.Goexit
	defer postExit(&m)
	m.err = cp.c.worker.Serve(cp)
	m.class = classify(m.err)
	runtime.KeepAlive(cp)
}

// postExit turns a panic into a *PanicError and hands the copy's exit to its
// supervisor.
func postExit(m *message) {
	if v := recover(); v != nil {
		m.err = newPanicError(v)
		m.class = classify(m.err)
	}
	m.cp.s.post(*m)
}
