package arbor

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime/debug"
	"time"
)

// DefaultBackoffReset is how long a child must run without failing before its
// count of consecutive failures starts again from zero, unless
// WithBackoffReset says otherwise. It is Kubernetes' figure for
// CrashLoopBackOff: a child that stayed up for ten minutes is healthy, and
// its next failure is treated as a first one.
const DefaultBackoffReset = 10 * time.Minute

// Backoff is a restart delay policy: how long to wait before restarting a
// child that must be restarted. The supervisor waits on its own timer, in its
// own goroutine; the child has no goroutine while it waits.
//
// Implement it to plug in a policy of your own. Delay is called from the
// supervisor's goroutine and must not block; a negative delay counts as zero.
type Backoff interface {
	// Delay returns the wait before restarting a child whose count of
	// consecutive failures is failures (1 for the first failure after a
	// reset).
	Delay(failures int) time.Duration
}

// NoBackoff restarts at once, as OTP does. It is the default.
func NoBackoff() Backoff { return constant(0) }

// ConstantBackoff waits d before every restart. d must not be negative.
func ConstantBackoff(d time.Duration) Backoff { return constant(d) }

type constant time.Duration

func (c constant) Delay(int) time.Duration { return time.Duration(c) }

func (c constant) validate() error {
	if c < 0 {
		return invalidf("negative constant backoff %v", time.Duration(c))
	}
	return nil
}

// ExponentialBackoff waits Initial before the first restart, then
// Multiplier times longer before each further consecutive one, never more
// than Max:
//
//	delay(n) = min(Max, Initial × Multiplier^(n−1))
//
// for the n-th consecutive failure. With ImmediateFirst the first restart
// after a reset happens at once (Kubernetes' style) and the sequence starts at
// the second: 0, Initial, Initial×Multiplier, ...
//
// Jitter, a fraction in [0, 1], spreads restarts of many children: each
// delay is drawn uniformly from [d×(1−Jitter), d], so that it never exceeds
// the cap. Zero Jitter gives exact delays.
//
// Initial must be positive, Max at least Initial, Multiplier at least 1.
// Kubernetes' CrashLoopBackOff is
//
//	ExponentialBackoff{Initial: 10 * time.Second, Max: 5 * time.Minute, Multiplier: 2}
type ExponentialBackoff struct {
	Initial        time.Duration
	Max            time.Duration
	Multiplier     float64
	Jitter         float64
	ImmediateFirst bool
}

// Delay returns the delay before restarting after the failures-th
// consecutive failure.
func (b ExponentialBackoff) Delay(failures int) time.Duration {
	n := failures - 1
	if b.ImmediateFirst {
		if n <= 0 {
			return 0
		}
		n--
	}
	if n < 0 {
		n = 0
	}
	d := b.Max // computed in float64, which cannot overflow; compared before converting back
	if f := float64(b.Initial) * math.Pow(b.Multiplier, float64(n)); f < float64(b.Max) {
		d = time.Duration(f)
	}
	if b.Jitter > 0 {
		d -= time.Duration(float64(d) * b.Jitter * rand.Float64())
	}
	return d
}

func (b ExponentialBackoff) validate() error {
	switch {
	case b.Initial <= 0:
		return invalidf("exponential backoff: Initial %v is not positive", b.Initial)
	case b.Max < b.Initial:
		return invalidf("exponential backoff: Max %v is below Initial %v", b.Max, b.Initial)
	case !(b.Multiplier >= 1) || math.IsInf(b.Multiplier, 0):
		return invalidf("exponential backoff: Multiplier %v is below 1 or not finite", b.Multiplier)
	case !(b.Jitter >= 0 && b.Jitter <= 1):
		return invalidf("exponential backoff: Jitter %v is outside [0, 1]", b.Jitter)
	}
	return nil
}

// checkBackoff validates a policy that knows how to.
func checkBackoff(b Backoff) error {
	if isNilBackoff(b) {
		return invalidf("nil Backoff")
	}
	if v, ok := b.(interface{ validate() error }); ok {
		return v.validate()
	}
	return nil
}

