package jetstream

import "time"

// An Option configures a Source in New.
type Option interface{ apply(*config) }

type option func(*config)

func (f option) apply(c *config) { f(c) }

type config struct {
	codec    any // a Codec[T], checked by New
	dead     string
	attempts int
	expiry   time.Duration
	timeout  time.Duration
	err      error
}

func (c *config) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// DefaultPullExpiry is how long one pull request waits at the server for a
// message (see WithPullExpiry).
const DefaultPullExpiry = 10 * time.Second

// WithCodec sets how tasks are encoded; the default is JSON. c's task type
// must be the source's.
func WithCodec[T any](c Codec[T]) Option {
	return option(func(cf *config) {
		if c == nil {
			cf.fail(invalid(nil, "nil Codec"))
			return
		}
		cf.codec = c
	})
}

// WithDeadLetterSubject makes the source publish every dead-lettered task
// to subject, as a [DeadLetter] in JSON, before it terminates the message.
// A stream other than the source's must capture subject (New checks it),
// so that dead letters are kept; the source's consumer must not see it.
// Without it, a dead letter only terminates the message (TermWithReason),
// which the server reports as an advisory.
func WithDeadLetterSubject(subject string) Option {
	return option(func(c *config) {
		if subject == "" || !validSubject(subject, false) {
			c.fail(invalid(nil, "dead-letter subject %q: need a subject without wildcards", subject))
			return
		}
		c.dead = subject
	})
}

// WithMaxAttempts tells the source the pool's maximum number of attempts,
// n ≥ 1: give the pool the same (pool.WithMaxAttempts, or PoolOptions). A
// delivery beyond n can only follow an attempt that never settled (its
// process died during it); the pool dead-letters it without running it, so
// that a task that kills its process does not loop, provided the consumer
// delivers it: New requires the consumer's MaxDeliver to be unlimited (-1)
// or at least n (n+1 lets the pool see that extra delivery). Without this
// option the source does not check MaxDeliver.
func WithMaxAttempts(n int) Option {
	return option(func(c *config) {
		if n < 1 {
			c.fail(invalid(nil, "%d attempts: need at least 1", n))
			return
		}
		c.attempts = n
	})
}

// WithPullExpiry sets how long a pull request waits at the server for a
// message before the source sends a new one (DefaultPullExpiry by
// default, capped by the consumer's MaxRequestExpires). d must be at least
// 100 milliseconds. A request still open when its pool stops may take a
// message up to d later: the source keeps it half a second for another
// Lease, then gives it back (a Nak, which counts as a delivery); Close gives
// such messages back at once, and ends the requests. d must be between
// 100 milliseconds and an hour.
func WithPullExpiry(d time.Duration) Option {
	return option(func(c *config) {
		if d < 100*time.Millisecond || d > maxPullExpiry {
			c.fail(invalid(nil, "pull expiry %v: need between 100ms and %v", d, maxPullExpiry))
			return
		}
		c.expiry = d
	})
}

// WithTimeout bounds each call to the server that waits for an answer: a
// synchronous Ack or Term, a dead letter's publish, a check of the
// consumer. The default is the JetStream context's DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return option(func(c *config) {
		if d <= 0 {
			c.fail(invalid(nil, "timeout %v: need a positive one", d))
			return
		}
		c.timeout = d
	})
}

// maxPullExpiry bounds WithPullExpiry: a pull request is meant to end and be
// sent again, not to wait for ever.
const maxPullExpiry = time.Hour
