package arbor

import "strconv"

// Strategy says which children a supervisor restarts when one of them exits
// and must be restarted.
type Strategy int

const (
	// OneForOne restarts only the child that exited. It is the default.
	OneForOne Strategy = iota
	// OneForAll stops every other running child in reverse start order, then
	// starts every non-temporary child again in start order.
	OneForAll
	// RestForOne does what OneForAll does, but only for the child that exited
	// and the children added after it.
	RestForOne
)

// String returns the strategy's name, such as "one_for_one".
func (s Strategy) String() string {
	switch s {
	case OneForOne:
		return "one_for_one"
	case OneForAll:
		return "one_for_all"
	case RestForOne:
		return "rest_for_one"
	}
	return "Strategy(" + strconv.Itoa(int(s)) + ")"
}

func (s Strategy) valid() bool { return s >= OneForOne && s <= RestForOne }

// RestartPolicy says when a child is restarted after it exits by itself.
type RestartPolicy int

const (
	// Permanent children are always restarted, after a failure or a normal
	// exit. It is the default.
	Permanent RestartPolicy = iota
	// Transient children are restarted after a failure only. After a normal
	// exit the child stays Stopped and can be started again with Restart.
	Transient
	// Temporary children are never restarted: when they exit or are stopped
	// they are removed from the supervisor.
	Temporary
)

// String returns the policy's name, such as "permanent".
func (p RestartPolicy) String() string {
	switch p {
	case Permanent:
		return "permanent"
	case Transient:
		return "transient"
	case Temporary:
		return "temporary"
	}
	return "RestartPolicy(" + strconv.Itoa(int(p)) + ")"
}

func (p RestartPolicy) valid() bool { return p >= Permanent && p <= Temporary }

// restarts reports whether a child with this policy is restarted after an
// exit by itself; failed tells a failure from a normal exit.
func (p RestartPolicy) restarts(failed bool) bool {
	return p == Permanent || (p == Transient && failed)
}

// AutoShutdown says when a supervisor shuts itself down because its
// significant children have exited (see WithAutoShutdown). The zero value,
// the default, never does, and then Add rejects significant children.
type AutoShutdown int

const (
	noAutoShutdown AutoShutdown = iota // the default: significant children are rejected
	// AnySignificant shuts the supervisor down as soon as any significant
	// child exits without being restarted.
	AnySignificant
	// AllSignificant shuts the supervisor down once every significant child
	// has exited without being restarted.
	AllSignificant
)

// String returns the setting's name, such as "any_significant".
func (a AutoShutdown) String() string {
	switch a {
	case noAutoShutdown:
		return "none"
	case AnySignificant:
		return "any_significant"
	case AllSignificant:
		return "all_significant"
	}
	return "AutoShutdown(" + strconv.Itoa(int(a)) + ")"
}

func (a AutoShutdown) valid() bool { return a >= noAutoShutdown && a <= AllSignificant }
