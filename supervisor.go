package arbor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/arborgo/arbor/internal/gstack"
)

// Supervisor runs a set of children and restarts them by its strategy within
// its restart intensity. Create one with New; its methods are safe to call
// from any goroutine, including from inside its children. A *Supervisor is a
// Worker, so supervisors nest into trees.
type Supervisor struct {
	name string
	cfg  config

	mu      sync.Mutex
	serving bool
	inbox   []message     // exits and requests for the loop; guarded by mu
	wake    chan struct{} // size 1: a doorbell that coalesces posts to inbox

	// The children in start order, indexed by name. The loop goroutine owns
	// them while the supervisor serves; mu guards them otherwise.
	head, tail *child
	byName     map[string]*child
	runs       uint64        // serial of the last copy started
	ords       uint64        // the last child's position in start order
	defaults   [2]*childSpec // for children added without options: workers, supervisors

	l loop // the serving goroutine's own state, reset by each Serve
}

// loop is the state of one Serve call, owned by its goroutine.
type loop struct {
	base       context.Context // Serve's values without its cancellation or its copyCtx
	parent     *copyCtx        // the copy of a parent's child that this Serve is, or nil
	started    time.Time
	spare      []message // the inbox's second buffer
	jobs       []job     // queued stops and group restarts; jobs[0] runs
	cur        *child    // the child being stopped, waited for with timer
	timer      *time.Timer
	stopArmed  bool
	shutting   bool
	reason     error   // why the supervisor shuts down, nil for a clean stop
	stuckBelow []error // stuck children reported by nested supervisors during shutdown
	window     window

	pending      deadlines // timed waits, earliest first
	pendingTimer *time.Timer
	pendingAt    time.Time
	pendingArmed bool

	queue     []*child // starts waiting for an earlier child's readiness, in start order
	waiting   *child   // the started child whose readiness the queue waits for
	n         [Starting + 1]int
	readySent bool      // this Serve has signalled its own readiness
	notifier  *notifier // systemd notifications, for a root with WithSystemd
	em        *emitter  // where events go
}

// job stops children one at a time in order, then starts children in order:
// at once, or at the trigger's next start if that is later.
type job struct {
	stop    []stopRef
	start   []member
	trigger *child    // the child whose exit asked for a group restart
	at      time.Time // not before: the trigger's backoff
}

// member is a child that a group restart will start, unless Terminate or
// Remove stopped it after the group restart was queued (gen changed).
type member struct {
	c   *child
	gen uint32
}

// stopRef is a child that a job stops: the copy that ran when the job was
// queued, or one an earlier job started since, but not one started after a
// Terminate or Remove since (gen changed): that stop was not meant for it.
type stopRef struct {
	c   *child
	run uint64
	gen uint32
}

// message is an exit of a child copy, or a request when req is set.
type message struct {
	c     *child
	run   uint64
	err   error
	ready bool // copy run of c signalled readiness
	req   *request
}

type reqKind uint8

const (
	reqAdd reqKind = iota
	reqTerminate
	reqRestart
	reqRemove
	reqChildren
	reqSnap
)

// request is a call of the dynamic API, answered on reply.
type request struct {
	kind  reqKind
	name  string
	c     *child      // reqAdd: the new child
	self  uint64      // the caller's own copy of a child of this supervisor, or 0
	reply chan answer // size 1, so that answering never blocks the loop
}

type answer struct {
	err   error
	infos []ChildInfo
	snap  *supSnap
}

// New returns a supervisor with the given name and options. It never fails: a
// bad option makes Serve return an error (matching ErrInvalid) before any
// child starts. The name must be non-empty and free of '/'.
func New(name string, opts ...Option) *Supervisor {
	s := &Supervisor{
		name:   name,
		cfg:    newConfig(name, opts),
		wake:   make(chan struct{}, 1),
		byName: make(map[string]*child),
	}
	s.initDefaults()
	return s
}

// initDefaults makes the specs shared by the children added without
// options, once the config is fixed: most children of a pool have none, and
// sharing keeps their records small.
func (s *Supervisor) initDefaults() {
	for i := range s.defaults {
		sp := &childSpec{backoff: s.cfg.backoff, resetAfter: s.cfg.resetAfter}
		if i == 0 {
			sp.timeout = DefaultShutdownTimeout // workers; supervisors: no limit
		}
		s.defaults[i] = sp
	}
}

