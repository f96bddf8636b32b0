package arbor

// Model-based property test ("Prove it holds", part 1).
//
// The first half of this file is a reference model of the semantics that
// doc.go states: a small, single-threaded simulation of a supervision tree
// (strategies, restart policies, constant backoff and delayed group restarts,
// the sliding intensity window, escalation of a nested supervisor's failure,
// significant children with automatic shutdown, the dynamic API, shutdown
// timeouts and stuck children, readiness with its start queue and start
// timeouts, heartbeats, and a nested supervisor's own readiness signal). The
// second half is a pgregory.net/rapid property that draws a random tree and a
// random sequence of steps, drives the model and a real tree side by side in
// a testing/synctest bubble, and checks after every step that they agree.
//
// A copy cancelled as failed (a missed start timeout or heartbeat: "hung")
// is the subtle part: once it returns it fails with that cause, unless a
// Terminate, Remove, group restart or shutdown claimed it meanwhile, when its
// return is a stop; if it outlives its shutdown timeout it is Stuck, and its
// *StuckError unwraps to the cause (also when a stop claimed it since).
//
// Choices that keep the model small, each a restriction of the generator:
//
//   - Backoff is ConstantBackoff, for a whole supervisor or one child, so
//     every delay is known. ExponentialBackoff's jitter, WithRestartIf,
//     ErrDoNotRestart, ErrTerminateTree and self-calls from inside a child
//     are left to their own tests.
//   - Every timed event is a deadline the model knows: a child's delayed
//     restart, start timeout, heartbeat period or shutdown timeout (one at a
//     time per child, as in the engine), or a group restart waiting for its
//     trigger's delay. Each worker's durations carry an offset of its own
//     (milliseconds by its serial number), so two deadlines rarely fall on
//     the same instant; when two do, which one the engine handles first (and
//     how two supervisors' goroutines interleave) is up to the scheduler, and
//     the case stops comparing (see ambiguous below).
//   - Heartbeats: a heartbeat worker's copy calls Heartbeat at every tick of
//     its own ticker (3/7 of its period, from its start) while it beats; a
//     "mute" step stops it, a "beat" step resumes it. Fake time makes the
//     ticks exact, so the model knows when a muted copy misses its period
//     (mSup.mute): its last tick plus the period. A step happens after
//     everything due at its instant (synctest.Wait), so a tick at the step's
//     instant has happened.
//   - At most two worker copies ignore cancellation ("are deaf") at a time:
//     enough for a stop in progress and a hung child behind it.
//   - Nested supervisors keep their default shutdown timeout (no limit):
//     they bound their own children, so they are never stuck themselves;
//     they take no start timeout and no heartbeat.
//   - Add adds workers only; nested supervisors exist from the start.
//   - A case stops comparing (and just cleans up) where the model cannot say
//     what the real tree does: a supervisor that starts a nested supervisor
//     and cancels it in the same chain of events (whether the nested Serve
//     begins or sees its context already done and returns at once is up to
//     the Go scheduler: mSup.beginStop), two deadlines on one instant, or a
//     resumed heartbeat whose first tick falls on the instant its copy
//     misses its period. The model finds it before the real tree takes the
//     step, which is then not taken there. (The engine bugs this test found
//     are fixed, see regression_model_test.go and regression_test.go.)
//
// Beyond one action per step:
//
//   - Serve is called on a supervisor that serves, the root or a nested
//     one: it returns ErrAlreadyServing at once and changes nothing.
//   - A Serve of the root racing its return gets ErrAlreadyServing until
//     the first Serve has returned; fake time stands still while it tries
//     again, so it serves exactly when that return takes no time, which the
//     model knows (harness.startRacer).
//   - Terminate and Remove are also called from another goroutine, without
//     waiting (bgCall), so that a call can queue behind a stop in progress;
//     every step checks that each is answered exactly when the model
//     answers it, and with the same error.
//   - One composite step (harness.hungScenario) lines up what independent
//     steps rarely do: a hung worker that ignores its cancellation, then a
//     Terminate or Remove of it, queued behind a deaf sibling's stop or
//     once it is stuck.
//
// Everything the model does happens in causal order: one step of the test
// (a worker's return, an API call, time passing) starts one chain of events
// that runs to its end before the next step, which is what synctest.Wait
// gives the real tree. The model keeps one FIFO queue of events (a copy
// returned or signalled readiness, a Serve's context was cancelled) for the
// whole tree.
//
// A supervisor checks its own readiness where the engine's loop does: after
// it begins and after each event it handles (mSup.advance). Two events for
// one supervisor can be in flight at once only after it fanned out (started
// or stopped several children), and then it is not ready until all of them
// arrived, so handling them one at a time, as the model does, or in one batch,
// as the engine may, finds the same first ready moment.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"pgregory.net/rapid"
)

// ---------------------------------------------------------------------------
// The reference model.

// mErr is an error as the model sees it: the multiset of atoms that errAtoms
// finds in the engine's error ("fail#3", "panic", "intensity", "hung",
// "starttimeout", "stuck:sup/child", "stuck:sup/child+hung"). nil is no
// error; a non-nil error has at least one atom.
type mErr []string

// joinErr concatenates errors, nil when all are nil.
func joinErr(errs ...mErr) mErr {
	var out mErr
	for _, e := range errs {
		out = append(out, e...)
	}
	return out
}

// String returns the sorted atoms, or "nil".
func (e mErr) String() string {
	if e == nil {
		return "nil"
	}
	s := slices.Clone(e)
	sort.Strings(s)
	return "[" + strings.Join(s, " ") + "]"
}

// hasStuck reports whether e names a stuck child.
func (e mErr) hasStuck() bool {
	return slices.ContainsFunc(e, func(a string) bool { return strings.HasPrefix(a, "stuck:") })
}

// Causes of a cancellation as failed, as atoms.
const (
	causeHung         = "hung"         // a missed heartbeat period: ErrHung
	causeStartTimeout = "starttimeout" // a missed start timeout: ErrStartTimeout
)

// mCopy is one running copy of a child: a worker's Serve call or a nested
// supervisor's Serve.
type mCopy struct {
	cancelled bool   // the supervisor cancelled its context: to stop it, or as failed
	claimed   bool   // the supervisor decided that its return is a stop
	hung      string // why it was cancelled as failed, until a stop of it begins
	cause     string // why it was cancelled as failed, for good: its *StuckError's cause
	deaf      bool   // a worker copy that ignores cancellation until released
	readied   bool   // a worker copy called Ready (only the first call counts)
	gen       int    // the model's quiet point at which it started

	// Heartbeats, for a worker with a period: the copy beats at every tick
	// of its ticker (start + k*tick) while it beats.
	start     time.Duration // when it started
	beating   bool          // it calls Heartbeat at its ticks
	beatSince time.Duration // ticks after this instant count (it beats since then)
	lastBeat  time.Duration // its last heartbeat while muted, or -1
	watched   bool          // the supervisor watches its heartbeats (once it is ready)
	beatFrom  time.Duration // since when
}

// mTimer says what a child's deadline is for. A child has one at a time, as
// in the engine.
type mTimer int

const (
	tNone    mTimer = iota
	tRestart        // its delayed restart (backoff) is due
	tStart          // its start timeout: it has not signalled readiness
	tBeat           // its muted copy misses its heartbeat period
	tStop           // its shutdown timeout after cancellation: it is stuck
)

// mChild is the model's record of one child of a supervisor.
type mChild struct {
	ranThisServe bool // a copy of it started in the current Serve
	name         string
	id           int // serial number, for the offsets of its durations
	policy       RestartPolicy
	significant  bool
	timeout      time.Duration // a worker's shutdown timeout
	readiness    bool          // WithReadiness: later starts wait for its readiness
	startTimeout time.Duration // WithReadiness(startTimeout); 0: none
	heartbeat    time.Duration // WithHeartbeat(period) for a worker; 0: none
	backoff      time.Duration // its constant backoff delay; 0: none
	sub          *mSup         // the nested supervisor, nil for a worker
	w            *ctrl         // the real worker, nil for a supervisor

	state     State
	restarts  int
	lastErr   mErr
	failures  int           // consecutive exits that asked for a restart
	startedAt time.Duration // when its newest copy started
	starts    int           // worker copies started, over the whole test
	nextStart time.Duration // when it starts again, as Restarting; -1: none
	timer     mTimer        // its deadline, if any
	due       time.Duration // when it falls due

	cp      *mCopy // the copy that runs, or nil
	stuck   bool   // declared stuck and its copy has not returned
	stuckAs string // its *StuckError as an atom while stuck (stuck:s/c, +cause)
	removed bool   // deleted from its supervisor
	queued  bool   // waits in the start queue (Starting, no copy)
	gen     int    // counts Terminate and Remove: group restarts queued before skip it

	holdOff       bool // Terminate: the next Serve leaves it Stopped, until Restart or a group restart
	startOnReturn bool // start it again as soon as its stuck copy returns
	isRestart     bool // its next start is a restart, counted when it happens
	removeOnStop  bool // Remove asked for it: delete it once its copy returns
	exitErr       mErr // what its latest exit that asked for a restart returned
	waiters       []*mCall
}

// mJob is a queued stop: the children of stop, one at a time in that order,
// then, for a group restart (trigger set), the children of start in order,
// not before at (the trigger's backoff delay).
type mJob struct {
	stop    []mStop
	start   []mMember
	trigger *mChild
	at      time.Duration
}

// mStop is a child that a job stops, with the copy that ran and the child's
// gen when the job was queued; group marks a group restart's stop, which
// also stops a copy an earlier group restart started since.
type mStop struct {
	c     *mChild
	cp    *mCopy
	gen   int
	group bool
}

// mMember is a child that a group restart starts, unless Terminate or Remove
// was called on it after the group restart was queued (gen changed).
type mMember struct {
	c   *mChild
	gen int
}

// mCall is one call of the dynamic API and its answer.
type mCall struct {
	kind       string // "add", "terminate", "restart" or "remove"
	name       string
	child      *mChild // the new child of an add
	done       bool
	result     string // as modelClassify names errors: "", "notfound", "stuck:s/c+hung", ...
	behindStop bool   // it waits for a hung child, queued behind another child's stop
}

// mSup is the model of one supervisor.
type mSup struct {
	m        *model
	name     string
	id       int // serial number, for the offsets of its durations
	strategy Strategy
	maxR     int
	period   time.Duration
	auto     AutoShutdown
	backoff  time.Duration // WithBackoff(ConstantBackoff(backoff)); 0: none
	children []*mChild     // start order
	real     *Supervisor
	owner    *mSup   // the parent, nil for the root
	self     *mChild // its record in the parent, nil for the root

	serving    bool
	shutting   bool
	failed     bool            // it shuts down with an error (intensity)
	readySent  bool            // this Serve signalled its readiness
	result     mErr            // what Serve will return so far
	restartsAt []time.Duration // the restarts of this Serve, for the intensity
	jobs       []*mJob
	delayed    []*mJob   // group restarts whose stops are done, waiting for their delay
	cur        *mChild   // the child being stopped and waited for
	queue      []*mChild // starts waiting for waiting's readiness, in start order
	waiting    *mChild   // the started child whose readiness the queue waits for
	orphans    []*mSup   // nested supervisors removed in this Serve while children of theirs were stuck
}

// path is s's path in its tree.
func (s *mSup) path() string {
	if s.owner == nil || s.self == nil {
		return s.name
	}
	return s.owner.path() + "/" + s.self.name
}

// stuckPaths are the paths of what leftovers reports.
func (s *mSup) stuckPaths() []string {
	if s.serving {
		return nil
	}
	var out []string
	for _, c := range s.children {
		switch {
		case c.cp != nil && c.stuck:
			out = append(out, s.path()+"/"+c.name)
		case c.sub != nil && c.cp == nil:
			out = append(out, c.sub.stuckPaths()...)
		}
	}
	return out
}

