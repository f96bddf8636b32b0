package arbor

import (
	"errors"
	"fmt"
)

// Sentinel errors. Match them with errors.Is; the errors the package returns
// wrap them with detail.
var (
	// ErrIntensityExceeded is matched by the error Serve returns when more
	// restarts were needed than the supervisor's restart intensity allows.
	// The same error also reaches the failure that triggered the last
	// restart request.
	ErrIntensityExceeded = errors.New("arbor: restart intensity exceeded")

	// ErrNotFound is returned for a child name the supervisor does not hold.
	ErrNotFound = errors.New("arbor: child not found")

	// ErrRunning is returned by Restart for a child that is running,
	// restarting, stopping or stuck.
	ErrRunning = errors.New("arbor: child is running")

	// ErrAlreadyExists is returned by Add for a name the supervisor already
	// holds.
	ErrAlreadyExists = errors.New("arbor: child already exists")

	// ErrStuck is matched by a *StuckError: a child that did not return
	// within its shutdown timeout after its context was cancelled.
	ErrStuck = errors.New("arbor: child is stuck")

	// ErrInvalid is matched by every error about bad input: an option value,
	// a name or a nil worker.
	ErrInvalid = errors.New("arbor: invalid argument")

	// ErrAlreadyServing is returned by Serve when the supervisor is already
	// being served by another call.
	ErrAlreadyServing = errors.New("arbor: supervisor is already serving")

	// ErrDoNotRestart, returned or wrapped by a worker, says "I am done for
	// good": the child is not restarted, whatever its restart policy or
	// restart predicate, and is settled as after a normal exit (a
	// significant child then counts as exited). Like suture's ErrDoNotRestart
	// and systemd's RestartPreventExitStatus.
	ErrDoNotRestart = errors.New("arbor: do not restart")

	// ErrTerminateTree, returned or wrapped by a worker, shuts down its
	// supervisor, which returns an error wrapping it; the parent receives
	// that error from its child and shuts down in turn, up to the root,
	// whose Serve returns it. Like suture's ErrTerminateSupervisorTree.
	ErrTerminateTree = errors.New("arbor: terminate the supervision tree")

	// ErrStartTimeout is matched by the failure of a child that did not
	// signal readiness within its start timeout (see WithReadiness). It is
	// also the cause of the child's cancelled context (context.Cause).
	ErrStartTimeout = errors.New("arbor: child not ready within its start timeout")

	// ErrHung is matched by the failure of a child that sent no heartbeat for
	// a whole heartbeat period (see WithHeartbeat). It is also the cause of
	// the child's cancelled context (context.Cause).
	ErrHung = errors.New("arbor: child missed its heartbeat")

	// ErrGoexit is the failure recorded for a worker that called
	// runtime.Goexit (for example through testing.T.FailNow) instead of
	// returning.
	ErrGoexit = errors.New("arbor: worker called runtime.Goexit")
)

// invalidf returns an error that matches ErrInvalid.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// PanicError is the failure recorded for a worker that panicked. The panic is
// recovered in the child's own goroutine; it never reaches the supervisor.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the panicking goroutine's stack, captured when the panic was
	// recovered.
	Stack []byte
}

// Error reports the panic value.
func (e *PanicError) Error() string { return fmt.Sprintf("arbor: panic: %v", e.Value) }

// Unwrap returns the panic value if it is an error, so that errors.Is and
// errors.As see through a panic(err).
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// StuckError describes a child that did not return within its shutdown
// timeout after the supervisor cancelled its context. It matches ErrStuck.
type StuckError struct {
	// Supervisor is the name of the supervisor that holds the child.
	Supervisor string
	// Child is the child's name.
	Child string
	// Stack is the stuck goroutine's stack at the moment it was declared
	// stuck, or nil if it could not be found.
	Stack []byte
}

// Error names the supervisor and the child.
func (e *StuckError) Error() string {
	return fmt.Sprintf("arbor: child %q of supervisor %q is stuck: it did not return after cancellation within its shutdown timeout", e.Child, e.Supervisor)
}

// Is reports whether target is ErrStuck.
func (e *StuckError) Is(target error) bool { return target == ErrStuck }