// Add adds a child named name that runs w. While the supervisor serves, the
// child starts at once, after every child added before it; otherwise it
// starts when Serve does. Add returns an error matching ErrAlreadyExists if
// the name is taken, and one matching ErrInvalid for an empty name, a name
// with '/', a nil worker or a bad option.
func (s *Supervisor) Add(name string, w Worker, opts ...ChildOption) error {
	if err := checkName(name); err != nil {
		return err
	}
	s.mu.Lock()
	s.lazyInit() // s.cfg is fixed from here on
	s.mu.Unlock()
	if isNil(w) {
		return invalidf("nil worker for child %q", name)
	}
	if w == Worker(s) {
		return invalidf("supervisor %q cannot supervise itself", s.name)
	}
	var spec childSpec
	for _, o := range opts {
		if o == nil {
			return invalidf("nil ChildOption for child %q", name)
		}
		o.applyChild(&spec)
	}
	if spec.err != nil {
		return fmt.Errorf("child %q: %w", name, spec.err)
	}
	if !spec.timeoutSet {
		spec.timeout = timeoutFor(w)
	}
	if !spec.backoffSet {
		spec.backoff = s.cfg.backoff
	}
	if !spec.resetSet {
		spec.resetAfter = s.cfg.resetAfter
	}
	_, nested := w.(*Supervisor)
	if nested && spec.heartbeat > 0 {
		return invalidf("child %q is a supervisor and cannot take a heartbeat", name)
	}
	if spec.significant {
		switch {
		case s.cfg.autoShutdown == Never:
			return invalidf("child %q is significant but supervisor %q has auto shutdown never", name, s.name)
		case spec.restart == Permanent:
			return invalidf("child %q is significant and permanent", name)
		}
	}
	sp := &spec
	if len(opts) == 0 {
		sp = s.defaults[0]
		if nested {
			sp = s.defaults[1]
		}
	}
	c := &child{name: name, worker: w, childSpec: sp, slot: -1, tracks: spec.readiness || nested}
	return s.call(&request{kind: reqAdd, name: name, c: c}).err
}

// Terminate stops the named child and keeps it, Stopped, until Restart or a
// group restart starts it again (OTP's terminate_child). It cancels the
// child's context and returns once the child has returned, or with a
// *StuckError once it has been declared stuck. Terminate on a child that is
// not running returns nil. A temporary child is removed when it stops.
//
// Called by a child on itself, Terminate cannot wait for its caller: it
// cancels the caller's context and returns nil at once, and the child is
// Stopped when it returns. Before Serve or after it returned, Terminate marks
// the child so that the next Serve leaves it Stopped.
func (s *Supervisor) Terminate(name string) error {
	return s.call(&request{kind: reqTerminate, name: name, self: s.callerRun()}).err
}

// Restart starts the named child if it is Stopped (OTP's restart_child). It
// returns an error matching ErrRunning if the child is running, restarting,
// stopping or stuck, and ErrNotFound if there is no such child. Starts by
// Restart do not count against the restart intensity. Before Serve, after it
// returned or while it shuts down, Restart undoes an earlier Terminate for
// the next Serve.
func (s *Supervisor) Restart(name string) error {
	return s.call(&request{kind: reqRestart, name: name}).err
}

// Remove stops the named child if it runs, as Terminate does, then deletes it.
// If the child is stuck, Remove returns its *StuckError and the child is
// deleted when its copy returns; until then its name stays taken. Called by a
// child on itself, Remove cancels the caller's context, returns nil at once,
// and deletes the child when it returns.
func (s *Supervisor) Remove(name string) error {
	return s.call(&request{kind: reqRemove, name: name, self: s.callerRun()}).err
}

// Children returns a description of every child in start order.
func (s *Supervisor) Children() []ChildInfo {
	return s.call(&request{kind: reqChildren}).infos
}

// call runs a request on the loop while the supervisor serves, or directly
// under the mutex when it does not.
func (s *Supervisor) call(req *request) answer {
	a, _ := s.callCtx(context.Background(), req)
	return a
}

// lazyInit makes a zero Supervisor usable. Called with mu held.
func (s *Supervisor) lazyInit() {
	if s.byName == nil {
		s.byName = make(map[string]*child)
		s.wake = make(chan struct{}, 1)
		s.cfg = newConfig(s.name, nil)
		s.initDefaults()
	}
}

