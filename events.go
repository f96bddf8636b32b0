package arbor

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// EventKind is the kind of an Event.
type EventKind int

// The lifecycle transitions a supervisor reports. Child is empty for the
// supervisor's own events.
const (
	// EventSupervisorStarted: Serve began.
	EventSupervisorStarted EventKind = iota
	// EventSupervisorStopped: Serve is about to return Err.
	EventSupervisorStopped
	// EventChildStarted: a copy of the child started, the first time in
	// this Serve or after Restart.
	EventChildStarted
	// EventChildRestarted: the supervisor started the child again after
	// an exit or in a group restart; Restarts counts it.
	EventChildRestarted
	// EventChildReady: the child signalled readiness (see Ready).
	EventChildReady
	// EventChildExited: the child returned nil by itself.
	EventChildExited
	// EventChildFailed: the child failed: Err is what it returned, a
	// *PanicError, ErrGoexit, or an error matching ErrStartTimeout or ErrHung.
	EventChildFailed
	// EventChildStopped: the child returned after the supervisor cancelled
	// it.
	EventChildStopped
	// EventRestartScheduled: the child's restart (or the group restart it
	// triggered) waits Delay; Err is the failure, if any.
	EventRestartScheduled
	// EventChildHung: the child missed its heartbeat or its start timeout
	// and was cancelled; Err says which.
	EventChildHung
	// EventChildStuck: the child did not return within its shutdown
	// timeout; Err is its *StuckError, with the stack.
	EventChildStuck
	// EventChildUnstuck: a stuck child returned at last.
	EventChildUnstuck
	// EventIntensityExceeded: a restart would exceed the restart
	// intensity; the supervisor shuts down and escalates Err to its parent.
	EventIntensityExceeded
	// EventPolicyPanicked: the child's restart predicate or backoff policy
	// panicked, or called runtime.Goexit; Err is the *PanicError (its Value
	// is ErrGoexit for Goexit). The supervisor went on without it.
	EventPolicyPanicked
	// EventSupervisorStopping: the supervisor begins to shut down; Err is
	// why (nil when its context ended or automatic shutdown fired).
	EventSupervisorStopping
)

var eventNames = [...]string{
	EventSupervisorStarted:  "supervisor started",
	EventSupervisorStopped:  "supervisor stopped",
	EventChildStarted:       "child started",
	EventChildRestarted:     "child restarted",
	EventChildReady:         "child ready",
	EventChildExited:        "child exited",
	EventChildFailed:        "child failed",
	EventChildStopped:       "child stopped",
	EventRestartScheduled:   "restart scheduled",
	EventChildHung:          "child hung",
	EventChildStuck:         "child stuck",
	EventChildUnstuck:       "stuck child returned",
	EventIntensityExceeded:  "restart intensity exceeded",
	EventPolicyPanicked:     "restart policy panicked",
	EventSupervisorStopping: "supervisor stopping",
}

// String returns the kind in words, such as "child failed".
func (k EventKind) String() string {
	if k >= 0 && int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// level is the slog level an event of kind k is logged at.
//
// One escalation makes one record at error level, EventIntensityExceeded's,
// whose *IntensityError tells the whole chain: the supervisor's stop with
// that error, and its parent's record of the failed child, are debug.
func (k EventKind) level(err error) slog.Level {
	_, escalated := err.(*IntensityError)
	switch k {
	case EventChildFailed:
		if escalated {
			return slog.LevelDebug
		}
		return slog.LevelWarn
	case EventChildUnstuck:
		return slog.LevelWarn
	case EventChildHung, EventChildStuck, EventIntensityExceeded, EventPolicyPanicked:
		return slog.LevelError
	case EventRestartScheduled, EventChildRestarted, EventSupervisorStopping:
		return slog.LevelInfo
	case EventSupervisorStopped:
		if err != nil && !escalated {
			return slog.LevelError
		}
	}
	return slog.LevelDebug
}

// Event is one lifecycle transition in a supervision tree.
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// Time is when the supervisor saw it happen.
	Time time.Time
	// Supervisor is the path of the supervisor in its tree: the root's
	// name, then the names of the children that lead to it, such as
	// "root/db/pool".
	Supervisor string
	// Child is the child's name, or empty for the supervisor's own events.
	Child string
	// Err is the error the event is about, or nil.
	Err error
	// Restarts is the child's restart count in the current Serve.
	Restarts int
	// Delay is how long a scheduled restart waits (EventRestartScheduled).
	Delay time.Duration
	// Dropped counts the events lost just before this one because the
	// handlers fell behind (see WithEventHandler).
	Dropped int
}

// Path returns the path of the event's subject: the supervisor's path, and
// the child's name after a '/' for a child's event.
func (e Event) Path() string {
	if e.Child == "" {
		return e.Supervisor
	}
	return e.Supervisor + "/" + e.Child
}

