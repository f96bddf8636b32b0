package pool

import (
	"context"
	"time"
)

// A Source leases tasks to a pool: a broker's consumer, a database table,
// or the pool's own in-memory queue. A leased task belongs to the pool until
// it tells the lease how the task ended, or the lease expires (then the
// source may lease it again, to this process or another, and counts a new
// delivery).
//
// The contract maps onto brokers directly. A JetStream pull consumer: Lease
// is a fetch of one message, Ack is Ack, Nack is NakWithDelay, Extend is
// InProgress, DeadLetter is Term plus a publish to a subject of the user's,
// and Attempt is the message's NumDelivered. A PostgreSQL table: Lease is
// SELECT ... FOR UPDATE SKIP LOCKED that sets a lease_until and increments
// an attempts column, Ack deletes the row, Nack sets run_at, Extend pushes
// lease_until, DeadLetter moves the row, and a reaper returns rows whose
// lease expired.
//
// A pool calls Lease from each idle worker, concurrently. It calls the
// methods of one Lease from one goroutine at a time, and exactly one of
// Ack, Nack and DeadLetter once, after which it drops the lease; Extend may
// be called any number of times before.
type Source[T any] interface {
	// Lease waits for a task and leases it. It returns ctx's error once ctx
	// is done; any other error is a fault of the source, which fails the
	// worker that called it (it is restarted under the pool's restart
	// intensity).
	Lease(ctx context.Context) (Lease[T], error)
}

// A Lease is one delivery of a task.
type Lease[T any] interface {
	// Task returns the task. An error (a message that cannot be decoded)
	// dead-letters the delivery at once, without an attempt.
	Task() (T, error)
	// Attempt is the delivery count: 1 at the first delivery, counted by
	// the source across processes where it can. A lease that reports less
	// than 1 is reported as a source error, and its task gets no retry.
	Attempt() int
	// Ack says the task succeeded: the source forgets it.
	Ack(ctx context.Context) error
	// Nack says the attempt failed or was not run: deliver the task again
	// after delay.
	Nack(ctx context.Context, delay time.Duration) error
	// Extend says the attempt still runs: keep the lease.
	Extend(ctx context.Context) error
	// DeadLetter says the task failed for good: err holds what this
	// process saw of its attempts. The source keeps it for inspection and
	// never delivers it again.
	DeadLetter(ctx context.Context, err *DeadLetterError) error
}