// post hands a child's exit to the supervisor. It never blocks: the inbox
// grows by at most one message per copy started.
func (s *Supervisor) post(m message) {
	s.mu.Lock()
	s.inbox = append(s.inbox, m)
	s.mu.Unlock()
	s.ring()
}

func (s *Supervisor) ring() {
	select {
	case s.wake <- struct{}{}:
	default: // the loop has a wake-up pending and will see the message
	}
}

// Serve starts the children in the order they were added and supervises them
// until ctx is done, automatic shutdown fires or the restart intensity is
// exceeded; then it stops every child in reverse start order and returns.
//
// Serve returns nil after a shutdown caused by ctx or by automatic shutdown,
// an error matching ErrIntensityExceeded (and reaching the last failure) when
// intensity was exceeded, and joins a *StuckError for each child still stuck
// when it returns. It returns an error matching ErrInvalid at once if an
// option given to New was bad, ErrAlreadyServing if another Serve of s is
// running, and nil at once, starting nothing, if ctx is already done.
func (s *Supervisor) Serve(ctx context.Context) error {
	s.mu.Lock()
	s.lazyInit()
	if err := s.cfg.err; err != nil {
		s.mu.Unlock()
		return fmt.Errorf("supervisor %q: %w", s.name, err)
	}
	if s.serving {
		s.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrAlreadyServing, s.name)
	}
	if ctx.Err() != nil {
		s.mu.Unlock()
		return nil
	}
	s.drainOffline()
	s.serving = true
	s.mu.Unlock()
	nt := s.startNotifier(ctx)

	l := &s.l
	timer, pendingTimer := l.timer, l.pendingTimer
	if timer == nil {
		timer, pendingTimer = time.NewTimer(time.Hour), time.NewTimer(time.Hour)
	}
	timer.Stop()
	pendingTimer.Stop()
	*l = loop{
		parent:       copyOf(ctx),
		started:      time.Now(),
		spare:        l.spare,
		timer:        timer,
		pendingTimer: pendingTimer,
		pending:      l.pending[:0],
		window:       window{max: s.cfg.maxRestarts, period: s.cfg.period},
		queue:        l.queue[:0],
		notifier:     nt,
	}
	l.em = s.newEmitter(ctx, l.parent)
	l.base = hideCopy{context.WithoutCancel(ctx), l.em}
	s.emit(EventSupervisorStarted, nil, nil)
	s.begin()
	done := ctx.Done()
	for !l.shutting || l.cur != nil || len(l.jobs) > 0 {
		if !l.readySent && !l.shutting && s.ready() {
			l.readySent = true
			s.signalReady()
		}
		var stopC, pendingC <-chan time.Time // nil unless armed: no timer lock on every wake-up
		if l.stopArmed {
			stopC = l.timer.C
		}
		if l.pendingArmed {
			pendingC = l.pendingTimer.C
		}
		select {
		case <-s.wake:
			s.drain()
		case <-done:
			done = nil
			s.shutdown(nil)
		case <-stopC:
			s.timedOut()
		case <-pendingC:
			s.due()
		}
		s.advance()
	}
	return s.end()
}

// begin starts the children of a new Serve in start order.
func (s *Supervisor) begin() {
	s.l.n = [Starting + 1]int{}
	for c := s.head; c != nil; c = c.next {
		s.l.n[c.state]++
	}
	for c := s.head; c != nil; {
		next := c.next
		c.restarts, c.lastErr = 0, nil
		c.held, c.pendingStarts, c.startOnReturn, c.isRestart = false, 0, false, false
		c.slot, c.cold = -1, nil // failures, delays and group restarts start afresh
		switch {
		case c.alive: // a stuck copy from an earlier Serve still runs
			s.set(c, Stuck)
			c.startOnReturn = !c.holdOff
		case c.holdOff:
			s.set(c, Stopped)
		default:
			s.start(c)
		}
		c = next
	}
}