// String describes the event on one line, such as
// `root/db/conn: child failed (restarts=2): connection refused`.
func (e Event) String() string {
	s := e.Path() + ": " + e.Kind.String()
	if e.Child != "" {
		s += " (restarts=" + strconv.Itoa(e.Restarts) + ")"
	}
	if e.Kind == EventRestartScheduled {
		s += " in " + e.Delay.String()
	}
	if e.Err != nil {
		s += ": " + safeMessage(e.Err)
	}
	return s
}

// WithEventHandler registers h to receive every event of the supervisor and
// of every supervisor nested under it while it serves. It may be given more
// than once. See the package documentation for the delivery guarantees:
// handlers run one event at a time on a goroutine of the tree's own, in the
// order the events happened, never on the supervisor's goroutine; a slow
// handler makes events queue (up to EventBuffer, then they are dropped and
// counted), a panicking one is recovered and logged.
func WithEventHandler(h func(Event)) Option {
	return supervisorOption(func(c *config) {
		if h == nil {
			c.fail(invalidf("nil event handler"))
			return
		}
		c.handlers = append(c.handlers, h)
	})
}

// EventBuffer is how many events a tree queues for slow handlers and the
// logger, besides the batch being delivered, before it drops new ones.
const EventBuffer = 1024

// emitter is one Serve's way of reporting events: where to, and as what.
type emitter struct {
	path     string
	parent   *copyCtx      // the copy of a parent's child that this Serve is, or nil
	logger   *slog.Logger  // nil: quiet
	levels   atomic.Uint32 // what the logger wants, learnt on the event goroutine: levelsKnown|wantDebug|wantErrors
	handlers []func(Event) // its own, then its ancestors'
	d        *dispatcher
	own      bool // d was made for this Serve, which closes it
}

// emitKey finds a supervisor's emitter among its children's context values.
type emitKey struct{}

// newEmitter works out where a Serve's events go: its own logger and
// handlers, and those of the supervisors it is nested in (from ctx).
func (s *Supervisor) newEmitter(ctx context.Context) *emitter {
	parent := copyOf(ctx)
	up, _ := ctx.Value(emitKey{}).(*emitter)
	em := &emitter{path: s.name, parent: parent}
	switch {
	case up != nil:
		name := s.name
		if parent != nil {
			name = parent.c.name // the name it has in its parent
		}
		em.path = up.path + "/" + name
		em.logger, em.d = up.logger, up.d
		em.handlers = append(append(em.handlers, s.cfg.handlers...), up.handlers...)
	default:
		em.logger = slog.Default()
		em.handlers = s.cfg.handlers
		em.d = &dispatcher{wake: make(chan struct{}, 1), exited: make(chan struct{})}
		em.own = true
	}
	switch {
	case s.cfg.quiet:
		em.logger = nil
	case s.cfg.logger != nil:
		em.logger = s.cfg.logger
	}
	return em
}

// What an emitter's logger wants, once the event goroutine has asked it.
const (
	levelsKnown = 1 << iota
	wantDebug
	wantErrors
)

// skipsDebug reports whether the logger is known not to want debug events.
func (em *emitter) skipsDebug() bool {
	v := em.levels.Load()
	return v&levelsKnown != 0 && v&wantDebug == 0
}

// learnLevels asks the logger which levels it wants, once, on the event
// goroutine: its Enabled method is user code, never called on a
// supervisor's goroutine. Until then every event is posted.
func (em *emitter) learnLevels() uint32 {
	if v := em.levels.Load(); v&levelsKnown != 0 {
		return v
	}
	v := uint32(levelsKnown)
	if em.logger != nil {
		ctx := context.Background()
		if enabled(em.logger, ctx, slog.LevelDebug) {
			v |= wantDebug
		}
		if enabled(em.logger, ctx, slog.LevelError) {
			v |= wantErrors
		}
	}
	em.levels.Store(v)
	return v
}

// enabled asks the logger whether it wants level, recovering a panic.
func enabled(lg *slog.Logger, ctx context.Context, level slog.Level) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = true
		}
	}()
	return lg.Enabled(ctx, level)
}

// emit reports an event about the supervisor (c nil) or child c.
func (s *Supervisor) emit(kind EventKind, c *child, err error) {
	s.loop.em.emit(kind, c, err, 0)
}

func (s *Supervisor) emitDelay(kind EventKind, c *child, err error, delay time.Duration) {
	s.loop.em.emit(kind, c, err, delay)
}

func (em *emitter) emit(kind EventKind, c *child, err error, delay time.Duration) {
	if em == nil || len(em.handlers) == 0 && (em.logger == nil || em.skipsDebug() && kind.level(err) == slog.LevelDebug) {
		return
	}
	e := Event{Kind: kind, Time: time.Now(), Supervisor: em.path, Err: err, Delay: delay}
	if c != nil {
		e.Child, e.Restarts = c.name, c.restarts
	}
	em.d.post(e, em)
}

// dispatcher delivers a tree's events to loggers and handlers from one
// goroutine, which the root's Serve starts at the first event and waits for
// before it returns.
type dispatcher struct {
	mu      sync.Mutex
	queue   []queued // at most EventBuffer
	spare   []queued
	cur     []queued // the batch being delivered, from pos on; the delivering goroutine's own
	pos     int
	step    int // cur[pos]'s next step: 0 the logger, then its handlers
	dropped int
	running bool
	closed  bool
	wake    chan struct{} // size 1: a doorbell
	exited  chan struct{}
}

