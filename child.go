package arbor

import (
	"context"
	"strconv"
	"time"
)

// State is a child's state as Children reports it.
type State int

const (
	// Stopped: no copy of the child runs and none is about to start. A
	// transient child after a normal exit, a child stopped with Terminate,
	// and every child after Serve returned are Stopped.
	Stopped State = iota
	// Running: a copy of the child runs and the supervisor has not asked it to
	// stop.
	Running
	// Restarting: the child has exited or been stopped and the supervisor is
	// about to start it again (during a group restart).
	Restarting
	// Stopping: the supervisor cancelled the child's context and waits for it
	// to return.
	Stopping
	// Stuck: the child did not return within its shutdown timeout after its
	// context was cancelled. Its goroutine may still run, so the supervisor
	// will not start the child again until it returns.
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
	// or nil. A *PanicError for a panic, ErrGoexit for runtime.Goexit.
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

// child is a supervisor's record of one child: its spec and its run state.
// While the supervisor serves, its loop goroutine owns the record; otherwise
// the supervisor's mutex guards it.
type child struct {
	name       string
	worker     Worker
	*childSpec // shared with other children added without options: read only

	prev, next *child // start order
	ord        uint64 // position in start order: increases along the list

	state    State
	since    int64 // when it entered state, in Unix nanoseconds (display only)
	restarts int
	lastErr  error
	count    Counters // over the supervisor's whole life

	run    uint64 // serial of the newest copy started, unique in the supervisor
	cancel context.CancelCauseFunc
	cc     *copyCtx    // that copy's context if it may signal readiness or heartbeats, or nil
	stuck  *StuckError // set while stuck

	startedAt time.Time  // when the newest copy started
	cold      *childCold // the rest, allocated when first needed

	gen           uint32   // counts Terminate and Remove calls: group restarts queued before one do not start it
	pendingStarts int32    // queued group restarts that will start it
	slot          int32    // index in the deadlines heap, or -1
	wait          waitKind // what happens at due

	// Flags, kept together so that the record stays small.
	removed       bool // deleted; exits of its copies are ignored
	tracks        bool // its readiness is tracked: WithReadiness, or a *Supervisor
	holdOff       bool // Terminate before Serve: Serve leaves the child Stopped
	alive         bool // the newest copy has not returned yet
	stopping      bool // the supervisor cancelled the running copy: its return is a stop
	held          bool // a queued stop will stop it: an exit by itself counts as stopped
	startOnReturn bool // start it as soon as its stuck copy returns
	removeOnStop  bool // Remove asked for it: delete it once its copy returns
	queued        bool // waits in the start queue for an earlier child's readiness
	isRestart     bool // its next start is a restart, counted and reported as such
}

// childCold is the part of a child's record that only a child that has
// failed, waits for something, or is waited for needs. It is allocated on
// first use, so that an idle child's record stays small; reads of a child
// without one see zero values.
type childCold struct {
	failures  int        // consecutive failures, for backoff
	exitErr   error      // what the exit that asked for a restart returned
	nextStart time.Time  // when it starts again, as Children shows it, or zero
	due       time.Time  // when its deadline (delayed restart, start timeout, heartbeat, hang) is due
	group     []member   // the group restart due with this child's delayed restart
	waiters   []*request // Terminate and Remove calls waiting for it to stop
	hung      error      // why the supervisor cancelled it as a failure (start timeout, missed heartbeat)
}

// x returns c's cold record, allocating it if need be.
func (c *child) x() *childCold {
	if c.cold == nil {
		c.cold = new(childCold)
	}
	return c.cold
}

// noCold is what a child without a cold record reads.
var noCold childCold

// r returns c's cold record for reading: a zero one if it has none.
func (c *child) r() *childCold {
	if c.cold == nil {
		return &noCold
	}
	return c.cold
}

func (c *child) info() ChildInfo {
	return ChildInfo{
		Name:        c.name,
		State:       c.state,
		Restarts:    c.restarts,
		LastError:   c.lastErr,
		Failures:    c.r().failures,
		NextStart:   c.r().nextStart,
		Policy:      c.restart,
		Significant: c.significant,
	}
}

// timeoutFor is the default shutdown timeout for a worker.
func timeoutFor(w Worker) time.Duration {
	if _, ok := w.(*Supervisor); ok {
		return 0
	}
	return DefaultShutdownTimeout
}