// end finishes a Serve: it works out the result, forgets temporary children
// and hands the children back to the mutex.
func (s *Supervisor) end() error {
	l := &s.l
	l.timer.Stop()
	l.pendingTimer.Stop()
	clear(l.pending)
	l.pending = l.pending[:0]
	l.stopNotifier()
	var errs []error
	if l.reason != nil {
		errs = append(errs, l.reason)
	}
	errs = append(errs, l.stuckBelow...)
	for c := s.head; c != nil; {
		next := c.next
		c.held, c.pendingStarts, c.startOnReturn, c.isRestart = false, 0, false, false
		c.slot = -1
		if c.cold != nil {
			c.cold.group, c.cold.nextStart = nil, time.Time{}
		}
		switch {
		case c.alive:
			errs = append(errs, c.stuck)
			if c.restart == Temporary {
				c.removeOnStop = true
			}
		case c.restart == Temporary:
			s.delete(c)
		}
		c = next
	}
	s.mu.Lock()
	s.serving = false
	s.drainOffline()
	s.mu.Unlock()
	var err error
	switch len(errs) {
	case 0:
	case 1:
		err = errs[0]
	default:
		err = errors.Join(errs...)
	}
	s.emit(EventSupervisorStopped, nil, err)
	if em := l.em; em != nil && em.own {
		em.d.close() // the root delivers its tree's last events before it returns
	}
	l.base, l.parent, l.notifier, l.em = nil, nil, nil, nil
	return err
}

// drain handles what arrived in the inbox.
func (s *Supervisor) drain() {
	s.mu.Lock()
	batch := s.inbox
	s.inbox = s.l.spare
	s.mu.Unlock()
	for i := range batch {
		m := batch[i]
		batch[i] = message{}
		switch {
		case m.req != nil:
			s.handle(m.req)
		case m.ready:
			s.readied(m.c, m.run)
		default:
			s.exit(m.c, m.run, m.err)
		}
	}
	s.l.spare = batch[:0]
}

// start runs a new copy of c, at once or, while an earlier start waits for
// its child's readiness, after it.
func (s *Supervisor) start(c *child) {
	if s.l.waiting != nil || len(s.l.queue) > 0 {
		s.enqueue(c)
		return
	}
	s.launch(c)
}

// launch runs a new copy of c now.
func (s *Supervisor) launch(c *child) {
	s.runs++
	c.count.Starts++
	ctx, cancel := context.WithCancelCause(s.l.base)
	c.run, c.cancel, c.alive = s.runs, cancel, true
	c.stopping, c.held, c.stuck = false, false, nil
	if c.cold != nil {
		c.cold.hung = nil
	}
	now := time.Now()
	c.startedAt = now
	c.cc = nil
	if c.tracks || c.heartbeat > 0 { // only these listen to Ready and Heartbeat
		c.cc = &copyCtx{Context: ctx, s: s, c: c, run: s.runs, born: now}
		ctx = c.cc
	}
	if c.tracks {
		s.set(c, Starting)
		if c.readiness {
			s.l.waiting = c
			if c.startTimeout > 0 {
				s.deadline(c, time.Now().Add(c.startTimeout), waitStart)
			}
		}
	} else {
		s.set(c, Running)
		s.armBeat(c)
	}
	c.since = now.UnixNano() // a new copy: running (or starting) since now
	if c.isRestart {         // counted when it happens, not when it is decided
		c.isRestart = false
		c.restarts++
		c.count.Restarts++
		s.emit(EventChildRestarted, c, nil)
	} else {
		s.emit(EventChildStarted, c, nil)
	}
	go childMain(s, c.run, c, ctx)
}

// exit handles the return of copy run of c.
func (s *Supervisor) exit(c *child, run uint64, err error) {
	if c.removed || run != c.run || !c.alive {
		return // not the current copy
	}
	l := &s.l
	c.alive = false
	c.cancel(nil)
	c.cancel, c.cc = nil, nil
	if l.waiting == c {
		l.waiting = nil
	}
	s.unschedule(c) // its start timeout, heartbeat or hang deadline
	if c == l.cur {
		if l.stopArmed {
			l.timer.Stop()
			l.stopArmed = false
		}
		l.cur = nil
	}
	if c.stuck != nil {
		s.emit(EventChildUnstuck, c, err)
		c.stuck = nil
	}
	if hung := c.r().hung; hung != nil {
		c.cold.hung = nil
		if !c.held && !l.shutting { // its failure is handled now that it returned
			c.stopping = false
			s.exited(c, hung)
			return
		}
	}
	if c.stopping || c.held || l.shutting {
		if l.shutting && errors.Is(err, ErrStuck) {
			l.stuckBelow = append(l.stuckBelow, err) // a nested supervisor left a stuck child
		}
		if !c.stopping && err != nil { // it failed by itself before being stopped
			c.lastErr = err
			c.count.Failures++
			s.emit(EventChildFailed, c, err)
		} else {
			s.emit(EventChildStopped, c, nil)
		}
		c.stopping, c.held = false, false
		s.stopped(c)
		return
	}
	s.exited(c, err)
}

