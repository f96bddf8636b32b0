package pool

import (
	"log/slog"
	"runtime"
	"time"

	"github.com/arborgo/arbor"
)

var arborErrInvalid = arbor.ErrInvalid

// Defaults of a pool's configuration.
const (
	// DefaultQueue is the capacity of the in-memory queue.
	DefaultQueue = 1024
	// DefaultMaxAttempts is how many attempts a task gets.
	DefaultMaxAttempts = 3
	// DefaultIdle is how long a worker above an autoscaling pool's minimum
	// stays idle before it is retired.
	DefaultIdle = 30 * time.Second
)

// DefaultRetryBackoff is the delay between attempts unless WithRetryBackoff
// says otherwise: 1 second, doubling up to 1 minute, with 20% jitter.
var DefaultRetryBackoff arbor.Backoff = arbor.ExponentialBackoff{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: 0.2}

// An Option configures a pool in New or NewWithSetup.
type Option interface{ apply(*config) }

type option func(*config)

func (f option) apply(c *config) { f(c) }

// config is a pool's configuration, fixed in New.
type config struct {
	min, max     int
	idle         time.Duration
	queue        int
	attempts     int
	backoff      arbor.Backoff
	soft, hard   time.Duration
	beat         time.Duration
	extend       time.Duration
	maxTasks     int
	maxAbandoned int // -1: as many as the pool's maximum size
	source       any // a Source[T], checked by New
	deadLetter   any // a func(T, *DeadLetterError), checked by New
	events       []func(Event)
	logger       *slog.Logger
	quiet        bool
	supervisor   []arbor.Option
	err          error
}

func (c *config) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

func newConfig(opts []Option) config {
	n := runtime.GOMAXPROCS(0)
	c := config{min: n, max: n, idle: DefaultIdle, queue: DefaultQueue, attempts: DefaultMaxAttempts,
		backoff: DefaultRetryBackoff, maxAbandoned: -1}
	for _, o := range opts {
		if o == nil {
			c.fail(errInvalid("nil Option"))
			continue
		}
		o.apply(&c)
	}
	if c.logger == nil && !c.quiet {
		c.logger = slog.Default()
	}
	return c
}

// WithWorkers gives the pool a fixed number of workers, n ≥ 1. The default
// is runtime.GOMAXPROCS(0).
func WithWorkers(n int) Option {
	return option(func(c *config) {
		if n < 1 {
			c.fail(errInvalid("%d workers: need at least 1", n))
			return
		}
		c.min, c.max = n, n
	})
}

// WithAutoscale lets the number of workers vary between min ≥ 1 and max ≥
// min: the pool adds workers, up to max, as soon as tasks wait in its queue
// with no worker idle, and retires a worker that stayed idle for the whole
// idle window (DefaultIdle if idle is zero), down to min.
func WithAutoscale(min, max int, idle time.Duration) Option {
	return option(func(c *config) {
		switch {
		case min < 1:
			c.fail(errInvalid("autoscale minimum %d: need at least 1", min))
		case max < min:
			c.fail(errInvalid("autoscale maximum %d below minimum %d", max, min))
		case idle < 0:
			c.fail(errInvalid("negative idle window %v", idle))
		default:
			c.min, c.max = min, max
			if idle > 0 {
				c.idle = idle
			}
		}
	})
}

// WithQueue sets the capacity of the in-memory queue: how many submitted
// tasks may wait for a worker before Submit blocks and TrySubmit fails. It
// must be at least 1; the default is DefaultQueue. Retries and tasks that a
// pool's own handlers submit do not wait for room, so the queue may hold
// more than its capacity.
func WithQueue(capacity int) Option {
	return option(func(c *config) {
		if capacity < 1 {
			c.fail(errInvalid("queue capacity %d: need at least 1", capacity))
			return
		}
		c.queue = capacity
	})
}

// WithMaxAttempts sets how many attempts a task gets before it is
// dead-lettered, n ≥ 1 (1: no retry). The default is DefaultMaxAttempts.
// For a task from a Source the attempt is its delivery count, so that the
// limit holds across processes.
func WithMaxAttempts(n int) Option {
	return option(func(c *config) {
		if n < 1 {
			c.fail(errInvalid("%d attempts: need at least 1", n))
			return
		}
		c.attempts = n
	})
}

// WithRetryBackoff sets the delay before a task's next attempt, computed
// from the number of attempts that failed (1 after the first). The default
// is DefaultRetryBackoff; arbor.ConstantBackoff(0) retries at once.
func WithRetryBackoff(b arbor.Backoff) Option {
	return option(func(c *config) {
		if b == nil {
			c.fail(errInvalid("nil retry backoff"))
			return
		}
		c.backoff = b
	})
}

// WithTimeLimit limits each attempt's time. At the soft limit the attempt's
// context is cancelled with the cause ErrSoftTimeout. At the hard limit the
// attempt is abandoned (see the package doc). Zero means no limit; a hard
// limit must be above a soft one.
func WithTimeLimit(soft, hard time.Duration) Option {
	return option(func(c *config) {
		switch {
		case soft < 0 || hard < 0:
			c.fail(errInvalid("negative time limit (soft %v, hard %v)", soft, hard))
		case soft > 0 && hard > 0 && hard <= soft:
			c.fail(errInvalid("hard time limit %v not above the soft one %v", hard, soft))
		default:
			c.soft, c.hard = soft, hard
		}
	})
}

