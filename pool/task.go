package pool

import (
	"context"
	"fmt"
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
	select {
	case <-t.rec.done:
		return t.rec.res, t.rec.err
	case <-ctx.Done():
		var zero R
		return zero, context.Cause(ctx)
	}
}

// Done returns a channel closed when the task ended.
func (t *Task[T, R]) Done() <-chan struct{} { return t.rec.done }

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
	admitted bool // holds a unit of the queue's capacity
	ended    atomic.Bool
	done     chan struct{}
	due      time.Time // a delayed retry's time
	index    int       // in the queue's delay heap, or -1
}

// finish ends the task once; later calls do nothing and return false.
func (r *record[T, R]) finish(res R, err error) bool {
	if !r.ended.CompareAndSwap(false, true) {
		return false
	}
	r.res, r.err = res, err
	close(r.done)
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