// stopped settles a child that returned after the supervisor stopped it (or
// was about to).
func (s *Supervisor) stopped(c *child) {
	switch {
	case c.removeOnStop || c.restart == Temporary:
		s.delete(c)
		return
	case c.startOnReturn && !s.l.shutting:
		c.startOnReturn = false
		s.start(c)
	case c.pendingStarts > 0 && !s.l.shutting:
		s.set(c, Restarting)
	default:
		s.set(c, Stopped)
	}
	s.answerWaiters(c, nil)
}

// exited applies the restart decision, backoff and strategy to a child that
// returned by itself.
func (s *Supervisor) exited(c *child, err error) {
	failed := err != nil
	if failed {
		c.lastErr = err
		c.count.Failures++
		s.emit(EventChildFailed, c, err)
	} else {
		s.emit(EventChildExited, c, nil)
	}
	if errors.Is(err, ErrTerminateTree) {
		s.settle(c)
		s.shutdown(fmt.Errorf("supervisor %q: child %q ended the tree: %w", s.name, c.name, err))
		return
	}
	if !s.restarts(c, err) {
		s.settle(c)
		if c.significant {
			s.significantExit()
		}
		return
	}
	now := time.Now()
	if reset := c.resetAfter; reset > 0 && now.Sub(c.startedAt) >= reset {
		if c.cold != nil {
			c.cold.failures = 0
		}
	}
	x := c.x()
	x.failures++
	x.exitErr = err
	delay := s.delayFor(c)
	at := now.Add(delay)
	if delay > 0 {
		s.emitDelay(EventRestartScheduled, c, err, delay)
	}
	if s.cfg.strategy != OneForOne {
		s.groupRestart(c, at)
		return
	}
	if at.Equal(now) {
		s.restartOne(c)
		return
	}
	s.set(c, Restarting)
	s.schedule(c, at)
}

// restarts decides whether c, which exited by itself with err, is restarted.
func (s *Supervisor) restarts(c *child, err error) bool {
	if c.restart == Temporary || errors.Is(err, ErrDoNotRestart) {
		return false
	}
	if c.restartIf == nil {
		return c.restart.restarts(err != nil)
	}
	return s.ask(c, err)
}

// ask calls c's restart predicate. A predicate that panics is logged and the
// child's restart policy decides instead.
func (s *Supervisor) ask(c *child, err error) (restart bool) {
	defer func() {
		if v := recover(); v != nil {
			s.emit(EventPolicyPanicked, c, &PanicError{Value: v, Stack: debug.Stack()})
			restart = c.restart.restarts(err != nil)
		}
	}()
	return c.restartIf(err)
}

// settle records that c exited by itself and will not be restarted.
func (s *Supervisor) settle(c *child) {
	if c.restart == Temporary {
		s.delete(c)
	} else {
		s.set(c, Stopped)
	}
}

// restartOne restarts c now, within the restart intensity.
func (s *Supervisor) restartOne(c *child) {
	if !s.l.window.allow(time.Since(s.l.started)) {
		s.escalate(c, c.r().exitErr)
		return
	}
	c.isRestart = true
	s.start(c)
}

// groupRestart queues the OneForAll or RestForOne restart that c's exit calls
// for: stop the group's running children in reverse start order, then start
// its non-temporary children in start order.
func (s *Supervisor) groupRestart(c *child, at time.Time) {
	g := s.group(s.cfg.strategy, c)
	j := job{trigger: c, at: at}
	for _, x := range g {
		if x.alive {
			continue
		}
		s.unschedule(x) // the group restart starts it
		if x.queued {
			s.dequeue(x)
			if x.restart == Temporary { // never started, never restarted
				s.delete(x)
			} else {
				s.set(x, Stopped)
			}
		}
	}
	for i := len(g) - 1; i >= 0; i-- {
		if x := g[i]; x.alive {
			x.held = true
			j.stop = append(j.stop, stopRef{x, x.run, x.gen})
		}
	}
	for _, x := range g {
		if x.restart == Temporary {
			continue
		}
		x.pendingStarts++
		x.x().nextStart = at
		if !x.alive {
			s.set(x, Restarting)
		}
		j.start = append(j.start, member{x, x.gen})
	}
	s.l.jobs = append(s.l.jobs, j)
}