// WithHeartbeat requires each attempt to call Heartbeat on its context at
// least once per timeout, counted from its start. An attempt that misses it
// is hung: its context is cancelled with the cause arbor.ErrHung, and it is
// abandoned if it does not return within the hard limit's grace (see the
// package doc). timeout must be positive.
func WithHeartbeat(timeout time.Duration) Option {
	return option(func(c *config) {
		if timeout <= 0 {
			c.fail(errInvalid("heartbeat timeout %v: need a positive one", timeout))
			return
		}
		c.beat = timeout
	})
}

// WithLeaseExtension makes the pool extend the lease of every running
// attempt (Lease.Extend) once per every, for a Source whose leases expire,
// such as a JetStream consumer's AckWait: every must be positive and well
// below the lease. Leases of abandoned attempts are extended too, until they
// return, so that no other process starts the task meanwhile. A worker waits
// for an Extend in flight before it settles the lease: the lease's methods
// never run at once.
func WithLeaseExtension(every time.Duration) Option {
	return option(func(c *config) {
		if every <= 0 {
			c.fail(errInvalid("lease extension period %v: need a positive one", every))
			return
		}
		c.extend = every
	})
}

// WithMaxTasksPerWorker replaces a worker after it ran n attempts (Celery's
// worker_max_tasks_per_child): its state is released and a new worker with
// fresh state takes its place. n must be at least 1; by default workers are
// never replaced for that.
func WithMaxTasksPerWorker(n int) Option {
	return option(func(c *config) {
		if n < 1 {
			c.fail(errInvalid("%d tasks per worker: need at least 1", n))
			return
		}
		c.maxTasks = n
	})
}

// WithMaxAbandoned sets how many abandoned attempts may still run before the
// pool fails: when one more is abandoned, Serve shuts the pool down and
// returns an error matching ErrTooManyAbandoned. n must not be negative
// (0: the first abandonment fails the pool); the default is the pool's
// maximum number of workers at the time (Resize changes it), so that
// abandoned goroutines never outnumber the live ones.
func WithMaxAbandoned(n int) Option {
	return option(func(c *config) {
		if n < 0 {
			c.fail(errInvalid("negative maximum of abandoned attempts %d", n))
			return
		}
		c.maxAbandoned = n
	})
}

// WithSource makes the pool take its tasks from src instead of its
// in-memory queue; Submit and TrySubmit then fail. src's task type must be
// the pool's.
func WithSource[T any](src Source[T]) Option {
	return option(func(c *config) {
		if src == nil {
			c.fail(errInvalid("nil Source"))
			return
		}
		c.source = src
	})
}

// WithDeadLetter calls fn with each task that is dead-lettered, before its
// source is told; fn's task type must be the pool's. The worker that ran
// the last attempt waits for it, so it should be quick, and must not wait
// for the pool: a Submit that waits for room can wait for that very worker
// (use TrySubmit, or a Submit with a deadline). A panic or runtime.Goexit in
// it is contained.
func WithDeadLetter[T any](fn func(task T, err *DeadLetterError)) Option {
	return option(func(c *config) {
		if fn == nil {
			c.fail(errInvalid("nil dead-letter function"))
			return
		}
		c.deadLetter = fn
	})
}

// WithEventHandler calls h with every Event of the pool. The pool waits
// for h, which runs on a goroutine of its own so that a panic or
// runtime.Goexit is contained, concurrently with calls for other workers:
// it must be safe for concurrent use, quick, and must not wait for the pool
// (see WithDeadLetter).
func WithEventHandler(h func(Event)) Option {
	return option(func(c *config) {
		if h == nil {
			c.fail(errInvalid("nil event handler"))
			return
		}
		c.events = append(c.events, h)
	})
}

// WithLogger sets where the pool logs what goes wrong: dead letters,
// abandoned attempts (with their stacks), and errors of its source. The
// default is slog.Default(); nil logs nothing. The workers' own exits are
// logged by the pool's supervisor, as in any Arbor tree.
func WithLogger(l *slog.Logger) Option {
	return option(func(c *config) {
		c.logger, c.quiet = l, l == nil
	})
}

// WithSupervisor passes options to the supervisor of the pool's workers,
// such as arbor.WithIntensity, which bounds how often workers may crash
// (panic) before the pool fails, or arbor.WithBackoff, which spaces their
// restarts.
func WithSupervisor(opts ...arbor.Option) Option {
	return option(func(c *config) { c.supervisor = append(c.supervisor, opts...) })
}

// watched reports whether attempts need a watchdog.
func (c *config) watched() bool {
	return c.soft > 0 || c.hard > 0 || c.beat > 0 || c.extend > 0
}

// stopTimeout is how long the pool's supervisor waits for a worker to
// return once it cancelled it: the hard limit's grace, or arbor's default.
func (c *config) stopTimeout() time.Duration {
	if c.hard > 0 {
		return c.hard - c.soft
	}
	return arbor.DefaultShutdownTimeout
}