type queued struct {
	e  Event
	em *emitter
}

// post queues an event; it never blocks.
func (d *dispatcher) post(e Event, em *emitter) {
	d.mu.Lock()
	// A supervisor's last event always finds room, so that handlers learn
	// of every stop: at most one per supervisor beyond the bound.
	if d.closed || (len(d.queue) >= EventBuffer && e.Kind != EventSupervisorStopped) {
		d.dropped++
		d.mu.Unlock()
		return
	}
	e.Dropped, d.dropped = d.dropped, 0
	d.queue = append(d.queue, queued{e, em})
	start := !d.running
	d.running = true
	d.mu.Unlock()
	if start {
		go d.run()
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run delivers queued events until the dispatcher is closed and drained.
// If a handler ends the goroutine with runtime.Goexit, a new one goes on
// from the next event.
func (d *dispatcher) run() {
	finished := false
	defer func() {
		if finished {
			close(d.exited)
		} else {
			go d.run()
		}
	}()
	for {
		for d.pos < len(d.cur) {
			q := d.cur[d.pos]
			for d.step <= len(q.em.handlers) { // step 0: the logger; then each handler
				step := d.step
				d.step++ // past it before it runs: after a Goexit, the next one goes on
				deliver(q.e, q.em, step)
			}
			d.cur[d.pos] = queued{}
			d.pos, d.step = d.pos+1, 0
		}
		d.mu.Lock()
		d.spare = d.cur[:0]
		d.cur, d.pos = d.queue, 0
		d.queue = d.spare
		done := d.closed && len(d.cur) == 0
		d.mu.Unlock()
		if done {
			finished = true
			return
		}
		if len(d.cur) == 0 {
			<-d.wake
			continue
		}
		d.findStacks()
	}
}

// findStacks finds, with one dump, the stacks of the stuck children in the
// batch about to be delivered, if a logger will print them.
func (d *dispatcher) findStacks() {
	for _, q := range d.cur {
		if se, ok := q.e.Err.(*StuckError); ok && se != nil && q.e.Kind == EventChildStuck && q.em.learnLevels()&wantErrors != 0 {
			se.stack.get() // one dump finds every stack pending now
			return
		}
	}
}

// deliveryWait bounds how long a root's Serve waits for its handlers and
// logger to take its tree's last events.
const deliveryWait = 5 * time.Second

// close delivers what is queued, then stops the dispatcher's goroutine and
// waits for it, at most deliveryWait: a handler or logger that blocks does
// not block Serve. Later events are dropped.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	running := d.running
	d.mu.Unlock()
	if !running {
		return
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
	t := time.NewTimer(deliveryWait)
	defer t.Stop()
	select {
	case <-d.exited:
	case <-t.C:
	}
}

// deliver takes one step of e's delivery: step 0 logs it, step k hands it
// to the k-th handler. Panics are recovered.
func deliver(e Event, em *emitter, step int) {
	if step > 0 {
		callHandler(em.handlers[step-1], e, em.logger)
		return
	}
	if lg := em.logger; lg != nil {
		defer func() { _ = recover() }() // a logger that panics loses its record, nothing else
		em.learnLevels()
		logEvent(lg, e)
	}
}

// callHandler runs one handler; a panic is logged, not spread.
func callHandler(h func(Event), e Event, lg *slog.Logger) {
	defer func() {
		if v := recover(); v != nil && lg != nil {
			defer func() { _ = recover() }() // a logger that panics too loses its record
			lg.Error("arbor: event handler panicked", slog.String("event", e.Kind.String()),
				slog.String("supervisor", e.Supervisor), slog.Any("panic", v), slog.String("stack", string(newPanicError(v).Stack())))
		}
	}()
	h(e)
}

// logEvent logs e with attributes named like its fields.
func logEvent(lg *slog.Logger, e Event) {
	level := e.Kind.level(e.Err)
	ctx := context.Background()
	if !lg.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String("supervisor", e.Supervisor))
	if e.Child != "" {
		attrs = append(attrs, slog.String("child", e.Child), slog.Int("restarts", e.Restarts))
	}
	if e.Kind == EventRestartScheduled {
		attrs = append(attrs, slog.String("delay", e.Delay.String())) // readable in every handler
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("error", safeMessage(e.Err)))
		if se, ok := findErr[*StuckError](e.Err); ok {
			attrs = append(attrs, slog.String("stack", string(se.Stack())))
		} else if pe, ok := findErr[*PanicError](e.Err); ok {
			attrs = append(attrs, slog.String("stack", string(pe.Stack())))
		}
	}
	if e.Dropped > 0 {
		attrs = append(attrs, slog.Int("dropped", e.Dropped))
	}
	lg.LogAttrs(ctx, level, "arbor: "+e.Kind.String(), attrs...)
}