// advance runs queued jobs as far as they go without waiting for a child.
func (s *Supervisor) advance() {
	l := &s.l
	defer s.startQueued()
	for l.cur == nil && len(l.jobs) > 0 {
		j := &l.jobs[0]
		if len(j.stop) > 0 {
			x, ref := j.stop[0].c, j.stop[0]
			j.stop = j.stop[1:]
			if x.alive && x.stuck == nil && (x.run == ref.run || x.gen == ref.gen) {
				s.beginStop(x)
			}
			continue
		}
		trigger, start, at := j.trigger, j.start, j.at
		l.jobs[0] = job{}
		l.jobs = l.jobs[1:]
		if trigger == nil {
			continue
		}
		if at.After(time.Now()) && !l.shutting {
			trigger.x().group = start
			s.schedule(trigger, at)
			continue
		}
		s.startGroup(trigger, start)
	}
}

// startGroup performs a group restart's starts, in start order, within the
// restart intensity.
func (s *Supervisor) startGroup(trigger *child, start []member) {
	l := &s.l
	allowed := l.shutting || l.window.allow(time.Since(l.started))
	for _, m := range start {
		x, live := m.c, m.gen == m.c.gen
		if live {
			x.pendingStarts--
		}
		if x.pendingStarts == 0 {
			if x.cold != nil {
				x.cold.nextStart = time.Time{}
			}
		}
		switch {
		case !live || !allowed || x.removed || l.shutting:
			if !x.alive && x.state == Restarting && x.pendingStarts == 0 {
				s.set(x, Stopped)
			}
		case x.queued:
			// Its start is queued already, by an earlier group restart (a
			// restart) or by Restart (a start): that one start serves both.
		case x.alive: // a stuck copy: start it again when it returns
			if x.stuck != nil && !x.startOnReturn {
				x.startOnReturn = true
				x.isRestart = true
			} // else its start is due already: the first of this Serve, or a restart
		default:
			x.isRestart = true
			s.start(x)
		}
	}
	if !allowed {
		s.escalate(trigger, trigger.r().exitErr)
	}
}

// beginStop cancels c and waits for it, up to its shutdown timeout.
func (s *Supervisor) beginStop(c *child) {
	if !c.stopping {
		c.stopping = true
		c.cancel(nil)
	}
	if c.cold != nil {
		c.cold.hung = nil // its return is a stop now
	}
	s.unschedule(c)
	if s.l.waiting == c {
		s.l.waiting = nil
	}
	s.set(c, Stopping)
	s.l.cur = c
	if c.timeout > 0 {
		s.l.timer.Reset(c.timeout)
		s.l.stopArmed = true
	}
}

// timedOut declares the child being stopped stuck.
func (s *Supervisor) timedOut() {
	s.l.stopArmed = false
	c := s.l.cur
	if c == nil {
		return
	}
	s.l.cur = nil
	s.declareStuck(c)
	s.answerWaiters(c, c.stuck)
}

// declareStuck records that c's copy did not return within its shutdown
// timeout, with the copy's stack, and reports it.
func (s *Supervisor) declareStuck(c *child) {
	s.set(c, Stuck)
	c.count.Stuck++
	c.stuck = &StuckError{
		Supervisor: s.name,
		Child:      c.name,
		Stack:      gstack.Find(s.frame(c.run)),
	}
	s.emit(EventChildStuck, c, c.stuck)
}

// escalate shuts the supervisor down because c's restart would exceed the
// restart intensity.
func (s *Supervisor) escalate(c *child, err error) {
	if !c.alive {
		s.set(c, Stopped)
	}
	if err == nil {
		err = fmt.Errorf("child %q exited normally", c.name)
	}
	reason := fmt.Errorf("%w: supervisor %q: more than %d restarts in %v; last: child %q: %w",
		ErrIntensityExceeded, s.name, s.cfg.maxRestarts, s.cfg.period, c.name, err)
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
			if x.significant && (x.alive || x.state != Stopped) {
				return
			}
		}
		s.shutdown(nil)
	}
}

