package pool

import (
	"fmt"
	"time"
)

// EventKind says what happened to a task.
type EventKind int

// The kinds of Event.
const (
	// EventStarted: an attempt started.
	EventStarted EventKind = iota
	// EventSucceeded: an attempt returned nil, the task is done.
	EventSucceeded
	// EventFailed: an attempt returned an error, panicked, or was cut
	// short; a retry or a dead letter follows.
	EventFailed
	// EventRetried: the task will be attempted again after Delay.
	EventRetried
	// EventDeadLettered: the task failed for good; Err is its
	// *DeadLetterError.
	EventDeadLettered
	// EventAbandoned: the attempt passed its hard limit and was abandoned;
	// Stack is its goroutine's stack.
	EventAbandoned
	// EventSourceError: the source failed to lease, ack, nack, extend or
	// dead-letter (Err says which); the source decides what becomes of the
	// task, typically a new delivery after its lease expires.
	EventSourceError
)

var kindNames = [...]string{"started", "succeeded", "failed", "retried", "dead_lettered", "abandoned", "source_error"}

// String returns the kind's name, such as "dead_lettered".
func (k EventKind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// An Event is one step of one task in a pool.
type Event struct {
	Kind EventKind
	// Pool is the pool's name; Worker the name of the worker (a child of
	// the pool's supervisor) the attempt ran on.
	Pool, Worker string
	// Task is the task.
	Task any
	// Attempt is the attempt's number, 1 for the first.
	Attempt int
	// Err is the attempt's failure, or the task's *DeadLetterError.
	Err error
	// Delay is the wait before a retry.
	Delay time.Duration
	// Stack is an abandoned attempt's stack, when it could be found.
	Stack []byte
}

// Stats counts a pool's workers and tasks. The counts of tasks and attempts
// cover the pool's whole life.
type Stats struct {
	// Workers is the number of live workers; Busy how many of them run an
	// attempt.
	Workers, Busy int
	// Queued counts the tasks waiting in the in-memory queue, retries
	// waiting for their delay included.
	Queued int
	// AbandonedRunning counts abandoned attempts that have not returned.
	AbandonedRunning int
	// Succeeded counts tasks that succeeded; Failed, attempts that failed;
	// Retried, retries decided; DeadLettered, tasks dead-lettered;
	// Abandoned, attempts abandoned.
	Succeeded, Failed, Retried, DeadLettered, Abandoned uint64
}
