package arbor

import (
	"log/slog"
	"strings"
	"time"
)

// Defaults for a supervisor's restart intensity and a worker's shutdown
// timeout.
const (
	DefaultMaxRestarts     = 3
	DefaultPeriod          = 5 * time.Second
	DefaultShutdownTimeout = 5 * time.Second
)

// An Option configures a Supervisor in New.
type Option interface{ applySupervisor(*config) }

// A ChildOption configures one child in Add.
type ChildOption interface{ applyChild(*childSpec) }

type supervisorOption func(*config)

func (f supervisorOption) applySupervisor(c *config) { f(c) }

type childOption func(*childSpec)

func (f childOption) applyChild(c *childSpec) { f(c) }

// config is a supervisor's configuration, fixed in New.
type config struct {
	strategy     Strategy
	maxRestarts  int
	period       time.Duration
	autoShutdown AutoShutdown
	logger       *slog.Logger
	quiet        bool  // WithLogger(nil): log nothing
	err          error // the first bad option, returned by Serve
}

func (c *config) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

func newConfig(name string, opts []Option) config {
	c := config{maxRestarts: DefaultMaxRestarts, period: DefaultPeriod}
	if err := checkName(name); err != nil {
		c.fail(err)
	}
	for _, o := range opts {
		if o == nil {
			c.fail(invalidf("nil Option"))
			continue
		}
		o.applySupervisor(&c)
	}
	return c
}

// WithStrategy sets the restart strategy. The default is OneForOne.
func WithStrategy(s Strategy) Option {
	return supervisorOption(func(c *config) {
		if !s.valid() {
			c.fail(invalidf("unknown strategy %v", s))
			return
		}
		c.strategy = s
	})
}

// WithIntensity sets the restart intensity: at most maxRestarts restarts
// within any period. maxRestarts must be at least 0 (0 means the first
// restart needed shuts the supervisor down) and period must be positive.
// The default is DefaultMaxRestarts in DefaultPeriod: 3 in 5 seconds.
func WithIntensity(maxRestarts int, period time.Duration) Option {
	return supervisorOption(func(c *config) {
		switch {
		case maxRestarts < 0:
			c.fail(invalidf("negative maxRestarts %d", maxRestarts))
		case period <= 0:
			c.fail(invalidf("period %v is not positive", period))
		default:
			c.maxRestarts, c.period = maxRestarts, period
		}
	})
}

// WithAutoShutdown sets when the supervisor shuts itself down because its
// significant children have exited. The default is Never.
func WithAutoShutdown(a AutoShutdown) Option {
	return supervisorOption(func(c *config) {
		if !a.valid() {
			c.fail(invalidf("unknown auto shutdown %v", a))
			return
		}
		c.autoShutdown = a
	})
}

// WithLogger sets the logger that reports failures, escalations and stuck
// children. The default is slog.Default() at the time of logging;
// WithLogger(nil) turns logging off. The supervisor calls the logger's handler
// from its own goroutine: a handler must not block, and must not call the
// supervisor's methods that wait for it (Add, Terminate, Restart, Remove,
// Children).
func WithLogger(l *slog.Logger) Option {
	return supervisorOption(func(c *config) { c.logger, c.quiet = l, l == nil })
}

// childSpec is what Add records about a child.
type childSpec struct {
	restart     RestartPolicy
	timeout     time.Duration // 0: wait without limit
	timeoutSet  bool
	significant bool
	err         error
}

// WithRestart sets the child's restart policy. The default is Permanent.
func WithRestart(p RestartPolicy) ChildOption {
	return childOption(func(c *childSpec) {
		if !p.valid() {
			c.fail(invalidf("unknown restart policy %v", p))
			return
		}
		c.restart = p
	})
}

// WithShutdownTimeout sets how long the supervisor waits for the child to
// return after cancelling its context before declaring it stuck. Zero means
// wait without limit (OTP's infinity); negative values are rejected. The
// default is DefaultShutdownTimeout (5 seconds) for workers and no limit for
// a *Supervisor, which bounds the shutdown of its own children.
func WithShutdownTimeout(d time.Duration) ChildOption {
	return childOption(func(c *childSpec) {
		if d < 0 {
			c.fail(invalidf("negative shutdown timeout %v", d))
			return
		}
		c.timeout, c.timeoutSet = d, true
	})
}

// Significant marks the child as significant for automatic shutdown (see
// WithAutoShutdown). Add rejects it on a Permanent child and in a supervisor
// whose auto shutdown is Never.
func Significant() ChildOption {
	return childOption(func(c *childSpec) { c.significant = true })
}

func (c *childSpec) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// checkName rejects names that would make paths in a tree ambiguous.
func checkName(name string) error {
	switch {
	case name == "":
		return invalidf("empty name")
	case strings.Contains(name, "/"):
		return invalidf("name %q contains '/'", name)
	}
	return nil
}