// mEvent is a copy's return (c, cp, err), with ready its readiness signal,
// or, with done, the cancellation of a supervisor's Serve context.
type mEvent struct {
	s     *mSup
	c     *mChild
	cp    *mCopy
	err   mErr
	ready bool
	done  bool
}

// model is the whole tree: the clock, the event queue and every supervisor.
type model struct {
	now       time.Duration
	gen       int // counts quiet points: step boundaries and deadlines
	queue     []mEvent
	sups      []*mSup
	root      *mSup
	rootDone  bool
	rootErr   mErr
	ambiguous string // why the real tree's next state is up to the Go scheduler
	cov       map[string]int
}

// note counts an event of interest, to report what the cases covered.
func (m *model) note(what string) {
	if m.cov == nil {
		m.cov = map[string]int{}
	}
	m.cov[what]++
}

// off reports whether the model no longer predicts the real tree: the case
// ran into scheduler-dependent behaviour, and stops.
func (m *model) off() bool { return m.ambiguous != "" }

// post queues an event.
func (m *model) post(ev mEvent) { m.queue = append(m.queue, ev) }

// settle handles queued events until none is left, as the real tree does
// before synctest.Wait returns.
func (m *model) settle() {
	for len(m.queue) > 0 {
		ev := m.queue[0]
		m.queue = m.queue[1:]
		switch {
		case ev.done:
			if ev.s.serving {
				ev.s.shutdown(nil)
			}
		case ev.ready && !ev.s.serving:
			// Ignored: readiness means nothing between Serves
			// (TestRegressionReadyOfStuckCopyOffline).
		case ev.ready:
			ev.s.readied(ev.c, ev.cp)
		default:
			ev.s.exit(ev.c, ev.cp, ev.err)
		}
		ev.s.advance()
	}
}

// mDue is one deadline of the tree: a child's (c) or a group restart's
// waiting for its delay (j).
type mDue struct {
	s  *mSup
	c  *mChild
	j  *mJob
	at time.Duration
}

// nextDue returns the earliest deadline of the tree, if any, and whether
// another one falls on the same instant.
func (m *model) nextDue() (first mDue, ok, tie bool) {
	consider := func(d mDue) {
		switch {
		case !ok || d.at < first.at:
			first, ok, tie = d, true, false
		case d.at == first.at:
			tie = true
		}
	}
	for _, s := range m.sups {
		if !s.serving {
			continue // a supervisor's deadlines end with its Serve
		}
		for _, c := range s.children {
			if c.timer != tNone {
				consider(mDue{s: s, c: c, at: c.due})
			}
		}
		for _, j := range s.delayed {
			consider(mDue{s: s, j: j, at: j.at})
		}
	}
	return first, ok, tie
}

// fire lets time pass up to the deadline d and handles it, unless another
// deadline falls on the same instant.
func (m *model) fire(d mDue, tie bool) {
	if tie {
		m.ambiguous = fmt.Sprintf("two deadlines at %v", d.at)
		return
	}
	m.now = d.at
	m.gen++
	s := d.s
	if j := d.j; j != nil {
		s.delayed = slices.DeleteFunc(s.delayed, func(x *mJob) bool { return x == j })
		s.startGroup(j)
	} else {
		c := d.c
		kind := c.timer
		c.timer = tNone
		switch kind {
		case tRestart:
			c.state, c.nextStart = Stopped, -1
			s.restartOne(c)
		case tStart:
			s.hang(c, causeStartTimeout)
		case tBeat:
			s.hang(c, causeHung)
		case tStop:
			s.timedOut(c)
		}
	}
	s.advance()
	m.settle()
}

// sleep lets d pass, handling the deadlines that fall within it.
func (m *model) sleep(d time.Duration) {
	end := m.now + d
	for !m.off() {
		t, ok, tie := m.nextDue()
		if !ok || t.at > end {
			break
		}
		m.fire(t, tie)
	}
	m.now = end
}

// callAsync makes an API call on s without waiting for its answer, as a
// call made from another goroutine does.
func (m *model) callAsync(s *mSup, c *mCall) {
	if s.serving {
		s.handle(c)
		s.advance()
		m.settle()
	} else {
		s.offline(c)
	}
}

// call makes an API call on s and lets time pass until it is answered, as a
// blocking call in the bubble does. It reports false if it would never be
// answered.
func (m *model) call(s *mSup, c *mCall) bool {
	m.callAsync(s, c)
	for !c.done && !m.off() {
		t, ok, tie := m.nextDue()
		if !ok {
			return false
		}
		m.fire(t, tie)
	}
	return true
}