// shutdown drops queued jobs and queues the stop of every running child in
// reverse start order.
func (s *Supervisor) shutdown(reason error) {
	l := &s.l
	if l.shutting {
		return
	}
	l.shutting, l.reason = true, reason
	l.notifier.stopping()
	for _, x := range l.pending {
		x.slot, x.cold.group = -1, nil // in the heap: it has a cold record
	}
	clear(l.pending)
	l.pending = l.pending[:0]
	s.armPending()
	for _, x := range l.queue {
		x.queued = false
		s.set(x, Stopped)
	}
	clear(l.queue)
	l.queue, l.waiting = l.queue[:0], nil
	var stop []stopRef
	for x := s.tail; x != nil; x = x.prev {
		x.startOnReturn, x.isRestart = false, false
		if x.cold != nil {
			x.cold.nextStart = time.Time{}
		}
		if x.alive {
			stop = append(stop, stopRef{x, x.run, x.gen})
		} else if x.state == Restarting {
			s.set(x, Stopped)
		}
	}
	clear(l.jobs)
	l.jobs = append(l.jobs[:0], job{stop: stop})
}

// handle answers a request while the supervisor serves.
func (s *Supervisor) handle(req *request) {
	switch req.kind {
	case reqChildren:
		req.reply <- answer{infos: s.snapshot()}
		return
	case reqSnap:
		req.reply <- answer{snap: s.snapNow()}
		return
	}
	if s.l.shutting && (req.kind == reqAdd || req.kind == reqRestart) {
		req.reply <- s.offline(req) // it edits the specs for the next Serve
		return
	}
	if req.kind == reqAdd {
		if s.byName[req.name] != nil {
			req.reply <- answer{err: fmt.Errorf("%w: %q", ErrAlreadyExists, req.name)}
			return
		}
		s.link(req.c)
		s.start(req.c)
		req.reply <- answer{}
		return
	}
	c := s.byName[req.name]
	if c == nil {
		req.reply <- answer{err: fmt.Errorf("%w: %q", ErrNotFound, req.name)}
		return
	}
	if req.kind == reqRestart {
		if c.alive || c.queued || c.state == Restarting {
			req.reply <- answer{err: fmt.Errorf("%w: %q is %v", ErrRunning, c.name, c.state)}
			return
		}
		c.holdOff = false
		if c.cold != nil {
			c.cold.failures = 0
		}
		s.start(c)
		req.reply <- answer{}
		return
	}
	// Terminate or Remove.
	// Group restarts queued before this call do not start it.
	c.gen++
	c.pendingStarts, c.startOnReturn, c.isRestart = 0, false, false
	if req.kind == reqRemove {
		c.removeOnStop = true
	}
	switch {
	case !c.alive:
		if c.r().group == nil {
			s.unschedule(c) // cancel its delayed restart
		} // else its group restart still starts the others, skipping it
		s.dequeue(c)
		if c.cold != nil {
			c.cold.nextStart = time.Time{}
		}
		if c.removeOnStop || c.restart == Temporary {
			s.delete(c)
		} else {
			s.set(c, Stopped)
		}
		req.reply <- answer{}
		return
	case c.stuck != nil:
		req.reply <- answer{err: c.stuck}
		return
	case req.self != 0 && req.self == c.run:
		// The child asked to stop itself: it cannot wait for its own return.
		if !c.stopping {
			c.stopping = true
			c.cancel(nil)
		}
		if c.cold != nil {
			c.cold.hung = nil
		}
		s.unschedule(c)
		if s.l.waiting == c {
			s.l.waiting = nil
		}
		s.set(c, Stopping)
		req.reply <- answer{}
	default:
		x := c.x()
		x.waiters = append(x.waiters, req)
	}
	if !s.l.shutting && !c.held {
		c.held = true
		s.l.jobs = append(s.l.jobs, job{stop: []stopRef{{c, c.run, c.gen}}})
	}
}

