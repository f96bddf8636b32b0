package arbor

import (
	"strconv"
	"time"
)

// State is a child's state as Children reports it. It is derived from the
// child's lifecycle phase (see phase).
type State int

const (
	// Stopped: no copy of the child runs and none is about to start: a
	// transient child after a normal exit, a child stopped with Terminate,
	// and every child of a supervisor that does not serve, except a stuck
	// one.
	Stopped State = iota
	// Running: a copy of the child runs and the supervisor has not asked it to
	// stop.
	Running
	// Restarting: the child has exited or been stopped and the supervisor
	// will start it again: after its backoff delay, or in a group restart.
	Restarting
	// Stopping: the supervisor cancelled the child's context and waits for it
	// to return.
	Stopping
	// Stuck: the child did not return within its shutdown timeout after its
	// context was cancelled. Its goroutine may still run, so the supervisor
	// will not start the child again until it returns. A child stays Stuck
	// after its supervisor's Serve returned, until its copy returns.
	Stuck
	// Starting: the child is not ready yet. Either its copy runs and has not
	// signalled readiness (see Ready and WithReadiness), or it waits for an
	// earlier child to become ready before it starts. A nested *Supervisor
	// is Starting until all its children are ready.
	Starting
)

// String returns the state's name, such as "running".
func (s State) String() string {
	switch s {
	case Stopped:
		return "stopped"
	case Running:
		return "running"
	case Restarting:
		return "restarting"
	case Stopping:
		return "stopping"
	case Stuck:
		return "stuck"
	case Starting:
		return "starting"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// ChildInfo describes one child, as Children returns it.
type ChildInfo struct {
	// Name is the name the child was added with.
	Name string
	// State is the child's current state.
	State State
	// Restarts counts the times the supervisor started the child again in
	// the current (or last) Serve: after its own exit or in a group restart.
	// Starts asked for with Restart are not counted.
	Restarts int
	// LastError is the child's last failure in the current (or last) Serve,
	// or nil. A *PanicError for a panic, ErrGoexit for runtime.Goexit, and
	// the *StuckError while the child is stuck.
	LastError error
	// Failures is the child's count of consecutive failures (exits that
	// asked for a restart), which its backoff is computed from. It starts
	// again after the child ran for its backoff reset time, or after Restart.
	Failures int
	// NextStart is when a child waiting in backoff (State Restarting) will
	// start, or zero.
	NextStart time.Time
	// Policy is the child's restart policy.
	Policy RestartPolicy
	// Significant reports whether the child is significant.
	Significant bool
}

// phase is where a child is in its lifecycle. It is the one source of a
// child's State (phaseState); setPhase is its only writer, and phaseMoves
// lists every move it allows. A copy of the child runs exactly in the live
// phases (starting, running, stopping, stuck); the supervisor starts a copy
// only from the others, so two copies of one child never run at once.
type phase uint8

const (
	phIdle     phase = iota // no copy; nothing pending
	phDelayed               // no copy; its own restart waits for its backoff delay
	phGrouped               // no copy; a pending group restart will start it
	phQueued                // no copy; its start waits for an earlier child's readiness
	phStarting              // a copy runs and has not signalled readiness
	phRunning               // a copy runs
	phStopping              // its copy was cancelled; the supervisor waits for it
	phStuck                 // its copy was cancelled and outlived its shutdown timeout
	phRemoved               // deleted from the supervisor
)

// phaseState maps each phase to the State it shows.
var phaseState = [...]State{
	phIdle:     Stopped,
	phDelayed:  Restarting,
	phGrouped:  Restarting,
	phQueued:   Starting,
	phStarting: Starting,
	phRunning:  Running,
	phStopping: Stopping,
	phStuck:    Stuck,
	phRemoved:  Stopped,
}

// phaseMoves[p] has bit q set when a child may move from phase p to q:
//
//	idle      -> queued, starting, running (a start), grouped (a group
//	             restart takes it), removed
//	delayed   -> idle (its delay ends, Terminate, shutdown), grouped, removed
//	grouped   -> idle (the group restart will not start it), queued,
//	             starting, running, removed
//	queued    -> idle (Terminate, shutdown, a group restart takes it),
//	             starting, running (its turn), removed
//	starting  -> running (ready), stopping (cancelled), or as returned
//	running   -> stopping, or as returned
//	stopping  -> stuck (its shutdown timeout), or as returned
//	stuck     -> as returned
//	returned:    idle, delayed, grouped, queued, starting, running, removed
//	             (what follows a copy's return, decided by the restart rules
//	             or by the stop's intent)
//
// Tests check every move the engine makes against it (checkPhaseMoves).
var phaseMoves = func() [phRemoved + 1]uint16 {
	bits := func(ps ...phase) (b uint16) {
		for _, p := range ps {
			b |= 1 << p
		}
		return b
	}
	returned := bits(phIdle, phDelayed, phGrouped, phQueued, phStarting, phRunning, phRemoved)
	return [...]uint16{
		phIdle:     bits(phQueued, phStarting, phRunning, phGrouped, phRemoved),
		phDelayed:  bits(phIdle, phGrouped, phRemoved),
		phGrouped:  bits(phIdle, phQueued, phStarting, phRunning, phRemoved),
		phQueued:   bits(phIdle, phStarting, phRunning, phRemoved),
		phStarting: bits(phRunning, phStopping) | returned,
		phRunning:  bits(phStopping) | returned,
		phStopping: bits(phStuck) | returned,
		phStuck:    returned,
		phRemoved:  0,
	}
}()

// checkPhaseMoves makes setPhase panic on a move phaseMoves does not list;
// tests set it.
var checkPhaseMoves bool

// live reports whether a copy of the child runs in phase p.
func (p phase) live() bool { return p >= phStarting && p <= phStuck }

// then says what happens to a child once its copy, which the supervisor
// stopped, has returned.
type then uint8

const (
	thenSettle  then = iota // Stopped, or Restarting if a group restart will start it
	thenStart               // started again (a group restart's start came while it was stuck)
	thenRemove              // deleted (Remove, or a temporary child)
	thenStopped             // Stopped whatever group restart was pending (Terminate)
)

// child is a supervisor's record of one child: its spec and its run state.
// While the supervisor serves, its loop goroutine owns the record;
// otherwise the supervisor's mutex guards it.
type child struct {
	name       string
	worker     Worker
	sub        *Supervisor // the supervisor the worker is or serves (see Nested), or nil
	*childSpec             // shared with other children added without options: read only

	prev, next *child // start order
	ord        uint64 // position in start order: increases along the list

	cp       *copyCtx // the live copy's context, or nil
	lastErr  error
	since    int64 // when its State last changed, in Unix nanoseconds (display only)
	started  int64 // when its live copy started, in Unix nanoseconds
	restarts int
	count    Counters   // over the supervisor's whole life
	cold     *childCold // the rest, allocated when first needed

	gen           uint32 // counts Terminate and Remove calls: group restarts queued before one do not start it
	ranIn         uint32 // the Serve (Supervisor.serves) in which its last copy started
	pendingStarts int32  // pending group restarts that will start it
	slot          int32  // index in the deadlines heap, or -1
	ph            phase
	wait          waitKind // what its deadline in the heap is for
	then          then     // after a stop: what happens once its copy returns
	claimed       bool     // the live copy is to stop: a stop is queued or under way; its return is a stop
	terminated    bool     // Terminate: stays Stopped, also across Serves, until Restart or a group restart
	restartNext   bool     // its next start is a restart, counted and reported as such
	tracks        bool     // its readiness is tracked: WithReadiness, or a *Supervisor
}

// childCold is the part of a child's record that only a child that has
// failed, waits for something, or is waited for needs. It is allocated on
// first use by cold(), so that an idle child's record stays small; nothing
// is ever written to a shared zero record.
type childCold struct {
	failures  int         // consecutive failures, for backoff
	exitErr   error       // what the exit that asked for a restart returned
	nextStart time.Time   // when it starts again, as Children shows it, or zero
	waiters   []*request  // Terminate and Remove calls waiting for its copy to stop
	hung      error       // why the supervisor cancelled the live copy as failed, or nil
	stuck     *StuckError // set while stuck
	below     error       // a nested supervisor's children that outlived its stopped copy
}

// coldRec returns c's cold record, allocating it if need be. Reads that must not
// allocate check c.cold for nil first.
func (c *child) coldRec() *childCold {
	if c.cold == nil {
		c.cold = new(childCold)
	}
	return c.cold
}

func (c *child) failures() int {
	if c.cold == nil {
		return 0
	}
	return c.cold.failures
}

func (c *child) nextStart() time.Time {
	if c.cold == nil {
		return time.Time{}
	}
	return c.cold.nextStart
}

// stuckErr returns the *StuckError of a stuck child, or nil.
func (c *child) stuckErr() *StuckError {
	if c.cold == nil || c.ph != phStuck {
		return nil
	}
	return c.cold.stuck
}

// state is the State that c's phase shows.
func (c *child) state() State { return phaseState[c.ph] }

// lastError is what Children and Tree show: the *StuckError of a stuck child
// (which reaches the cause of the cancellation), else the last failure.
func (c *child) lastError() error {
	if se := c.stuckErr(); se != nil {
		return se
	}
	return c.lastErr
}

func (c *child) info() ChildInfo {
	return ChildInfo{
		Name:        c.name,
		State:       c.state(),
		Restarts:    c.restarts,
		LastError:   c.lastError(),
		Failures:    c.failures(),
		NextStart:   c.nextStart(),
		Policy:      c.restart,
		Significant: c.significant,
	}
}

// setPhase moves c to phase p: the only place a child's phase changes. It
// keeps the count of children per State, stamps the time of a State change,
// and answers Terminate and Remove calls waiting for c once no copy of c
// runs any more or its copy is stuck.
func (s *Supervisor) setPhase(c *child, p phase) { s.setPhaseAt(c, p, time.Time{}) }

// setPhaseAt is setPhase for a caller that knows the time, or zero.
func (s *Supervisor) setPhaseAt(c *child, p phase, now time.Time) {
	old := c.ph
	if old == p {
		return
	}
	if checkPhaseMoves && phaseMoves[old]&(1<<p) == 0 {
		panic("arbor: child " + c.name + " moved from phase " + strconv.Itoa(int(old)) + " to " + strconv.Itoa(int(p)))
	}
	counts := &s.n
	if c.exempt {
		counts = &s.nExempt
	}
	if old != phRemoved {
		counts[phaseState[old]]--
	}
	if p != phRemoved {
		counts[phaseState[p]]++
	}
	c.ph = p
	if phaseState[old] != phaseState[p] {
		if now.IsZero() {
			now = time.Now()
		}
		c.since = now.UnixNano()
	}
	if old.live() && !p.live() || p == phStuck || p == phRemoved {
		s.answerWaiters(c)
	}
}

// answerWaiters answers the Terminate and Remove calls waiting for c: with
// its *StuckError if it is stuck, with the stuck errors of a nested
// supervisor's children that outlived it, or nil.
func (s *Supervisor) answerWaiters(c *child) {
	if c.cold == nil || len(c.cold.waiters) == 0 {
		return
	}
	err := c.cold.below
	if se := c.stuckErr(); se != nil {
		err = se
	}
	for i, w := range c.cold.waiters {
		w.reply <- answer{err: err}
		c.cold.waiters[i] = nil
	}
	c.cold.waiters = c.cold.waiters[:0]
}

// timeoutFor is the default shutdown timeout for a worker, sub the
// supervisor it is or serves, or nil.
func timeoutFor(sub *Supervisor) time.Duration {
	if sub != nil {
		return 0
	}
	return DefaultShutdownTimeout
}
