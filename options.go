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
	strategy         Strategy
	maxRestarts      int
	period           time.Duration
	autoShutdown     AutoShutdown
	backoff          Backoff       // default for children; nil: none
	resetAfter       time.Duration // default for children; 0: never
	logger           *slog.Logger
	quiet            bool // WithLogger(nil): log nothing
	systemd          bool // WithSystemd
	handlers         []func(Event)
	shutdownDeadline time.Duration // WithShutdownDeadline; 0: none
	err              error         // the first bad option, returned by Serve
}

func (c *config) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

func newConfig(name string, opts []Option) config {
	c := config{maxRestarts: DefaultMaxRestarts, period: DefaultPeriod, resetAfter: DefaultBackoffReset}
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
// significant children have exited. By default it never does.
func WithAutoShutdown(a AutoShutdown) Option {
	return supervisorOption(func(c *config) {
		if !a.valid() {
			c.fail(invalidf("unknown auto shutdown %v", a))
			return
		}
		c.autoShutdown = a
	})
}

// WithShutdownDeadline bounds the supervisor's whole shutdown, for a
// deadline set outside the process such as Kubernetes'
// terminationGracePeriodSeconds: once d has passed since the supervisor
// began to shut down, every child still running is cancelled and declared
// stuck at once, without waiting for its own shutdown timeout, and Serve
// returns (with their *StuckError). d must be positive. Without it, a
// shutdown takes at most the sum of the children's shutdown timeouts.
func WithShutdownDeadline(d time.Duration) Option {
	return supervisorOption(func(c *config) {
		if d <= 0 {
			c.fail(invalidf("shutdown deadline %v is not positive", d))
			return
		}
		c.shutdownDeadline = d
	})
}

// WithLogger sets the logger that reports the supervisor's events: failures
// (warning), hung and stuck children, exceeded intensity (error, one record
// per supervisor that gives up, carrying the chain), restarts (info) and the
// other transitions (debug). Each record's message is "arbor: " and the
// event's kind ("arbor: child failed"); its attributes, stable names:
// supervisor (the path), child, restarts, error (the message), delay (a
// duration as text, such as "1.5s"), stack (a stuck or panicked goroutine's
// stack) and dropped. The default is the logger of the supervisor it is
// nested in, and slog.Default() for a root; WithLogger(nil) turns logging off
// for the supervisor and those nested in it that do not set their own. The
// logger, its Enabled method included, is called from the tree's event
// goroutine, never from a supervisor's (see WithEventHandler); a logger
// that panics loses its record.
func WithLogger(l *slog.Logger) Option {
	return supervisorOption(func(c *config) { c.logger, c.quiet = l, l == nil })
}

// childSpec is what Add records about a child.
type childSpec struct {
	restart      RestartPolicy
	timeout      time.Duration // 0: wait without limit
	backoff      Backoff
	resetAfter   time.Duration
	restartIf    func(error) bool
	startTimeout time.Duration // 0: wait for readiness without limit
	heartbeat    time.Duration // 0: no heartbeat watchdog
	err          error
	timeoutSet   bool
	significant  bool
	backoffSet   bool
	resetSet     bool
	readiness    bool
	exempt       bool // WithReadinessExempt
}

// WithReadinessExempt leaves the child out of its tree's readiness: its
// state never makes its supervisor, Health or WaitReady not ready (a
// background job waiting in backoff should not take a pod out of its
// Service), though Health still lists its check, with its reason. Its
// liveness counts as any child's: a stuck exempt child makes the tree not
// live. For a nested *Supervisor the whole subtree is exempt.
func WithReadinessExempt() ChildOption {
	return childOption(func(c *childSpec) { c.exempt = true })
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

// WithSignificant marks the child as significant for automatic shutdown (see
// WithAutoShutdown). Add rejects it on a Permanent child and in a supervisor
// without WithAutoShutdown.
func WithSignificant() ChildOption {
	return childOption(func(c *childSpec) { c.significant = true })
}

// SharedOption is an option that New takes as the default for every child of
// the supervisor, and Add takes for one child, overriding that default.
type SharedOption interface {
	Option
	ChildOption
}

// sharedOption sets a value in a supervisor's config or a child's spec, or
// records err, a bad value, in either.
type sharedOption struct {
	err   error
	sup   func(*config)
	child func(*childSpec)
}

func (o sharedOption) applySupervisor(c *config) {
	if o.err != nil {
		c.fail(o.err)
		return
	}
	o.sup(c)
}

func (o sharedOption) applyChild(c *childSpec) {
	if o.err != nil {
		c.fail(o.err)
		return
	}
	o.child(c)
}

// WithBackoff sets the restart delay policy: for every child when given to
// New, for one child when given to Add. By default a child restarts at once,
// as in OTP. A policy with bad parameters (see ConstantBackoff and
// ExponentialBackoff) makes Serve or Add return an error matching
// ErrInvalid.
func WithBackoff(b Backoff) SharedOption {
	return sharedOption{
		err:   checkBackoff(b),
		sup:   func(c *config) { c.backoff = b },
		child: func(c *childSpec) { c.backoff, c.backoffSet = b, true },
	}
}

// WithBackoffReset sets how long a child must run without failing before its
// count of consecutive failures (and so its backoff) starts again from zero.
// Zero means never, as systemd's restart counter; negative values are
// rejected. The default is DefaultBackoffReset (10 minutes, Kubernetes').
// Restart always resets the count.
func WithBackoffReset(d time.Duration) SharedOption {
	var err error
	if d < 0 {
		err = invalidf("negative backoff reset %v", d)
	}
	return sharedOption{
		err:   err,
		sup:   func(c *config) { c.resetAfter = d },
		child: func(c *childSpec) { c.resetAfter, c.resetSet = d, true },
	}
}

// WithRestartIf makes the child's restart decision a predicate of what its
// Serve returned (nil for a normal exit), in place of its restart policy's:
// restart when restart(err) is true. ErrDoNotRestart and ErrTerminateTree
// still win, and a Temporary child is still never restarted. The supervisor
// waits for the predicate, so it must not block, nor call the methods of
// the supervisor that waits for it (that deadlocks); it runs on a goroutine
// of its own, and if it panics or calls runtime.Goexit, that is reported
// (EventPolicyPanicked) and the restart policy decides. Like Kubernetes'
// container restart rules or oversight's Restart func.
func WithRestartIf(restart func(err error) bool) ChildOption {
	return childOption(func(c *childSpec) {
		if restart == nil {
			c.fail(invalidf("nil restart predicate"))
			return
		}
		c.restartIf = restart
	})
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