// offline answers a request while no loop runs (mu held), or a request that
// only edits specs during shutdown.
func (s *Supervisor) offline(req *request) answer {
	switch req.kind {
	case reqChildren:
		return answer{infos: s.snapshot()}
	case reqSnap:
		return answer{snap: s.snapNow()}
	case reqAdd:
		if s.byName[req.name] != nil {
			return answer{err: fmt.Errorf("%w: %q", ErrAlreadyExists, req.name)}
		}
		s.link(req.c)
		return answer{}
	}
	c := s.byName[req.name]
	if c == nil {
		return answer{err: fmt.Errorf("%w: %q", ErrNotFound, req.name)}
	}
	switch req.kind {
	case reqRestart:
		if c.alive {
			return answer{err: fmt.Errorf("%w: %q is %v", ErrRunning, c.name, c.state)}
		}
		c.holdOff = false
		if c.cold != nil {
			c.cold.failures = 0
		}
	case reqTerminate:
		c.holdOff = true
		if c.alive {
			return answer{err: c.stuck}
		}
	case reqRemove:
		if c.alive {
			c.removeOnStop = true
			return answer{err: c.stuck}
		}
		s.delete(c)
	}
	return answer{}
}

// drainOffline settles exits that arrived while no loop ran and answers
// requests left in the inbox when a loop ended. Called with mu held.
func (s *Supervisor) drainOffline() {
	for i, m := range s.inbox {
		s.inbox[i] = message{}
		if m.req != nil {
			m.req.reply <- s.offline(m.req)
			continue
		}
		if m.ready {
			continue // readiness means nothing between Serves
		}
		c := m.c
		if c.removed || m.run != c.run || !c.alive {
			continue
		}
		c.alive, c.stopping, c.stuck = false, false, nil
		c.cancel(nil)
		c.cancel = nil
		if c.removeOnStop || c.restart == Temporary {
			s.delete(c)
		} else {
			c.state = Stopped
		}
	}
	s.inbox = s.inbox[:0]
}

// answerWaiters answers the Terminate and Remove calls waiting for c.
func (s *Supervisor) answerWaiters(c *child, err error) {
	if c.cold == nil {
		return
	}
	for i, w := range c.cold.waiters {
		w.reply <- answer{err: err}
		c.cold.waiters[i] = nil
	}
	c.cold.waiters = c.cold.waiters[:0]
}

func (s *Supervisor) snapshot() []ChildInfo {
	infos := make([]ChildInfo, 0, len(s.byName))
	for c := s.head; c != nil; c = c.next {
		infos = append(infos, c.info())
	}
	return infos
}

// link appends c to the children.
func (s *Supervisor) link(c *child) {
	s.ords++
	c.ord = s.ords
	s.l.n[c.state]++
	c.prev = s.tail
	if s.tail != nil {
		s.tail.next = c
	} else {
		s.head = c
	}
	s.tail = c
	s.byName[c.name] = c
}

// delete removes c from the children and answers its waiters.
func (s *Supervisor) delete(c *child) {
	c.removed = true
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
	s.set(c, Stopped)
	s.l.n[Stopped]--
	s.answerWaiters(c, nil)
}

// childMainName is the traceback name of childMain.
var childMainName = runtime.FuncForPC(reflect.ValueOf(childMain).Pointer()).Name()

// frame is the start of the childMain frame that runs copy run of a child of
// s, as goroutine dumps print it.
func (s *Supervisor) frame(run uint64) []byte {
	return gstack.Frame(childMainName, reflect.ValueOf(s).Pointer(), uintptr(run))
}

// callerRun returns the copy of a child of s that the calling goroutine runs,
// or 0 if it runs none.
func (s *Supervisor) callerRun() uint64 {
	run, _ := gstack.Own(gstack.Frame(childMainName, reflect.ValueOf(s).Pointer()))
	return run
}

// logger is the supervisor's logger: WithLogger's, or slog.Default().
func (s *Supervisor) logger() *slog.Logger {
	if s.cfg.logger != nil {
		return s.cfg.logger
	}
	return slog.Default()
}

// isNil reports whether w is nil or holds a nil pointer or func.
func isNil(w Worker) bool {
	if w == nil {
		return true
	}
	switch v := reflect.ValueOf(w); v.Kind() {
	case reflect.Pointer, reflect.Func:
		return v.IsNil()
	}
	return false
}