func isNilBackoff(b Backoff) bool {
	if b == nil {
		return true
	}
	switch v := reflect.ValueOf(b); v.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// delayFor returns the delay before c's next restart, not negative. A policy
// that panics is logged and restarts at once: user code never crashes the
// supervisor.
func (s *Supervisor) delayFor(c *child) (d time.Duration) {
	if c.backoff == nil {
		return 0
	}
	defer func() {
		if v := recover(); v != nil {
			s.emit(EventPolicyPanicked, c, &PanicError{Value: v, Stack: debug.Stack()})
			d = 0
		}
	}()
	return max(c.backoff.Delay(c.r().failures), 0)
}

// waitKind says what a child waits for in the deadlines heap.
type waitKind uint8

const (
	waitRestart waitKind = iota // a delayed restart (or group restart) is due
	waitStart                   // its start timeout: it has not signalled readiness
	waitBeat                    // its heartbeat period: check for a heartbeat
	waitHang                    // its shutdown timeout after it was cancelled as hung
)

// deadlines is the supervisor's set of timed waits, one per child at most: a
// min-heap of children by due time, served by one timer. A child that does not
// run waits for its delayed restart; a running one for its start timeout, its
// next heartbeat or, once cancelled as hung, its return.
type deadlines []*child

func (h deadlines) Len() int           { return len(h) }
func (h deadlines) Less(i, j int) bool { return h[i].cold.due.Before(h[j].cold.due) }
func (h deadlines) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].slot, h[j].slot = int32(i), int32(j)
}
func (h *deadlines) Push(x any) {
	c := x.(*child)
	c.slot = int32(len(*h))
	*h = append(*h, c)
}
func (h *deadlines) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	c.slot = -1
	return c
}

// schedule makes c wait until at before its restart.
func (s *Supervisor) schedule(c *child, at time.Time) {
	c.x().nextStart = at
	s.deadline(c, at, waitRestart)
}

// deadline sets c's one timed wait.
func (s *Supervisor) deadline(c *child, at time.Time, kind waitKind) {
	c.x().due, c.wait = at, kind
	if c.slot >= 0 {
		heap.Fix(&s.l.pending, int(c.slot))
	} else {
		heap.Push(&s.l.pending, c)
	}
	s.armPending()
}

// unschedule cancels c's timed wait, if any: for a child that does not run,
// its delayed restart and the group restart due with it.
func (s *Supervisor) unschedule(c *child) {
	if c.slot < 0 {
		return
	}
	heap.Remove(&s.l.pending, int(c.slot))
	for _, m := range c.cold.group { // a group restart that will not happen
		x := m.c
		if m.gen != x.gen {
			continue // stopped since: not counted
		}
		x.pendingStarts--
		if x.pendingStarts == 0 {
			x.x().nextStart = time.Time{}
			if !x.alive && x.state == Restarting {
				s.set(x, Stopped)
			}
		}
	}
	if c.wait == waitRestart {
		c.cold.nextStart = time.Time{}
	}
	c.cold.group = nil
	s.armPending()
}

// armPending sets the deadlines timer for the earliest deadline.
func (s *Supervisor) armPending() {
	l := &s.l
	if len(l.pending) == 0 {
		if l.pendingArmed {
			l.pendingTimer.Stop()
			l.pendingArmed = false
		}
		return
	}
	at := l.pending[0].cold.due
	if l.pendingArmed && at.Equal(l.pendingAt) {
		return
	}
	l.pendingTimer.Reset(time.Until(at))
	l.pendingAt, l.pendingArmed = at, true
}

// due handles the deadlines whose time has come.
func (s *Supervisor) due() {
	l := &s.l
	l.pendingArmed = false
	now := time.Now()
	for len(l.pending) > 0 && !l.pending[0].cold.due.After(now) {
		c := heap.Pop(&l.pending).(*child)
		switch c.wait {
		case waitRestart:
			c.cold.nextStart = time.Time{}
			group := c.cold.group
			c.cold.group = nil
			if group != nil {
				s.startGroup(c, group)
			} else {
				s.restartOne(c)
			}
		case waitStart:
			s.hang(c, fmt.Errorf("%w: child %q not ready after %v", ErrStartTimeout, c.name, c.startTimeout))
		case waitBeat:
			s.checkBeat(c, now)
		case waitHang:
			s.hangStuck(c)
		}
		if l.shutting {
			return
		}
	}
	s.armPending()
}
