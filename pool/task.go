package pool

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// A Task is a task submitted to a pool's in-memory queue: the handle Submit
// returns, to wait for its result.
type Task[T, R any] struct {
	rec record[T, R]
}

// Wait waits until the task ended, or ctx is done, and returns its result
// and error: the result and nil after an attempt succeeded; an error
// matching ErrDeadLetter after its last attempt failed; one matching
// ErrClosed if the pool shut down first. If ctx is done first it returns
// ctx's cause.
func (t *Task[T, R]) Wait(ctx context.Context) (R, error) {
	r := &t.rec
	if !r.ended.Load() {
		if ctx == nil {
			var zero R
			return zero, errInvalid("nil context")
		}
		select {
		case <-r.doneChan():
		case <-ctx.Done():
			var zero R
			return zero, context.Cause(ctx)
		}
	}
	return r.res, r.err
}

// Done returns a channel closed when the task ended.
func (t *Task[T, R]) Done() <-chan struct{} { return t.rec.doneChan() }

// closed is the Done channel of tasks that ended before anyone asked.
var closed = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// record is a task of the in-memory queue, and its Lease: it is in exactly
// one place at a time (queued, delayed, or leased to one worker), so no two
// attempts of it run at once.
type record[T, R any] struct {
	q        *queue[T, R]
	task     T
	res      R
	err      error
	errs     []error // every failed attempt's error
	attempts int
	admitted bool        // holds a unit of the queue's capacity
	claimed  atomic.Bool // finish was called: the task's end is decided
	ended    atomic.Bool // res and err are final
	mu       sync.Mutex  // guards done
	done     chan struct{}
}

// doneChan returns the channel closed when the task ended, made when
// first needed: most tasks end before anyone waits, and cost no channel.
func (r *record[T, R]) doneChan() chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done == nil {
		if r.ended.Load() {
			return closed
		}
		r.done = make(chan struct{})
	}
	return r.done
}

// finish ends the task once; later calls do nothing and return false.
func (r *record[T, R]) finish(res R, err error) bool {
	if !r.claimed.CompareAndSwap(false, true) {
		return false
	}
	r.res, r.err = res, err
	r.ended.Store(true)
	r.mu.Lock()
	if r.done != nil {
		close(r.done)
	}
	r.mu.Unlock()
	return true
}

// closedErr is the error of a task ended by its pool's shutdown.
func (r *record[T, R]) closedErr() error {
	if n := len(r.errs); n > 0 {
		return fmt.Errorf("%w after %d failed attempt(s), the last: %w", ErrClosed, n, r.errs[n-1])
	}
	return ErrClosed
}

func (r *record[T, R]) Task() (T, error) { return r.task, nil }
func (r *record[T, R]) Attempt() int     { return r.attempts }

func (r *record[T, R]) Ack(context.Context) error {
	r.finish(r.res, nil)
	return nil
}

func (r *record[T, R]) Nack(_ context.Context, delay time.Duration) error {
	r.q.retry(r, delay)
	return nil
}

func (r *record[T, R]) Extend(context.Context) error { return nil }

func (r *record[T, R]) DeadLetter(_ context.Context, err *DeadLetterError) error {
	var zero R
	r.finish(zero, err)
	return nil
}