// find returns the child named name, or nil.
func (s *mSup) find(name string) *mChild {
	for _, c := range s.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

// stuckAtom names c's StuckError, without its cause.
func (s *mSup) stuckAtom(c *mChild) string { return "stuck:" + s.name + "/" + c.name }

// begin is the start of a Serve: run state resets and every child starts in
// order, except one marked by Terminate, and one whose
// stuck copy from an earlier Serve still runs (it starts when that returns).
func (s *mSup) begin() {
	s.serving, s.shutting, s.failed, s.readySent = true, false, false, false
	s.result, s.restartsAt, s.jobs, s.delayed, s.cur = nil, nil, nil, nil, nil
	s.queue, s.waiting, s.orphans = nil, nil, nil
	for _, c := range slices.Clone(s.children) {
		c.restarts, c.lastErr, c.failures, c.exitErr = 0, nil, 0, nil
		c.startOnReturn, c.isRestart, c.nextStart, c.timer = false, false, -1, tNone
		c.ranThisServe = false
		switch {
		case c.cp != nil:
			s.m.note("serve again with a stuck child")
			c.state = Stuck
			c.startOnReturn = !c.holdOff
		case c.holdOff:
			c.state = Stopped
		default:
			s.start(c)
		}
	}
	s.checkReady()
}

// start runs a new copy of c, at once or, while an earlier start waits for
// its child's readiness, after it.
func (s *mSup) start(c *mChild) {
	if s.waiting != nil || len(s.queue) > 0 {
		s.m.note("start queued")
		c.queued, c.state = true, Starting
		i := 0
		for i < len(s.queue) && s.pos(s.queue[i]) < s.pos(c) {
			i++
		}
		s.queue = slices.Insert(s.queue, i, c)
		return
	}
	s.launch(c)
}

// pos returns c's position in start order.
func (s *mSup) pos(c *mChild) int { return slices.Index(s.children, c) }

// dequeue takes c out of the start queue, if it waits there.
func (s *mSup) dequeue(c *mChild) {
	if c.queued {
		c.queued, c.isRestart = false, false
		s.queue = slices.DeleteFunc(s.queue, func(x *mChild) bool { return x == c })
	}
}

// startQueued starts queued children in start order until one has to be
// waited for.
func (s *mSup) startQueued() {
	for s.waiting == nil && len(s.queue) > 0 && !s.shutting {
		c := s.queue[0]
		s.queue = s.queue[1:]
		c.queued = false
		s.m.note("queued start launched")
		s.launch(c)
	}
}

// launch runs a new copy of c now. A child with readiness, and a nested
// supervisor, is Starting until it signals; later starts wait for a child
// with readiness, up to its start timeout. A worker's heartbeats are watched
// from its readiness.
func (s *mSup) launch(c *mChild) {
	if c.isRestart { // a restart counts when it happens
		c.isRestart = false
		c.restarts++
	}
	now := s.m.now
	c.ranThisServe = true
	c.cp = &mCopy{gen: s.m.gen, start: now, beating: true, beatSince: now, lastBeat: -1}
	c.state, c.stuck, c.stuckAs, c.startedAt, c.timer = Running, false, "", now, tNone
	if c.readiness || c.sub != nil {
		c.state = Starting
	}
	switch {
	case c.readiness:
		s.waiting = c
		if c.startTimeout > 0 {
			c.timer, c.due = tStart, now+c.startTimeout
		}
	case c.sub == nil:
		s.watch(c)
	}
	if c.sub != nil {
		c.sub.begin()
	} else {
		c.starts++
	}
}

// watch starts watching the heartbeats of c's copy, if c has a period. A
// muted copy misses its period a whole period from now; one that beats
// never does (its ticks come more often than its period).
func (s *mSup) watch(c *mChild) {
	if c.heartbeat == 0 {
		return
	}
	cp := c.cp
	cp.watched, cp.beatFrom = true, s.m.now
	if !cp.beating {
		s.m.note("heartbeat watch of a muted copy")
		c.timer, c.due = tBeat, s.m.now+c.heartbeat
	}
}

// tickAfter returns the first tick of c's copy after t.
func (c *mChild) tickAfter(t time.Duration) time.Duration {
	tick := c.w.tick
	return c.cp.start + ((t-c.cp.start)/tick+1)*tick
}

// mute stops the heartbeats of c's copy now. Its last heartbeat is its
// last tick since it resumed beating (a tick at this very instant
// included), and it misses its period a period after that, or after its
// watch began.
func (s *mSup) mute(c *mChild) {
	cp := c.cp
	if !cp.beating {
		return
	}
	cp.beating = false
	tick := c.w.tick
	if last := cp.start + (s.m.now-cp.start)/tick*tick; last > cp.beatSince && last > cp.start {
		cp.lastBeat = last
	}
	if cp.watched && !cp.cancelled {
		s.m.note("heartbeat muted")
		c.timer, c.due = tBeat, max(cp.lastBeat, cp.beatFrom)+c.heartbeat
	}
}

// resume makes c's copy beat again from its next tick on: unless that tick
// comes after the end of its period, it is no longer hung.
func (s *mSup) resume(c *mChild) {
	cp := c.cp
	if cp.beating {
		return
	}
	cp.beating, cp.beatSince = true, s.m.now
	if c.timer != tBeat {
		return
	}
	switch t1 := c.tickAfter(s.m.now); {
	case t1 < c.due:
		s.m.note("heartbeat resumed in time")
		c.timer = tNone
	case t1 == c.due:
		s.m.ambiguous = fmt.Sprintf("%s's first heartbeat after resuming falls on the end of its period", c.name)
	default:
		s.m.note("heartbeat resumed too late")
	}
}

// isReady reports whether none of s's children is starting, restarting,
// stopping or stuck.
func (s *mSup) isReady() bool {
	for _, c := range s.children {
		switch c.state {
		case Starting, Restarting, Stopping, Stuck:
			return false
		}
	}
	return true
}

// checkReady signals s's readiness to its parent, once per Serve, at the
// first moment when all its children are ready and it does not shut down.
func (s *mSup) checkReady() {
	if !s.serving || s.shutting || s.readySent || !s.isReady() {
		return
	}
	s.readySent = true
	if s.self != nil {
		s.m.post(mEvent{s: s.owner, c: s.self, cp: s.self.cp, ready: true})
	}
}

// readied handles the readiness signal of copy cp of c.
func (s *mSup) readied(c *mChild, cp *mCopy) {
	if c.removed || c.cp != cp || c.state != Starting {
		s.m.note("readiness signal ignored")
		return // an old copy, or one being stopped
	}
	if c.sub != nil {
		s.m.note("nested supervisor ready")
	} else {
		s.m.note("worker ready")
	}
	if s.waiting == c {
		s.waiting = nil
	}
	c.state = Running
	if c.timer == tStart {
		s.m.note("ready within its start timeout")
		c.timer = tNone
	}
	if c.sub == nil {
		s.watch(c)
	}
}

// hang cancels c's copy as failed with cause: it missed its start timeout or
// its heartbeat period. Once it returns it fails with that cause, unless a
// stop claimed it meanwhile; starts waiting for its readiness wait on until
// it returns or is stuck.
func (s *mSup) hang(c *mChild, cause string) {
	cp := c.cp
	s.m.note("cancelled as failed: " + cause)
	if cp.claimed {
		s.m.note("cancelled as failed while a stop of it is queued")
	}
	if cp.deaf {
		s.m.note("cancelled as failed, ignores it: " + cause)
	}
	cp.cancelled, cp.hung, cp.cause = true, cause, cause
	c.state = Stopping
	c.timer, c.due = tStop, s.m.now+c.timeout
	if !cp.deaf {
		s.m.post(mEvent{s: s, c: c, cp: cp}) // returns ctx.Err()
	}
}

// exit handles the return of copy cp of c with err.
func (s *mSup) exit(c *mChild, cp *mCopy, err mErr) {
	if c.removed || cp == nil || c.cp != cp {
		return // not the current copy
	}
	stuckAs := c.stuckAs
	c.cp, c.stuck, c.stuckAs, c.timer = nil, false, "", tNone
	if s.cur == c {
		s.cur = nil
	}
	if s.waiting == c {
		s.waiting = nil
	}
	hungStuck := strings.Contains(stuckAs, "+")
	if !s.serving { // a stuck copy returned after its Serve did
		s.m.note("stuck copy returned offline")
		if c.removeOnStop || c.policy == Temporary {
			s.remove(c)
		} else {
			c.state = Stopped
		}
		return
	}
	// "A child that returns after its supervisor cancelled its context has
	// stopped"; so has one that a queued stop was about to stop, and every
	// child during shutdown. A copy cancelled as failed has failed, unless
	// a stop claimed it since.
	if cp.claimed || s.shutting {
		if !cp.cancelled && !s.shutting {
			s.m.note("exit while about to be stopped")
		}
		if cp.hung != "" {
			s.m.note("a copy cancelled as failed returned after a stop claimed it")
		}
		if hungStuck {
			switch {
			case c.removeOnStop:
				s.m.note("D1: a stuck copy cancelled as failed returned after Remove: deleted")
			case c.holdOff:
				s.m.note("D1: a stuck copy cancelled as failed returned after Terminate: stopped")
			default:
				s.m.note("a stuck copy cancelled as failed returned after a stop claimed it")
			}
		}
		below := ""
		if c.sub != nil && err.hasStuck() {
			// Its children that outlived it: Terminate and Remove return
			// them; Serve's result reports them at its end if still stuck.
			s.m.note("stuck child reported from below")
			below = firstStuck(err)
		}
		if !cp.cancelled && err != nil {
			c.lastErr = err
		}
		s.stopped(c, below)
		return
	}
	if cp.hung != "" {
		if hungStuck {
			s.m.note("a stuck copy cancelled as failed returned: it fails")
		} else {
			s.m.note("a copy cancelled as failed returned: it fails")
		}
		err = mErr{cp.hung} // whatever it returned
	}
	s.exitedByItself(c, err)
}

// willStart reports whether a pending group restart (queued, or waiting for
// its delay) will start c: one queued after the last Terminate or Remove of
// c.
func (s *mSup) willStart(c *mChild) bool {
	for _, j := range slices.Concat(s.jobs, s.delayed) {
		if slices.Contains(j.start, mMember{c, c.gen}) {
			return true
		}
	}
	return false
}

// stopped settles c after the supervisor stopped it; below is what its
// waiters get.
func (s *mSup) stopped(c *mChild, below string) {
	switch {
	case c.removeOnStop || c.policy == Temporary:
		if c.sub != nil && below != "" && s.serving {
			s.m.note("nested supervisor removed with a stuck child")
			s.orphans = append(s.orphans, c.sub) // Health and Serve's result still name them
		}
		s.answer(c, below)
		s.remove(c)
		return
	case c.startOnReturn && !s.shutting:
		s.m.note("started when its stuck copy returned")
		c.startOnReturn = false
		s.start(c)
	case s.willStart(c):
		// A group restart queued after its Terminate will start it: it is
		// Restarting (State's doc), as it is when it had returned before
		// that group restart was queued.
		if c.holdOff {
			s.m.note("terminated child stopped, a later group restart will start it")
		}
		c.state = Restarting
	default:
		c.state = Stopped
	}
	s.answer(c, below)
}

// firstStuck is the first stuck atom of e, as the real side's classify
// finds the first *StuckError.
func firstStuck(e mErr) string {
	for _, a := range e {
		if strings.HasPrefix(a, "stuck:") {
			return a
		}
	}
	return ""
}

// leftovers are the stuck atoms of s's children still stuck, and of those
// of nested supervisors that no longer run, while s does not serve.
func (s *mSup) leftovers() mErr {
	if s.serving {
		return nil // served again: it reports its own
	}
	var out mErr
	for _, c := range s.children {
		switch {
		case c.cp != nil && c.stuck:
			out = append(out, c.stuckAs)
		case c.sub != nil && c.cp == nil:
			out = append(out, c.sub.leftovers()...)
		}
	}
	return out
}

// needsRestart is the restart policy: Permanent always, Transient after a
// failure, Temporary never.
func needsRestart(p RestartPolicy, failed bool) bool {
	return p == Permanent || (p == Transient && failed)
}

// triggers reports whether c triggered a group restart that waits for its
// delay.
func (s *mSup) triggers(c *mChild) bool {
	return slices.ContainsFunc(s.delayed, func(j *mJob) bool { return j.trigger == c })
}

// exitedByItself applies the restart policy, backoff, strategy and
// intensity to c.
func (s *mSup) exitedByItself(c *mChild, err mErr) {
	if err != nil {
		c.lastErr = err
	}
	if s.triggers(c) {
		s.m.note("D5: the trigger of a group restart waiting for its delay exits again")
	}
	if !needsRestart(c.policy, err != nil) {
		if c.policy == Temporary {
			s.remove(c)
		} else {
			c.state = Stopped
		}
		if c.significant {
			s.m.note("significant exit")
			s.significantExit()
		}
		return
	}
	c.exitErr = err
	if s.m.now-c.startedAt >= DefaultBackoffReset {
		s.m.note("failures reset after a long run")
		c.failures = 0 // it ran long enough to count as healthy again
	}
	c.failures++
	if s.strategy != OneForOne {
		c.state = Stopped
		s.groupRestart(c, s.m.now+c.backoff)
		return
	}
	if c.backoff > 0 {
		s.m.note("restart waits for its backoff")
		c.state, c.timer, c.due, c.nextStart = Restarting, tRestart, s.m.now+c.backoff, s.m.now+c.backoff
		return
	}
	s.restartOne(c)
}

// restartOne restarts c now, within the intensity.
func (s *mSup) restartOne(c *mChild) {
	if !s.allow() {
		s.escalate(c, c.exitErr)
		return
	}
	s.m.note("one for one restart")
	c.isRestart = true // counted when it starts
	s.start(c)
}

// allow records a restart now if the intensity allows it: at most maxR
// restarts within any window of length period, its boundary included.
func (s *mSup) allow() bool {
	n := 0
	for _, t := range s.restartsAt {
		if t >= s.m.now-s.period {
			n++
		}
	}
	if n >= s.maxR {
		return false
	}
	s.restartsAt = append(s.restartsAt, s.m.now)
	return true
}

// groupRestart queues the OneForAll or RestForOne restart that c's exit asks
// for: stop the group's running children in reverse start order, then start
// its non-temporary children in start order, not before at. It takes the
// place of the pending starts of the group's children that do not run: a
// queued start, and a group restart one of them triggered that waits for
// its delay.
func (s *mSup) groupRestart(c *mChild, at time.Duration) {
	g := s.children
	if s.strategy == RestForOne {
		g = g[slices.Index(g, c):]
	}
	g = slices.Clone(g)
	s.m.note("group restart")
	if at > s.m.now {
		s.m.note("group restart with a delay")
	}
	if len(s.jobs) > 0 {
		s.m.note("group restart queued behind another job")
	}
	j := &mJob{trigger: c, at: at}
	for _, x := range g {
		if x.cp != nil {
			continue
		}
		s.dropDelayed(x)
		if x.queued { // the group restart starts it instead
			s.m.note("queued start taken over by a group restart")
			s.dequeue(x)
			if x.policy == Temporary {
				s.remove(x)
			} else {
				x.state = Stopped
			}
		}
	}
	for i := len(g) - 1; i >= 0; i-- {
		if x := g[i]; x.cp != nil {
			x.cp.claimed = true
			if x.cp.hung != "" {
				s.m.note("group restart claims a copy cancelled as failed")
			}
			j.stop = append(j.stop, mStop{x, x.cp, x.gen, true})
		}
	}
	for _, x := range g {
		if x.policy == Temporary || x.removed {
			continue // stopped and removed
		}
		x.nextStart = at
		j.start = append(j.start, mMember{x, x.gen})
		if x.cp == nil {
			x.state = Restarting
		}
	}
	s.jobs = append(s.jobs, j)
}

// dropDelayed drops the group restarts that trigger's exits queued and that
// wait for their delay: a new group restart takes their place.
func (s *mSup) dropDelayed(trigger *mChild) {
	for _, j := range slices.Clone(s.delayed) {
		if j.trigger != trigger {
			continue
		}
		s.m.note("a group restart takes the place of one waiting for its delay")
		s.delayed = slices.DeleteFunc(s.delayed, func(x *mJob) bool { return x == j })
		for _, m := range j.start {
			if x := m.c; m.gen == x.gen && !s.willStart(x) {
				x.nextStart = -1
				if x.cp == nil && x.state == Restarting && !x.queued {
					x.state = Stopped
				}
			}
		}
	}
}

// advance runs the queued jobs as far as they go without waiting for a
// child, then ends Serve if the shutdown is complete.
func (s *mSup) advance() {
	if !s.serving {
		return
	}
	for s.cur == nil && len(s.jobs) > 0 {
		j := s.jobs[0]
		if len(j.stop) > 0 {
			x, st := j.stop[0].c, j.stop[0]
			j.stop = j.stop[1:]
			switch {
			case x.cp == nil || x.stuck:
			case x.cp != st.cp && (!st.group || x.gen != st.gen):
				// The copy it was queued for returned by itself, and
				// Restart (or Terminate and Restart) started a new one
				// since: the stop is not for that one
				// (TestRegressionStaleGroupRestartStopsRestartedChild,
				// TestHostileStaleTerminateStopsRestartedCopy). A copy that
				// an earlier group restart started is stopped by a group
				// restart's stop: the group restarts run one after the other.
				s.m.note("a stale stop spares a restarted copy")
			default:
				s.beginStop(x)
			}
			continue
		}
		s.jobs = s.jobs[1:]
		switch {
		case j.trigger == nil:
		case j.at > s.m.now && !s.shutting:
			s.m.note("group restart waits for its trigger's delay")
			s.delayed = append(s.delayed, j)
		default:
			s.startGroup(j)
		}
	}
	s.startQueued()
	if s.shutting && s.cur == nil && len(s.jobs) == 0 {
		s.end()
		return
	}
	s.checkReady()
}

// beginStop cancels x and waits for it, up to its shutdown timeout: a copy
// already cancelled as failed is claimed (its return is a stop) and its
// shutdown timeout runs on.
func (s *mSup) beginStop(x *mChild) {
	x.state = Stopping
	s.cur = x
	if s.waiting == x {
		s.m.note("stop of the child the queue waits for")
		s.waiting = nil
	}
	cp := x.cp
	cp.claimed, cp.hung = true, ""
	if cp.cancelled {
		s.m.note("stop of a copy cancelled as failed")
		return
	}
	cp.cancelled = true
	if x.sub == nil {
		x.timer, x.due = tStop, s.m.now+x.timeout
	} else {
		x.timer = tNone
	}
	switch {
	case x.sub != nil:
		if cp.gen == s.m.gen {
			// The nested Serve was started in this same chain of events:
			// whether its goroutine saw its context live (and began) or
			// already done (and returned at once, starting nothing) is up to
			// the scheduler.
			s.m.ambiguous = fmt.Sprintf("%s started and stopped %s in one chain of events", s.name, x.name)
		}
		s.m.post(mEvent{s: x.sub, done: true})
	case !cp.deaf:
		s.m.post(mEvent{s: s, c: x, cp: cp}) // returns ctx.Err(): a stop
	}
}

// timedOut declares c, whose shutdown timeout passed, stuck. Its
// *StuckError unwraps to why it was cancelled as failed, if it was, also
// when a stop claimed it since.
func (s *mSup) timedOut(c *mChild) {
	s.m.note("stuck")
	cause := c.cp.cause
	c.state, c.stuck, c.stuckAs = Stuck, true, s.stuckAtom(c)
	if cause != "" {
		s.m.note("stuck after a cancellation as failed: " + cause)
		c.stuckAs += "+" + cause
	}
	if s.cur == c {
		s.cur = nil
	}
	if s.waiting == c {
		s.m.note("stuck while the start queue waits for it")
		s.waiting = nil
	}
	for _, w := range c.waiters {
		if w.behindStop {
			s.m.note("D2: " + w.kind + " of a hung child, queued behind another stop, answered when it is stuck")
		}
	}
	s.answer(c, c.stuckAs)
}

// startGroup performs a group restart's starts, within the intensity. A
// child still stuck starts when its copy returns.
func (s *mSup) startGroup(j *mJob) {
	allowed := s.allow()
	for _, m := range j.start {
		if m.c == j.trigger && m.gen != m.c.gen {
			s.m.note("D5: a group restart goes on after its trigger was terminated")
		}
	}
	for _, m := range j.start {
		x := m.c
		if !s.willStart(x) {
			x.nextStart = -1
		}
		switch {
		case m.gen != x.gen || !allowed || x.removed:
			if m.gen != x.gen {
				s.m.note("group restart skips a child terminated after it was queued")
			}
			if x.cp == nil && x.state == Restarting && !x.queued && !s.willStart(x) {
				x.state = Stopped
			}
		case x.queued:
			// It waits to start already, put there by an earlier group
			// restart or Restart: it starts once
			// (TestRegressionGroupRestartQueuesChildTwice).
			s.m.note("group restart finds a member queued")
		case x.cp == nil:
			// A start of a child that never ran in this Serve (its first
			// start waited in the queue) is its first start, not a restart.
			if !x.ranThisServe {
				s.m.note("group restart gives a child its first start")
			}
			x.isRestart, x.holdOff = x.ranThisServe, false
			s.start(x)
		case x.stuck && !x.startOnReturn:
			s.m.note("group restart of a stuck child")
			x.startOnReturn = true
			x.isRestart, x.holdOff = x.ranThisServe, false
		case x.stuck:
			// Its start is due when it returns already: the first of this
			// Serve, or an earlier group restart's.
			s.m.note("group restart of a stuck child already due to start")
		}
	}
	if !allowed {
		// The error wraps the trigger's latest failure that asked for a
		// restart ("the failure that triggered the last restart request",
		// errors.go), which may be newer than the one that queued j.
		s.escalate(j.trigger, j.trigger.exitErr)
	}
}

// escalate shuts the supervisor down because c's restart would exceed the
// intensity; Serve's error wraps the failure.
func (s *mSup) escalate(c *mChild, err mErr) {
	if c.cp == nil {
		c.state = Stopped
	}
	s.m.note("intensity exceeded")
	if s.self != nil {
		s.m.note("nested intensity exceeded")
	}
	s.shutdown(joinErr(mErr{"intensity"}, err))
}

// significantExit applies automatic shutdown after a significant child
// exited by itself and was not restarted.
func (s *mSup) significantExit() {
	switch s.auto {
	case AnySignificant:
		s.m.note("auto shutdown")
		s.shutdown(nil)
	case AllSignificant:
		for _, x := range s.children {
			if x.significant && (x.cp != nil || x.state != Stopped) {
				return
			}
		}
		s.m.note("auto shutdown")
		s.shutdown(nil)
	}
}

// shutdown drops pending starts (queued ones, delayed restarts, group
// restarts) and queues the stop of every running child in reverse start
// order; their returns are stops. Start timeouts and heartbeats are still
// watched until a child's stop begins.
func (s *mSup) shutdown(reason mErr) {
	if s.shutting {
		return
	}
	s.shutting, s.failed, s.result = true, reason != nil, reason
	for _, x := range s.queue {
		x.queued, x.isRestart, x.state = false, false, Stopped
	}
	s.queue, s.waiting, s.delayed = nil, nil, nil
	var stop []mStop
	for i := len(s.children) - 1; i >= 0; i-- {
		x := s.children[i]
		x.startOnReturn, x.isRestart, x.nextStart = false, false, -1
		if x.timer == tRestart {
			s.m.note("shutdown drops a delayed restart")
			x.timer = tNone
		}
		if x.cp != nil {
			x.cp.claimed = true
			stop = append(stop, mStop{c: x, cp: x.cp, gen: x.gen})
		} else if x.state == Restarting {
			x.state = Stopped
		}
	}
	s.jobs = []*mJob{{stop: stop}}
}

// end finishes Serve: temporary children are gone (those still stuck once
// their copy returns), and Serve's error joins the reason, the stuck
// children reported from below and those still stuck. The parent sees the
// return as an exit of its child.
func (s *mSup) end() {
	res := s.result
	for _, c := range slices.Clone(s.children) {
		c.timer, c.nextStart = tNone, -1 // the deadlines end with Serve
		switch {
		case c.cp != nil:
			if !c.stuck {
				panic("model: a child runs after Serve returned without being stuck: " + c.name)
			}
			res = joinErr(res, mErr{c.stuckAs})
			if c.policy == Temporary {
				c.removeOnStop = true
			}
		case c.policy == Temporary:
			s.remove(c)
		case c.sub != nil:
			res = joinErr(res, c.sub.leftovers()) // what stopped nested supervisors left stuck
		}
	}
	for _, o := range s.orphans {
		res = joinErr(res, o.leftovers())
	}
	s.serving, s.shutting, s.jobs, s.delayed, s.orphans = false, false, nil, nil, nil
	if s.self == nil {
		s.m.rootDone, s.m.rootErr = true, res
		return
	}
	s.m.post(mEvent{s: s.owner, c: s.self, cp: s.self.cp, err: res})
}

// remove deletes c and answers its waiters.
func (s *mSup) remove(c *mChild) {
	c.removed = true
	c.state, c.timer = Stopped, tNone
	s.children = slices.DeleteFunc(s.children, func(x *mChild) bool { return x == c })
	s.answer(c, "")
}

// answer answers the calls waiting for c.
func (s *mSup) answer(c *mChild, result string) {
	for _, w := range c.waiters {
		w.done, w.result = true, result
	}
	c.waiters = nil
}

// reply answers c at once.
func (c *mCall) reply(result string) { c.done, c.result = true, result }

// handle answers an API call while the supervisor serves (or shuts down).
func (s *mSup) handle(call *mCall) {
	if call.kind == "add" && call.child == nil {
		call.reply("invalid")
		return
	}
	if s.shutting && (call.kind == "add" || call.kind == "restart") {
		s.offline(call) // it edits the specs for the next Serve
		return
	}
	if call.kind == "add" {
		if x := s.find(call.name); x != nil {
			if x.removeOnStop {
				s.m.note("add under the name of a removed child whose copy runs")
			}
			call.reply("exists")
			return
		}
		s.children = append(s.children, call.child)
		s.start(call.child)
		call.reply("")
		return
	}
	c := s.find(call.name)
	if c == nil {
		call.reply("notfound")
		return
	}
	if call.kind == "restart" {
		if c.cp != nil || c.queued || c.state == Restarting {
			call.reply("running")
			return
		}
		c.holdOff, c.failures = false, 0
		if s.hasStale(c) {
			s.m.note("restart while a group restart from before its terminate is queued")
		}
		if s.triggers(c) {
			s.m.note("D5: restart of the trigger of a group restart waiting for its delay")
		}
		s.start(c)
		call.reply("")
		return
	}
	// Terminate or Remove: group restarts queued before this call do not
	// start c; those queued after it do.
	c.gen++
	c.startOnReturn, c.isRestart, c.nextStart = false, false, -1
	c.holdOff = true // kept Stopped, also by the next Serve, until Restart or a group restart
	if call.kind == "remove" {
		c.removeOnStop = true
	}
	switch {
	case c.cp == nil:
		switch {
		case c.queued:
			s.m.note("terminate a queued start")
		case c.timer == tRestart:
			s.m.note("terminate a delayed restart")
		case c.state == Restarting:
			s.m.note("terminate a member of a pending group restart")
			if s.triggers(c) {
				s.m.note("D5: terminate the trigger of a group restart waiting for its delay")
			}
		}
		s.dequeue(c)
		c.timer = tNone
		if c.removeOnStop || c.policy == Temporary {
			s.remove(c)
		} else {
			c.state = Stopped
		}
		call.reply("")
	case c.stuck:
		c.cp.claimed = true // its return is a stop, not the failure it was cancelled for
		if strings.Contains(c.stuckAs, "+") {
			s.m.note("D1: " + call.kind + " of a stuck copy cancelled as failed")
		}
		call.reply(c.stuckAs)
	default:
		if s.cur != nil || len(s.jobs) > 0 {
			s.m.note("call queued behind a stop")
			if c.cp.hung != "" && s.cur != nil && s.cur != c {
				s.m.note("D2: " + call.kind + " of a hung child queued behind another stop")
				call.behindStop = true
			}
		}
		c.waiters = append(c.waiters, call)
		if !c.cp.claimed {
			c.cp.claimed = true
			if !s.shutting {
				s.jobs = append(s.jobs, &mJob{stop: []mStop{{c: c, cp: c.cp, gen: c.gen}}})
			}
		}
	}
}

// hasStale reports whether a pending group restart has c as a member from
// before its latest Terminate or Remove.
func (s *mSup) hasStale(c *mChild) bool {
	for _, j := range slices.Concat(s.jobs, s.delayed) {
		for _, m := range j.start {
			if m.c == c && m.gen != c.gen {
				return true
			}
		}
	}
	return false
}

// offline answers an API call while the supervisor does not serve: the calls
// edit the specs for the next Serve.
func (s *mSup) offline(call *mCall) {
	s.m.note("offline call")
	if call.kind == "add" {
		switch {
		case call.child == nil:
			call.reply("invalid")
		case s.find(call.name) != nil:
			call.reply("exists")
		default:
			s.children = append(s.children, call.child)
			call.reply("")
		}
		return
	}
	c := s.find(call.name)
	if c == nil {
		call.reply("notfound")
		return
	}
	switch call.kind {
	case "restart":
		if c.cp != nil {
			call.reply("running")
			return
		}
		c.holdOff, c.failures = false, 0
	case "terminate", "remove":
		c.holdOff = true
		if call.kind == "remove" {
			c.removeOnStop = true
		}
		if c.cp != nil { // stuck: its return is a stop
			c.cp.claimed = true
			if strings.Contains(c.stuckAs, "+") {
				s.m.note("D1: offline " + call.kind + " of a stuck copy cancelled as failed")
			}
			call.reply(c.stuckAs)
			return
		}
		if c.removeOnStop || c.policy == Temporary { // as while serving: a temporary child is removed when it stops
			s.remove(c)
		}
	}
	call.reply("")
}

// ---------------------------------------------------------------------------
// The real tree's workers.

// Worker commands sent by the test to a worker's running copy.
const (
	cmdFail    = iota // return an error
	cmdExit           // return nil
	cmdPanic          // panic with an error value
	cmdHang           // ignore cancellation until cmdRelease
	cmdRelease        // heed cancellation again (return now if cancelled)
	cmdReady          // call Ready on its context
	cmdMute           // stop calling Heartbeat at its ticks
	cmdBeat           // call Heartbeat at its ticks again
)

// wcmd is one command for a worker copy.
type wcmd struct {
	kind int
	err  error
}

// ctrl is a real worker steered by the test: each copy blocks on cmd (and on
// its context unless told to hang) and counts itself in running, so that two
// copies at once are caught. With a tick, each copy calls Heartbeat at every
// tick of its own ticker, from its start, until muted.
type ctrl struct {
	name    string
	cmd     chan wcmd
	tick    time.Duration // set before the worker is added; 0: no heartbeats
	running atomic.Int32
	starts  atomic.Int32
	overlap atomic.Bool
}

// Serve runs one copy.
func (w *ctrl) Serve(ctx context.Context) error {
	if w.running.Add(1) > 1 {
		w.overlap.Store(true)
	}
	defer w.running.Add(-1)
	w.starts.Add(1)
	var ticks <-chan time.Time
	if w.tick > 0 {
		t := time.NewTicker(w.tick)
		defer t.Stop()
		ticks = t.C
	}
	deaf, beating := false, true
	for {
		var done <-chan struct{}
		if !deaf {
			done = ctx.Done()
		}
		select {
		case <-done:
			return ctx.Err()
		case <-ticks:
			if beating {
				Heartbeat(ctx)
			}
		case c := <-w.cmd:
			switch c.kind {
			case cmdFail:
				return c.err
			case cmdExit:
				return nil
			case cmdPanic:
				panic(c.err)
			case cmdHang:
				deaf = true
			case cmdRelease:
				deaf = false
			case cmdReady:
				Ready(ctx)
			case cmdMute:
				beating = false
			case cmdBeat:
				beating = true
			}
		}
	}
}

// ---------------------------------------------------------------------------
// The property.

// TestModel checks the engine against the reference model on random trees
// and random steps.
func TestModel(t *testing.T) {
	cov := map[string]int{}
	rapid.Check(t, func(rt *rapid.T) {
		// rapid.SyncTest runs the case in a synctest.Test bubble and hands
		// failures back to rapid for shrinking.
		rapid.SyncTest(rt, func(rt *rapid.T) {
			h := &harness{rt: rt}
			h.run()
			for k, n := range h.m.cov {
				cov[k] += n
			}
			cov["cases"]++
			cov["steps"] += h.ran
		})
	})
	keys := slices.Sorted(maps.Keys(cov))
	for _, k := range keys {
		t.Logf("%6d %s", cov[k], k)
	}
}

// Step counts: a case runs between modelMinSteps and modelMaxSteps steps.
const (
	modelMinSteps = 30
	modelMaxSteps = 120
)

// maxDeaf is how many worker copies may ignore cancellation at once.
const maxDeaf = 2

// harness drives one case: the model, the real tree and the generator.
type harness struct {
	rt     *rapid.T
	m      *model
	t0     time.Time // the real time at the model's time 0
	ctx    context.Context
	cancel context.CancelFunc
	done   chan error // what the root's Serve returned, put back when read
	bgCtx  context.Context
	bgStop context.CancelFunc // ends the calls made in the background
	bg     []*bgCall          // calls made in the background, not answered yet
	ctrls  []*ctrl
	atoms  map[error]string // the errors workers returned or panicked with
	byAtom map[string]error // and back
	names  int              // serial for fresh names
	errs   int              // serial for fresh errors
	ran    int              // steps run
}

// bgCall is a Terminate or Remove made in the background, from its own
// goroutine: checked at every step, it must be answered exactly when the
// model answers it.
type bgCall struct {
	call *mCall
	desc string
	res  chan error
}

// fresh returns a new name with the given prefix.
func (h *harness) fresh(prefix string) string {
	h.names++
	return fmt.Sprintf("%s%d", prefix, h.names)
}

// newErr returns a fresh error value that errAtoms names.
func (h *harness) newErr(prefix string) error {
	h.errs++
	err := fmt.Errorf("%s#%d", prefix, h.errs)
	h.atoms[err] = err.Error()
	h.byAtom[err.Error()] = err
	return err
}

// run is one case.
func (h *harness) run() {
	rt := h.rt
	h.atoms, h.byAtom = map[error]string{}, map[string]error{}
	h.m = &model{}
	depth := rapid.IntRange(1, 3).Draw(rt, "depth")
	rootReal, root := h.drawSup(1, depth)
	h.m.root = root

	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.done = make(chan error, 1)
	h.bgCtx, h.bgStop = context.WithCancel(context.Background())
	defer h.cleanup()
	h.t0 = time.Now()
	go func() { h.done <- rootReal.Serve(h.ctx) }()
	synctest.Wait()
	root.begin()
	h.m.settle()
	h.check("start")

	steps := rapid.IntRange(modelMinSteps, modelMaxSteps).Draw(rt, "steps")
	for i := 0; i < steps && !h.m.off(); i++ {
		h.step(i)
		h.ran++
	}
	if h.m.ambiguous != "" {
		h.m.note("ended early: ambiguous")
		rt.Logf("stopping early: %s", h.m.ambiguous)
		return
	}
	h.finish()
}

// drawSup draws a supervisor at depth d of at most maxDepth levels, with its
// children, and builds it in the real tree and the model.
func (h *harness) drawSup(d, maxDepth int) (*Supervisor, *mSup) {
	rt := h.rt
	name := h.fresh("s")
	s := &mSup{
		m:        h.m,
		name:     name,
		id:       h.names,
		strategy: rapid.SampledFrom([]Strategy{OneForOne, OneForAll, RestForOne}).Draw(rt, "strategy"),
		maxR:     rapid.IntRange(0, 4).Draw(rt, "maxR"),
		period:   rapid.SampledFrom([]time.Duration{time.Second, 2 * time.Second, 5 * time.Second}).Draw(rt, "period"),
		auto:     rapid.SampledFrom([]AutoShutdown{noAutoShutdown, noAutoShutdown, AnySignificant, AllSignificant}).Draw(rt, "auto"),
		backoff:  rapid.SampledFrom([]time.Duration{0, 0, 400 * time.Millisecond, 1300 * time.Millisecond}).Draw(rt, "backoff"),
	}
	opts := []Option{WithLogger(nil), WithStrategy(s.strategy), WithIntensity(s.maxR, s.period), WithAutoShutdown(s.auto)}
	if s.backoff > 0 {
		s.backoff += time.Duration(s.id) * time.Millisecond
		opts = append(opts, WithBackoff(ConstantBackoff(s.backoff)))
	}
	s.real = New(name, opts...)
	h.m.sups = append(h.m.sups, s)
	n := rapid.IntRange(1, 5).Draw(rt, "children")
	for range n {
		var c *mChild
		var w Worker
		if d < maxDepth && rapid.IntRange(0, 2).Draw(rt, "nested") == 0 {
			subReal, sub := h.drawSup(d+1, maxDepth)
			c = &mChild{name: sub.name, id: sub.id, sub: sub, nextStart: -1}
			sub.owner, sub.self = s, c
			w = subReal
		} else {
			c = h.newWorker()
			w = c.w
		}
		opts := h.drawChildOpts(s, c, false)
		if err := s.real.Add(c.name, w, opts...); err != nil {
			rt.Fatalf("building the tree: Add %s to %s: %v", c.name, s.name, err)
		}
		s.children = append(s.children, c)
	}
	return s.real, s
}

// newWorker returns the model record of a new worker with its real ctrl.
func (h *harness) newWorker() *mChild {
	w := &ctrl{name: h.fresh("w"), cmd: make(chan wcmd)}
	h.ctrls = append(h.ctrls, w)
	return &mChild{name: w.name, id: h.names, w: w, nextStart: -1}
}

// drawChildOpts draws c's restart policy, significance, readiness and start
// timeout, backoff, and for a worker its shutdown timeout and heartbeat
// period; sets them on c and returns them as options. With invalidOK it may
// draw a significant child that Add rejects. A worker's durations carry an
// offset of its own, so that deadlines rarely coincide.
func (h *harness) drawChildOpts(s *mSup, c *mChild, invalidOK bool) []ChildOption {
	rt := h.rt
	off := time.Duration(c.id) * time.Millisecond
	c.policy = rapid.SampledFrom([]RestartPolicy{Permanent, Transient, Temporary}).Draw(rt, "policy")
	opts := []ChildOption{WithRestart(c.policy)}
	if (s.auto != noAutoShutdown && c.policy != Permanent) || invalidOK {
		c.significant = rapid.Bool().Draw(rt, "significant")
		if c.significant {
			opts = append(opts, WithSignificant())
		}
	}
	if rapid.IntRange(0, 3).Draw(rt, "readiness") == 0 {
		c.readiness = true
		if c.sub == nil {
			c.startTimeout = rapid.SampledFrom([]time.Duration{0, 0, 1300 * time.Millisecond, 3100 * time.Millisecond}).Draw(rt, "startTimeout")
			if c.startTimeout > 0 {
				c.startTimeout += 3 * off
			}
		}
		opts = append(opts, WithReadiness(c.startTimeout))
	}
	c.backoff = s.backoff
	if rapid.IntRange(0, 5).Draw(rt, "childBackoff") == 0 {
		c.backoff = rapid.SampledFrom([]time.Duration{0, 600 * time.Millisecond}).Draw(rt, "backoff")
		if c.backoff > 0 {
			c.backoff += 5 * off
		}
		opts = append(opts, WithBackoff(ConstantBackoff(c.backoff)))
	}
	if c.sub == nil {
		c.timeout = rapid.SampledFrom([]time.Duration{200 * time.Millisecond, 700 * time.Millisecond, 1500 * time.Millisecond}).Draw(rt, "timeout") + off
		opts = append(opts, WithShutdownTimeout(c.timeout))
		if rapid.IntRange(0, 2).Draw(rt, "heartbeat") == 0 {
			c.heartbeat = rapid.SampledFrom([]time.Duration{800 * time.Millisecond, 1700 * time.Millisecond}).Draw(rt, "period") + 2*off
			c.w.tick = c.heartbeat * 3 / 7 // never a divisor of the period
			opts = append(opts, WithHeartbeat(c.heartbeat))
		}
	}
	return opts
}

// workers returns the worker records whose copy runs, in a fixed order.
func (h *harness) workers() []*mChild {
	var out []*mChild
	for _, s := range h.m.sups {
		for _, c := range s.children {
			if c.w != nil && c.cp != nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// deafs returns the workers whose copy ignores cancellation.
func (h *harness) deafs() []*mChild {
	return slices.DeleteFunc(h.workers(), func(c *mChild) bool { return !c.cp.deaf })
}

// hung reports whether c's copy was cancelled as failed (and no stop
// claimed it since), or is stuck after that.
func hung(c *mChild) bool {
	return c.cp != nil && (c.cp.hung != "" || strings.Contains(c.stuckAs, "+"))
}

// attached returns the supervisors still in the tree: those that neither
// are nor are below a removed nested supervisor.
func (h *harness) attached() []*mSup {
	var out []*mSup
	for _, s := range h.m.sups {
		in := true
		for x := s; x.self != nil; x = x.owner {
			in = in && !x.self.removed
		}
		if in {
			out = append(out, s)
		}
	}
	return out
}

// step draws one step, applies it to the model and the real tree, and
// checks that they agree.
func (h *harness) step(i int) {
	rt := h.rt
	kinds := []string{
		"fail", "fail", "fail", "exit", "exit", "panic", "hang", "hang", "release", "ready", "ready", "mute", "mute", "beat",
		"add", "terminate", "terminate", "restart", "restart", "cycle", "remove", "bgTerminate", "bgRemove",
		"sleep", "sleep", "serveBusy", "serveRace", "hungScenario",
	}
	if len(h.deafs()) > 0 {
		// Stop a deaf copy from another goroutine: calls made meanwhile
		// queue behind its stop.
		kinds = append(kinds, "bgTerminate", "mute")
	}
	if slices.ContainsFunc(h.workers(), hung) {
		// Terminate and Remove claim a hung child: its return is a stop.
		kinds = append(kinds, "terminate", "remove", "bgTerminate", "bgRemove")
	}
	if h.m.rootDone {
		// The root's Serve returned: serve it again, or edit it (and its
		// subtree) offline first.
		kinds = []string{"serve", "serve", "serve", "release", "ready", "add", "terminate", "restart", "remove", "sleep"}
	}
	kind := rapid.SampledFrom(kinds).Draw(rt, "step")
	h.m.gen++
	start := time.Now()
	startModel := h.m.now
	var desc string
	switch kind {
	case "fail", "exit", "panic", "hang", "release", "ready", "mute", "beat":
		desc = h.workerStep(kind)
	case "serve":
		desc = "serve the root again"
		h.m.note("serve the root again")
		h.m.rootDone, h.m.rootErr = false, nil
		h.m.root.begin()
		h.m.settle()
		if !h.m.off() {
			<-h.done
			go func() { h.done <- h.m.root.real.Serve(h.ctx) }()
		}
	case "bgTerminate", "bgRemove":
		desc = h.apiStep(strings.ToLower(strings.TrimPrefix(kind, "bg")), true)
	case "hungScenario":
		desc = h.hungScenario()
	case "serveBusy":
		desc = h.serveBusy()
	case "serveRace":
		desc = h.serveRace()
	case "sleep":
		d := rapid.SampledFrom([]time.Duration{
			100 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second,
			DefaultBackoffReset, // long enough to reset a running child's count of failures
		}).Draw(rt, "sleep")
		desc = fmt.Sprintf("sleep %v", d)
		h.m.sleep(d)
		if !h.m.off() {
			time.Sleep(d)
		}
	default:
		desc = h.apiStep(kind, false)
	}
	desc = fmt.Sprintf("step %d at %v: %s", i, startModel, desc)
	if h.m.off() {
		// The model cannot say what the real tree does next: the step is
		// not done there (or not wholly), and the case ends.
		rt.Logf("%s: not run", desc)
		return
	}
	synctest.Wait()
	rt.Logf("%s", desc)
	if got, want := time.Since(start), h.m.now-startModel; got != want {
		rt.Fatalf("%s: took %v, the model says %v", desc, got, want)
	}
	h.check(desc)
}

// workerStep tells a running worker copy to fail, exit, panic, hang (ignore
// cancellation), be released, signal readiness, or stop or resume its
// heartbeats.
func (h *harness) workerStep(kind string) string {
	rt := h.rt
	var cands []*mChild
	deafs := h.deafs()
	switch kind {
	case "hang":
		if len(deafs) < maxDeaf {
			cands = slices.DeleteFunc(h.workers(), func(c *mChild) bool { return c.cp.deaf })
			if rapid.IntRange(0, 2).Draw(rt, "watched") > 0 {
				// Those the supervisor may cancel as failed, muted ones
				// first: a hung copy that ignores its cancellation is the
				// subtle case.
				watched := func(c *mChild) bool { return c.heartbeat > 0 || c.startTimeout > 0 && c.state == Starting }
				muted := func(c *mChild) bool { return c.heartbeat > 0 && !c.cp.beating || c.cp.hung != "" }
				if w := slices.DeleteFunc(slices.Clone(cands), func(c *mChild) bool { return !muted(c) }); len(w) > 0 {
					cands = w
				} else if w := slices.DeleteFunc(slices.Clone(cands), func(c *mChild) bool { return !watched(c) }); len(w) > 0 {
					cands = w
				}
			}
		}
	case "release":
		cands = deafs
	case "ready":
		for _, c := range h.workers() {
			if c.readiness && !c.cp.readied {
				cands = append(cands, c)
			}
		}
	case "mute", "beat":
		for _, c := range h.workers() {
			if c.heartbeat > 0 && !c.cp.cancelled && c.cp.beating == (kind == "mute") {
				cands = append(cands, c)
			}
		}
		if kind == "mute" && rapid.Bool().Draw(rt, "muteDeaf") {
			// A deaf copy that stops beating is hung, then stuck.
			if d := slices.DeleteFunc(slices.Clone(cands), func(c *mChild) bool { return !c.cp.deaf }); len(d) > 0 {
				cands = d
			}
		}
	default:
		cands = h.workers()
		switch {
		case len(deafs) > 0 && rapid.Bool().Draw(rt, "nearDeaf"):
			// Aim at the deaf copy's siblings: the interleavings of a stop
			// that waits for a deaf copy are where the rules are subtle.
			s := h.owner(deafs[0])
			cands = slices.DeleteFunc(cands, func(c *mChild) bool { return !slices.Contains(s.children, c) })
		case rapid.IntRange(0, 2).Draw(rt, "aimTrigger") == 0:
			// Aim at the triggers of group restarts that wait for their
			// delay, restarted since by Restart.
			if t := slices.DeleteFunc(slices.Clone(cands), func(c *mChild) bool { return !h.owner(c).triggers(c) }); len(t) > 0 {
				cands = t
			}
		}
	}
	if len(cands) == 0 {
		return kind + ": no candidate"
	}
	c := cands[rapid.IntRange(0, len(cands)-1).Draw(rt, "worker")]
	desc := h.act(c, kind)
	if kind != "mute" || h.m.off() {
		return desc
	}
	if wait := rapid.IntRange(0, 2).Draw(rt, "wait"); wait > 0 {
		// Let time pass until the copy is hung, or, if it is deaf, stuck:
		// other steps often replace it before.
		desc += ", " + h.waitFor(c, wait == 2)
	}
	return desc
}

// act tells c's running copy to fail, exit, panic, hang (ignore
// cancellation), be released, signal readiness, or stop or resume its
// heartbeats, in the model and in the real tree.
func (h *harness) act(c *mChild, kind string) string {
	rt := h.rt
	cmd := wcmd{}
	var err mErr
	switch kind {
	case "fail":
		cmd = wcmd{kind: cmdFail, err: h.newErr("fail")}
		err = mErr{h.atoms[cmd.err]}
	case "exit":
		cmd = wcmd{kind: cmdExit}
	case "panic":
		cmd = wcmd{kind: cmdPanic, err: h.newErr("panic")}
		err = mErr{"panic", h.atoms[cmd.err]}
	case "hang":
		cmd = wcmd{kind: cmdHang}
	case "release":
		cmd = wcmd{kind: cmdRelease}
	case "ready":
		cmd = wcmd{kind: cmdReady}
	case "mute":
		cmd = wcmd{kind: cmdMute}
	case "beat":
		cmd = wcmd{kind: cmdBeat}
	}
	// The model: the copy returns, or changes its mind about cancellation,
	// readiness or heartbeats.
	s := h.owner(c)
	serving := !h.m.rootDone
	switch kind {
	case "hang":
		c.cp.deaf = true
	case "release":
		c.cp.deaf = false
		if c.cp.cancelled {
			h.m.post(mEvent{s: s, c: c, cp: c.cp})
		}
	case "ready":
		c.cp.readied = true
		h.m.post(mEvent{s: s, c: c, cp: c.cp, ready: true})
	case "mute":
		s.mute(c)
	case "beat":
		s.resume(c)
	default:
		h.m.post(mEvent{s: s, c: c, cp: c.cp, err: err})
	}
	h.m.settle()
	desc := fmt.Sprintf("%s %s/%s", kind, s.name, c.name)
	if h.m.off() {
		return desc
	}
	var r *racer
	if serving && h.m.rootDone && rapid.Bool().Draw(rt, "race") {
		// The root returns in this step, at once: a second Serve races it.
		r = h.startRacer(true)
	}
	// The real tree: the copy is idle in its select, so the send succeeds
	// at once if it runs.
	select {
	case c.w.cmd <- cmd:
	default:
		rt.Fatalf("%s: the model says it runs, but no copy listens", desc)
	}
	if r != nil {
		desc += "; " + h.settleRace(r, desc)
	}
	return desc
}

// waitFor lets time pass until c's copy, muted or not ready, is cancelled
// as failed, and with untilStuck, if it ignores that, until it is stuck.
func (h *harness) waitFor(c *mChild, untilStuck bool) string {
	synctest.Wait()
	h.m.gen++
	var d time.Duration
	for cp := c.cp; c.cp == cp && (c.timer == tBeat || c.timer == tStart || untilStuck && c.timer == tStop) && !h.m.off(); {
		dd := c.due - h.m.now
		h.m.sleep(dd)
		d += dd
	}
	if !h.m.off() {
		time.Sleep(d)
	}
	return fmt.Sprintf("sleep %v", d)
}

// hungScenario lines up what independent steps rarely do: a worker that
// the supervisor cancels as failed (a muted heartbeat, or a start timeout)
// and that ignores it, then either
//
//   - (D2) a deaf sibling's stop in progress, from a Terminate in the
//     background, and a Terminate or Remove of the hung worker queued
//     behind it, answered when the hung worker is declared stuck; or
//   - (D1) a Terminate or Remove of the hung worker once it is stuck, and
//     maybe its return.
//
// Each part is an ordinary step's model and real action.
func (h *harness) hungScenario() string {
	rt := h.rt
	watched := func(c *mChild) bool {
		return !c.cp.cancelled && (c.heartbeat > 0 && c.cp.watched || c.timer == tStart)
	}
	deafs := len(h.deafs())
	budget := func(cs ...*mChild) bool { // at most maxDeaf deaf copies
		n := deafs
		for _, c := range cs {
			if !c.cp.deaf {
				n++
			}
		}
		return n <= maxDeaf
	}
	var cands []*mChild
	for _, c := range h.workers() {
		if s := h.owner(c); s.serving && !s.shutting && watched(c) && budget(c) && slices.Contains(h.attached(), s) {
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		return "hung scenario: no candidate"
	}
	hc := cands[rapid.IntRange(0, len(cands)-1).Draw(rt, "hungChild")]
	s := h.owner(hc)
	var sib *mChild // a deaf sibling whose stop the calls queue behind
	if rapid.IntRange(0, 3).Draw(rt, "behind") > 0 {
		var sibs []*mChild
		for _, c := range s.children {
			if c != hc && c.w != nil && c.cp != nil && !c.cp.cancelled && budget(hc, c) {
				sibs = append(sibs, c)
			}
		}
		if len(sibs) > 0 {
			sib = sibs[rapid.IntRange(0, len(sibs)-1).Draw(rt, "sibling")]
		}
	}
	parts := []string{}
	do := func(f func() string) bool {
		if h.m.off() {
			return false
		}
		synctest.Wait()
		h.m.gen++
		parts = append(parts, f())
		return !h.m.off()
	}
	for _, c := range []*mChild{hc, sib} {
		if c != nil && !c.cp.deaf && !do(func() string { return h.act(c, "hang") }) {
			return strings.Join(parts, "; ")
		}
	}
	if hc.cp.beating && hc.heartbeat > 0 && !do(func() string { return h.act(hc, "mute") }) {
		return strings.Join(parts, "; ")
	}
	if !do(func() string { return h.waitFor(hc, sib == nil) }) || hc.cp == nil {
		return strings.Join(parts, "; ")
	}
	if sib != nil && sib.cp != nil && !sib.cp.cancelled && !do(func() string {
		return h.apiCallBG(s, &mCall{kind: "terminate", name: sib.name}, func() error { return s.real.Terminate(h.bgCtx, sib.name) })
	}) {
		return strings.Join(parts, "; ")
	}
	kind := rapid.SampledFrom([]string{"terminate", "remove"}).Draw(rt, "hungCall")
	call := &mCall{kind: kind, name: hc.name}
	ctx := context.Background()
	bg := rapid.Bool().Draw(rt, "hungCallBG")
	if bg {
		ctx = h.bgCtx
	}
	stop := func() error { return s.real.Terminate(ctx, hc.name) }
	if kind == "remove" {
		stop = func() error { return s.real.Remove(ctx, hc.name) }
	}
	if !do(func() string {
		if bg {
			return h.apiCallBG(s, call, stop)
		}
		return h.apiCall(s, call, stop)
	}) {
		return strings.Join(parts, "; ")
	}
	if hc.cp != nil && hc.cp.deaf && rapid.IntRange(0, 2).Draw(rt, "hungRelease") == 0 {
		do(func() string { return h.act(hc, "release") })
	}
	return strings.Join(parts, "; ")
}

// owner returns the supervisor that holds c.
func (h *harness) owner(c *mChild) *mSup {
	for _, s := range h.m.sups {
		if slices.Contains(s.children, c) {
			return s
		}
	}
	h.rt.Fatalf("no supervisor holds %s", c.name)
	return nil
}

// apiStep calls Add, Terminate, Restart or Remove on a random supervisor;
// with bg, a Terminate or Remove from another goroutine, without waiting
// for its answer.
func (h *harness) apiStep(kind string, bg bool) string {
	rt := h.rt
	ctx := context.Background()
	if bg {
		ctx = h.bgCtx
	}
	sups := h.attached()
	hungIn := slices.DeleteFunc(slices.Clone(sups), func(s *mSup) bool { return !slices.ContainsFunc(s.children, hung) })
	if d := h.deafs(); len(d) > 0 && slices.Contains(sups, h.owner(d[0])) && rapid.Bool().Draw(rt, "nearDeaf") {
		sups = []*mSup{h.owner(d[0])} // as in workerStep
	} else if len(hungIn) > 0 && rapid.Bool().Draw(rt, "nearHung") {
		sups = hungIn // where a hung child is
	}
	s := sups[rapid.IntRange(0, len(sups)-1).Draw(rt, "sup")]
	call := &mCall{kind: kind}
	var do func() error
	switch kind {
	case "add":
		c := h.newWorker()
		if rapid.IntRange(0, 9).Draw(rt, "dup") == 0 && len(s.children) > 0 {
			names := s.children
			if r := slices.DeleteFunc(slices.Clone(names), func(c *mChild) bool { return !c.removeOnStop }); len(r) > 0 {
				names = r // a removed child whose stuck copy runs keeps its name
			}
			c.name = names[rapid.IntRange(0, len(names)-1).Draw(rt, "dupOf")].name
		}
		// Invalid options only on a serving root: an Add refused while a
		// supervisor does not serve fails its next Serve, which the fuzzers
		// and TestBadInputAdd check, not the model.
		invalid := rapid.IntRange(0, 9).Draw(rt, "invalid") == 0 && s == h.m.root && !h.m.rootDone
		opts := h.drawChildOpts(s, c, invalid)
		call.name, call.child = c.name, c
		if c.significant && (s.auto == noAutoShutdown || c.policy == Permanent) {
			call.child = nil // Add rejects it
		}
		do = func() error { return s.real.Add(c.name, c.w, opts...) }
	default:
		names := []string{"nosuch"}
		for _, c := range s.children {
			names = append(names, c.name)
		}
		cands := slices.Clone(s.children)
		pending := slices.Concat(s.jobs, s.delayed)
		aim := rapid.IntRange(0, 5).Draw(rt, "aim")
		if slices.ContainsFunc(cands, hung) && rapid.Bool().Draw(rt, "aimHung") {
			aim = 0
		}
		switch aim {
		case 0:
			// A hung child (its copy cancelled as failed, maybe stuck):
			// Terminate and Remove claim it.
			cands = slices.DeleteFunc(cands, func(c *mChild) bool { return !hung(c) })
		case 1:
			// A deaf copy: its stop takes its whole shutdown timeout, and
			// calls made meanwhile queue behind it.
			cands = slices.DeleteFunc(cands, func(c *mChild) bool { return c.cp == nil || !c.cp.deaf })
		case 2, 3:
			// A group restart waits for a deaf copy or its delay: aim at
			// its members, where Terminate and Restart meet the queued
			// starts.
			cands = slices.DeleteFunc(cands, func(c *mChild) bool {
				return !slices.ContainsFunc(pending, func(j *mJob) bool {
					return slices.ContainsFunc(j.start, func(m mMember) bool { return m.c == c })
				})
			})
		}
		if kind == "restart" && rapid.Bool().Draw(rt, "stoppedOnly") {
			// Restart is mostly refused on a running child: aim at the
			// stopped ones (a Terminate just before, say) half the time.
			cands = slices.DeleteFunc(cands, func(c *mChild) bool { return c.state != Stopped })
		}
		if len(cands) > 0 && len(cands) < len(s.children) {
			names = nil
			for _, c := range cands {
				names = append(names, c.name)
			}
		}
		call.name = rapid.SampledFrom(names).Draw(rt, "name")
		switch kind {
		case "terminate":
			do = func() error { return s.real.Terminate(ctx, call.name) }
		case "restart":
			do = func() error { return s.real.Restart(call.name) }
		case "remove":
			do = func() error { return s.real.Remove(ctx, call.name) }
		}
	}
	if kind == "cycle" {
		// Terminate, then once the tree is idle Restart, the same child.
		first := h.apiCall(s, &mCall{kind: "terminate", name: call.name}, func() error { return s.real.Terminate(context.Background(), call.name) })
		if h.m.off() {
			return first
		}
		synctest.Wait()
		h.m.gen++
		return first + "; " + h.apiCall(s, &mCall{kind: "restart", name: call.name}, func() error { return s.real.Restart(call.name) })
	}
	if bg {
		return h.apiCallBG(s, call, do)
	}
	return h.apiCall(s, call, do)
}

// apiCall makes call on s in the model and with do in the real tree, and
// checks that they answer alike.
func (h *harness) apiCall(s *mSup, call *mCall, do func() error) string {
	rt := h.rt
	desc := fmt.Sprintf("%s %s/%s", call.kind, s.name, call.name)
	if !h.m.call(s, call) {
		rt.Fatalf("%s: the model never answers", desc)
	}
	if h.m.off() {
		return desc
	}
	if got := modelClassify(do()); got != call.result {
		rt.Fatalf("%s: returned %q, the model says %q", desc, got, call.result)
	}
	return desc + " -> " + call.result
}

// apiCallBG makes call on s in the model and with do in the real tree, from
// another goroutine: check compares their answers at every step.
func (h *harness) apiCallBG(s *mSup, call *mCall, do func() error) string {
	desc := fmt.Sprintf("%s %s/%s in the background", call.kind, s.name, call.name)
	h.m.callAsync(s, call)
	if h.m.off() {
		return desc
	}
	if !call.done {
		h.m.note("a call in the background waits")
	}
	b := &bgCall{call: call, desc: desc, res: make(chan error, 1)}
	go func() { b.res <- do() }()
	h.bg = append(h.bg, b)
	return desc
}

// checkBG checks the calls made in the background: each is answered, and
// with what the model says, exactly when the model answers it.
func (h *harness) checkBG(when string) {
	for _, b := range slices.Clone(h.bg) {
		select {
		case err := <-b.res:
			if !b.call.done {
				h.rt.Fatalf("%s: %s returned %v; the model says it still waits", when, b.desc, err)
			}
			if got := modelClassify(err); got != b.call.result {
				h.rt.Fatalf("%s: %s returned %q, the model says %q", when, b.desc, got, b.call.result)
			}
			h.bg = slices.DeleteFunc(h.bg, func(x *bgCall) bool { return x == b })
		default:
			if b.call.done {
				h.rt.Fatalf("%s: %s still waits; the model says it returned %q", when, b.desc, b.call.result)
			}
		}
	}
}

// serveBusy calls Serve on a supervisor of the tree that serves, the root
// or a nested one: it must return ErrAlreadyServing at once and change
// nothing.
func (h *harness) serveBusy() string {
	rt := h.rt
	var cands []*mSup
	for _, s := range h.attached() {
		if s.serving {
			cands = append(cands, s)
		}
	}
	if len(cands) == 0 {
		return "serve while serving: no candidate"
	}
	s := cands[rapid.IntRange(0, len(cands)-1).Draw(rt, "busy")]
	if s == h.m.root {
		h.m.note("serve while serving: the root")
	} else {
		h.m.note("serve while serving: a nested supervisor")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends a Serve that should not have started
	res := make(chan error, 1)
	go func() { res <- s.real.Serve(ctx) }()
	synctest.Wait()
	select {
	case err := <-res:
		if !errors.Is(err, ErrAlreadyServing) {
			rt.Fatalf("a second Serve of %s returned %v, want ErrAlreadyServing", s.name, err)
		}
	default:
		rt.Fatalf("a second Serve of %s serves", s.name)
	}
	return "serve " + s.name + " while it serves -> already serving"
}

// serveRace cancels the root's context and at once serves the root again
// from another goroutine, racing the first Serve's return.
func (h *harness) serveRace() string {
	m := h.m
	desc := "cancel the root and serve it again at once"
	start := m.now
	m.post(mEvent{s: m.root, done: true})
	m.settle()
	for !m.rootDone && !m.off() {
		t, ok, tie := m.nextDue()
		if !ok {
			h.rt.Fatalf("the model's root never returns")
		}
		m.fire(t, tie)
	}
	if m.off() {
		return desc
	}
	r := h.startRacer(m.now == start)
	h.cancel()
	return desc + ": " + h.settleRace(r, desc)
}

// racer is a second Serve of the root started while the first one returns.
// It tries again while it gets ErrAlreadyServing. Fake time stands still
// while it tries, so it can serve only if the first Serve returns without
// time passing: then it tries until it serves, and otherwise it gives up
// after a few tries. Either way the outcome is the model's to predict, so
// that rapid can replay a failing case.
type racer struct {
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan error    // what its Serve returned, if it served
	lost    chan struct{} // closed once every try got ErrAlreadyServing
	refused atomic.Int32  // tries that got ErrAlreadyServing
	win     bool          // the first Serve returns at once: the racer serves
}

// startRacer starts a racer on the root; win says whether the first Serve
// returns at once, so that the racer serves.
func (h *harness) startRacer(win bool) *racer {
	ctx, cancel := context.WithCancel(context.Background())
	r := &racer{ctx: ctx, cancel: cancel, done: make(chan error, 1), lost: make(chan struct{}), win: win}
	tries := 20
	if win {
		tries = 1_000_000 // bounded all the same: a wedged return fails the case
	}
	root := h.m.root.real
	go func() {
		for range tries {
			err := root.Serve(ctx)
			if !errors.Is(err, ErrAlreadyServing) {
				r.done <- err
				return
			}
			r.refused.Add(1)
			runtime.Gosched()
		}
		close(r.lost)
	}()
	return r
}

// settleRace waits for the first Serve, which the model says returned,
// checks what it returned, and makes the model follow the racer: it lost
// (the tree stays down), or it serves (the model serves the root again).
func (h *harness) settleRace(r *racer, when string) string {
	first := <-h.done
	synctest.Wait()
	h.checkRootErr(when, first)
	h.cancel()
	h.ctx, h.cancel = r.ctx, r.cancel // for the next Serve
	select {
	case <-r.lost:
		if r.win {
			h.rt.Fatalf("%s: a Serve racing the root's return never served", when)
		}
		h.m.note("serve racing the root's return: already serving")
		h.done <- first
		return "a racing Serve got ErrAlreadyServing"
	default:
	}
	if !r.win {
		h.rt.Fatalf("%s: a Serve racing the root's return served before it returned", when)
	}
	h.m.note("serve racing the root's return: served")
	if r.refused.Load() > 0 {
		h.m.note("serve racing the root's return: refused, then served")
	}
	h.m.gen++
	h.m.rootDone, h.m.rootErr = false, nil
	h.m.root.begin()
	h.m.settle()
	h.done = r.done
	return "a racing Serve serves"
}

// finish cancels the root's context, checks what Serve returns, releases the
// deaf copies, if any, and checks the final state.
func (h *harness) finish() {
	rt := h.rt
	if !h.m.rootDone {
		h.m.gen++
		start, startModel := time.Now(), h.m.now
		h.m.post(mEvent{s: h.m.root, done: true})
		h.m.settle()
		for !h.m.rootDone && !h.m.off() {
			t, ok, tie := h.m.nextDue()
			if !ok {
				rt.Fatalf("the model's root never returns")
			}
			h.m.fire(t, tie)
		}
		if h.m.off() {
			h.m.note("ended early: ambiguous")
			return
		}
		h.cancel()
		err := <-h.done
		h.done <- err
		if got, want := time.Since(start), h.m.now-startModel; got != want {
			rt.Fatalf("shutdown took %v, the model says %v", got, want)
		}
		synctest.Wait()
		h.check("shutdown")
	}
	for _, d := range h.deafs() {
		h.m.gen++
		s := h.owner(d)
		d.cp.deaf = false
		if d.cp.cancelled {
			h.m.post(mEvent{s: s, c: d, cp: d.cp})
		}
		h.m.settle()
		d.w.cmd <- wcmd{kind: cmdRelease}
		synctest.Wait()
		h.check("final release of " + d.name)
	}
	for _, w := range h.ctrls {
		if n := w.running.Load(); n != 0 {
			rt.Fatalf("%s still runs %d copies after the root returned and nothing is deaf", w.name, n)
		}
	}
}

// cleanup stops the real tree whatever state a failed check left it in, so
// that the bubble ends with no goroutine left.
func (h *harness) cleanup() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.bgStop()
	for range 100 {
		synctest.Wait()
		for _, w := range h.ctrls {
			select {
			case w.cmd <- wcmd{kind: cmdRelease}:
			default:
			}
		}
		select {
		case err := <-h.done:
			h.done <- err
			if !slices.ContainsFunc(h.ctrls, func(w *ctrl) bool { return w.running.Load() != 0 }) {
				return
			}
			// A copy that still runs now that the root returned is stuck:
			// end it.
			synctest.Wait()
			for _, w := range h.ctrls {
				select {
				case w.cmd <- wcmd{kind: cmdExit}:
				default:
				}
			}
		default:
		}
		time.Sleep(time.Minute)
	}
}

// check compares the real tree with the model: every supervisor's children
// (state, restarts, failures, last error, policy, significance, and when a
// Restarting one starts), every worker's count of copies started, that no
// worker ever ran two copies, the tree's health, and whether and with what
// the root's Serve returned.
func (h *harness) check(when string) {
	rt := h.rt
	for _, w := range h.ctrls {
		if w.overlap.Load() {
			rt.Fatalf("%s: worker %s ran two copies at once", when, w.name)
		}
	}
	for _, s := range h.m.sups {
		got := s.real.Children()
		var gotS, wantS []string
		for _, c := range got {
			gotS = append(gotS, fmt.Sprintf("%s:%v:r%d:f%d:%v:%v:sig=%v", c.Name, c.State, c.Restarts, c.Failures, mErr(h.errAtoms(c.LastError)), c.Policy, c.Significant))
		}
		for _, c := range s.children {
			lastErr := c.lastErr
			if c.state == Stuck { // Children shows the *StuckError while it is stuck
				lastErr = mErr{c.stuckAs}
			}
			wantS = append(wantS, fmt.Sprintf("%s:%v:r%d:f%d:%v:%v:sig=%v", c.name, c.state, c.restarts, c.failures, lastErr, c.policy, c.significant))
			if c.w != nil {
				if got, want := int(c.w.starts.Load()), c.starts; got != want {
					rt.Fatalf("%s: %s/%s started %d copies, the model says %d", when, s.name, c.name, got, want)
				}
			}
		}
		if debugModel {
			var q []string
			for _, x := range s.queue {
				q = append(q, x.name)
			}
			w := ""
			if s.waiting != nil {
				w = s.waiting.name
			}
			rt.Logf("%s: %s\n  real:  %v\n  model: %v queue %v waiting %q jobs %d delayed %d", when, s.name, gotS, wantS, q, w, len(s.jobs), len(s.delayed))
		}
		if !slices.Equal(gotS, wantS) {
			rt.Fatalf("%s: children of %s differ\n  real:  %v\n  model: %v", when, s.name, gotS, wantS)
		}
		for i, c := range got {
			mc := s.children[i]
			if c.State == Restarting && mc.nextStart >= 0 {
				h.m.note("next start of a restarting child checked")
				if want := h.t0.Add(mc.nextStart); !c.NextStart.Equal(want) {
					rt.Fatalf("%s: %s/%s starts at %v, the model says %v", when, s.name, c.Name, c.NextStart.Sub(h.t0), mc.nextStart)
				}
			}
			if c.State == Stuck {
				h.checkIs(fmt.Sprintf("%s: LastError of stuck %s/%s", when, s.name, c.Name), c.LastError, mErr{mc.stuckAs})
				continue
			}
			h.checkIs(fmt.Sprintf("%s: LastError of %s/%s", when, s.name, c.Name), c.LastError, mc.lastErr)
		}
	}
	h.checkHealth(when)
	h.checkBG(when)
	select {
	case err := <-h.done:
		h.done <- err
		if !h.m.rootDone {
			rt.Fatalf("%s: the root's Serve returned %v; the model says it still serves", when, err)
		}
		h.checkRootErr(when, err)
	default:
		if h.m.rootDone {
			rt.Fatalf("%s: the root still serves; the model says it returned %v", when, h.m.rootErr)
		}
	}
}

// checkRootErr compares what the root's Serve returned with the model.
func (h *harness) checkRootErr(when string, err error) {
	if got, want := mErr(h.errAtoms(err)).String(), h.m.rootErr.String(); got != want {
		h.rt.Fatalf("%s: the root's Serve returned %v (%s), the model says %s", when, err, got, want)
	}
	h.checkIs(when+": the root's Serve", err, h.m.rootErr)
}

// checkHealth compares the root's Health with what the model's states say.
func (h *harness) checkHealth(when string) {
	rt := h.rt
	var want []string
	wantLive, wantReady := true, true
	down := !h.m.root.serving // a root that does not serve: nothing under it is live or ready
	add := func(path string, live, ready bool, reason string) {
		if down && live {
			live, ready, reason = false, false, "not serving"
		}
		wantLive, wantReady = wantLive && live, wantReady && ready
		want = append(want, fmt.Sprintf("%s:live=%v:ready=%v:%s", path, live, ready, reason))
	}
	var walk func(s *mSup, path string, st State)
	walk = func(s *mSup, path string, st State) {
		root := s == h.m.root
		switch {
		case st == Stuck:
			add(path, false, false, "stuck")
		case !s.serving && root:
			add(path, false, false, "not serving")
		case !s.serving && st == Stopped:
			add(path, true, true, "")
		case !s.serving:
			add(path, true, false, "not serving")
		case s.failed:
			add(path, false, false, "failed, shutting down")
		case s.shutting:
			add(path, true, false, "shutting down")
		case st != Running:
			add(path, true, false, st.String())
		default:
			add(path, true, true, "")
		}
		for _, c := range s.children {
			p := path + "/" + c.name
			switch {
			case c.sub != nil:
				walk(c.sub, p, c.state)
			case c.state == Stuck:
				add(p, false, false, "stuck")
			case c.state == Starting || c.state == Restarting || c.state == Stopping:
				add(p, true, false, c.state.String())
			default:
				add(p, true, true, "")
			}
		}
		if s.serving {
			for _, o := range s.orphans {
				for _, p := range o.stuckPaths() {
					add(p, false, false, "stuck")
				}
			}
		}
	}
	walk(h.m.root, h.m.root.name, Running)
	hl := h.m.root.real.Health(context.Background())
	var got []string
	for _, c := range hl.Checks {
		got = append(got, fmt.Sprintf("%s:live=%v:ready=%v:%s", c.Path, c.Live, c.Ready, c.Reason))
	}
	if !slices.Equal(got, want) || hl.Live != wantLive || hl.Ready != wantReady {
		rt.Fatalf("%s: health differs\n  real:  live=%v ready=%v %v\n  model: live=%v ready=%v %v", when, hl.Live, hl.Ready, got, wantLive, wantReady, want)
	}
	if wantReady {
		h.m.note("tree ready at a check")
	}
}

// debugModel logs both sides' children, the start queue and the jobs at
// every check: MODELDEBUG=1 go test -run TestModel -rapid.failfile=...
var debugModel = os.Getenv("MODELDEBUG") != ""

// causeSentinels are the causes of a cancellation as failed, by atom.
var causeSentinels = map[string]error{causeHung: ErrHung, causeStartTimeout: ErrStartTimeout}

// checkIs checks err the way a user would, with errors.Is and errors.As,
// against every atom of the model's error.
func (h *harness) checkIs(what string, err error, want mErr) {
	rt := h.rt
	for _, a := range want {
		var ok bool
		switch {
		case a == "intensity":
			ok = errors.Is(err, ErrIntensityExceeded)
		case a == "panic":
			var pe *PanicError
			ok = errors.As(err, &pe)
		case causeSentinels[a] != nil:
			ok = errors.Is(err, causeSentinels[a])
		case strings.HasPrefix(a, "stuck:"):
			var se *StuckError
			ok = errors.Is(err, ErrStuck) && errors.As(err, &se)
			if _, cause, found := strings.Cut(a, "+"); found {
				ok = ok && errors.Is(err, causeSentinels[cause])
			}
		default:
			ok = errors.Is(err, h.byAtom[a])
		}
		if !ok {
			rt.Fatalf("%s: %v does not match %s", what, err, a)
		}
	}
}

// errAtoms returns the atoms of err, sorted: the worker errors it reaches,
// "panic" for each *PanicError, "intensity" for each ErrIntensityExceeded,
// "hung" and "starttimeout" for ErrHung and ErrStartTimeout, and
// "stuck:sup/child" for each *StuckError, with "+hung" or "+starttimeout"
// when it unwraps to one. It returns nil for nil.
func (h *harness) errAtoms(err error) []string {
	if err == nil {
		return nil
	}
	out := []string{}
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if _, ok := e.(*IntensityError); ok {
			out = append(out, "intensity")
		}
		if a, ok := h.atoms[e]; ok {
			out = append(out, a)
		}
		for a, sentinel := range causeSentinels {
			if e == sentinel {
				out = append(out, a)
			}
		}
		switch x := e.(type) {
		case *PanicError:
			out = append(out, "panic")
		case *StuckError:
			out = append(out, "stuck:"+lastElem(x.Supervisor)+"/"+x.Child+causeSuffix(x.Err))
			return // its cause is in the atom
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	sort.Strings(out)
	return out
}

// causeSuffix names the cause of a *StuckError as its atom ends: "+hung",
// "+starttimeout", or "" for a stop.
func causeSuffix(err error) string {
	for a, sentinel := range causeSentinels {
		if errors.Is(err, sentinel) {
			return "+" + a
		}
	}
	return ""
}

// classify names an API error the way the model does.
func modelClassify(err error) string {
	var se *StuckError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &se):
		return "stuck:" + lastElem(se.Supervisor) + "/" + se.Child + causeSuffix(se.Err)
	case errors.Is(err, ErrNotFound):
		return "notfound"
	case errors.Is(err, ErrAlreadyExists):
		return "exists"
	case errors.Is(err, ErrNotStopped):
		return "running"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	}
	return "other: " + err.Error()
}

// lastElem is the supervisor's own name in its path; the model names
// supervisors like the children that run them.
func lastElem(path string) string { return path[strings.LastIndex(path, "/")+1:] }
