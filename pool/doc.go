// Package pool runs tasks on a pool of supervised workers, with
// at-least-once execution: Celery's job inside one process, built on Arbor.
//
// A Pool is an arbor.Worker (and an arbor.Nested one): serve it, or add it
// to a supervisor, where its workers show as the children of its own
// supervisor ("worker-1", "worker-2", ...) in Tree, Health, events and the
// live view. Tasks come from a bounded in-memory queue (Submit, TrySubmit)
// or from a Source such as a broker's consumer (WithSource).
//
// # Tasks end exactly once
//
// A task succeeds when an attempt returns nil; its result is what Wait
// returns. An attempt that returns an error, panics, calls runtime.Goexit,
// is cut short by a limit, or is abandoned, fails; the task is then retried
// after a delay from its retry backoff (WithRetryBackoff), until it has had
// its maximum number of attempts (WithMaxAttempts). Then, or at once if the
// error wraps arbor.ErrDoNotRestart (the handler refuses retries), it is
// dead-lettered: the WithDeadLetter function sees it, the source is told,
// and Wait returns a *DeadLetterError that matches ErrDeadLetter, unwraps to
// the last failure, and holds every attempt's error. A task of the queue
// not finished when its pool shuts down ends with an error matching
// ErrClosed. So every submitted task ends exactly once: succeeded,
// dead-lettered or closed. No two attempts of one task ever run at once: a
// task is retried only after its attempt returned, even an abandoned one,
// and never after it succeeded.
//
// This is at-least-once, not exactly-once: an attempt may do its work and
// fail before it returns nil, and then run again. Handlers must be
// idempotent; Attempt tells one which attempt it runs.
//
// # Errors and panics
//
// A handler's error fails the task; the worker stays. A panic fails the
// task too, with an *arbor.PanicError, and then crashes the worker, which
// its supervisor restarts by the usual rules: under its restart intensity
// (WithSupervisor(arbor.WithIntensity(...))), so that a crash storm fails
// the pool as it would any supervisor, and the pool's parent in turn.
//
// # Time limits and heartbeats
//
// With WithTimeLimit(soft, hard), an attempt's context is cancelled at its
// soft limit with the cause ErrSoftTimeout, so that it can clean up and
// return: that is a failure like any other. At its hard limit the attempt is
// abandoned: Go cannot stop a goroutine, so the pool stops waiting for it,
// gives its place to a new worker at once, and reports it (EventAbandoned,
// with its stack, and an error in the log), as Arbor reports a stuck child.
// The task waits for the abandoned attempt to return: a late nil is a
// success, a late error a failure wrapping ErrAbandoned, retried as usual.
// With WithHeartbeat, an attempt that calls Heartbeat less often than its
// timeout is cancelled with the cause arbor.ErrHung. An attempt cancelled
// before its hard limit, for a missed heartbeat or by a shutdown, is
// abandoned once it had the hard limit's grace (hard minus soft) to return.
//
// Abandoned attempts that still run are counted (Stats.AbandonedRunning);
// when they are more than WithMaxAbandoned allows (by default the pool's
// maximum size), the pool fails: Serve returns an error matching
// ErrTooManyAbandoned, so that the tree above, and at the top systemd or
// Kubernetes, replaces the process. Below that bound an abandoned attempt
// does not make the tree's Health not live; a worker still running when the
// pool stops is stuck, and reported as such by its supervisor.
//
// # Workers
//
// A pool has a fixed number of workers (WithWorkers, by default
// GOMAXPROCS), or between a minimum and a maximum (WithAutoscale): it adds
// workers as soon as tasks wait in its queue with no worker idle (with a
// Source, which hides its backlog: whenever a worker takes a task and none
// is left waiting on the source), and retires a worker
// that has been idle for a whole idle window, checked once per window, so
// that a burst does not make it flap. Resize changes either at run time;
// workers beyond a new maximum leave after their attempt. A worker made by
// NewWithSetup owns state set up when it starts and released when it stops;
// it is replaced by a fresh one after WithMaxTasksPerWorker attempts, or
// after an attempt that called Recycle.
//
// # Shutdown
//
// When Serve's context is done the pool stops taking tasks: Submit returns
// ErrClosed, and tasks that never started end with ErrClosed (or go back to
// their source, nacked without delay). Running attempts may run until their
// soft limit; without one they are cancelled at once with the cause
// ErrClosed. An attempt that fails during the shutdown is not retried: its
// task ends with ErrClosed, or goes back to its source. Serve returns once
// every worker returned, was abandoned, or, without a hard limit, was
// cancelled and then declared stuck after arbor's default shutdown timeout.
// A pool can be served again once Serve returned, as a parent's restart
// does; Submit fails with ErrClosed in between.
//
// # Sources
//
// A Source leases tasks and is told, per delivery, Ack (success), Nack with
// a delay (retry), Extend (while an attempt runs long; see
// WithLeaseExtension) or DeadLetter; a Lease reports its delivery count,
// which is the attempt number, so that the maximum number of attempts holds
// across processes and a task survives the crash of the process that ran
// it when the source keeps it. A delivery beyond the maximum (its earlier
// attempts died with their processes) is dead-lettered without running, so
// that a task that kills its process cannot loop forever. The in-memory queue is a Source too. A pool
// with a Source has no in-memory queue: its producers publish to the source.
//
// # Costs
//
// A worker is one goroutine, which runs its attempts itself; a pool adds
// one goroutine that manages its size, and its supervisor's. A task of the
// in-memory queue costs one allocation from Submit to its result, and a
// channel if it is waited for before it ended. An attempt under a time
// limit or heartbeat adds a context, and one timer per worker, re-armed:
// no goroutine watches it. Event handlers, the dead-letter function and the
// retry backoff run on a goroutine of their own per call.
package pool
