package arbor

import (
	"math"
	"math/rand/v2"
	"reflect"
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
// Implement it to plug in a policy of your own. The supervisor waits for
// Delay, so it must not block; a negative delay counts as zero. A policy of
// your own runs on a goroutine of its own: if it panics or calls
// runtime.Goexit, that is reported (EventPolicyPanicked) and the child
// restarts at once.
type Backoff interface {
	// Delay returns the wait before restarting a child whose count of
	// consecutive failures is failures (1 for the first failure after a
	// reset).
	Delay(failures int) time.Duration
}

// ConstantBackoff waits d before every restart; ConstantBackoff(0) restarts
// at once, as OTP does and as a child without a Backoff does. d must not be
// negative.
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
// of the user's runs through guard: one that panics or calls
// runtime.Goexit is logged and restarts at once.
func (s *Supervisor) delayFor(c *child) time.Duration {
	switch b := c.backoff.(type) {
	case nil:
		return 0
	case constant, ExponentialBackoff: // ours: they neither panic nor exit
		return max(b.Delay(c.failures()), 0)
	}
	var d time.Duration
	if err := guard(func() { d = c.backoff.Delay(c.failures()) }); err != nil {
		s.emit(EventPolicyPanicked, c, err)
		return 0
	}
	return max(d, 0)
}
