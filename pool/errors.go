package pool

import (
	"errors"
	"fmt"
	"strings"

	"github.com/arborgo/arbor/internal/errwalk"
)

// Sentinel errors. Match them with errors.Is; the errors the package returns
// wrap them with detail.
var (
	// ErrFull is returned by TrySubmit when the queue holds as many tasks
	// as its capacity.
	ErrFull = errors.New("arbor: pool queue is full")

	// ErrClosed is returned by Submit and TrySubmit while the pool does not
	// serve (after its Serve began to shut down, until a new Serve starts),
	// and is matched by the error of a task that had not succeeded or been
	// dead-lettered when its pool shut down.
	ErrClosed = errors.New("arbor: pool is closed")

	// ErrDeadLetter is matched by the *DeadLetterError of a task that
	// failed its last attempt.
	ErrDeadLetter = errors.New("arbor: task dead-lettered")

	// ErrSoftTimeout is the cause of an attempt's context cancelled at its
	// soft time limit (see WithTimeLimit).
	ErrSoftTimeout = errors.New("arbor: task attempt exceeded its soft time limit")

	// ErrAbandoned is matched by the failure recorded for an attempt the
	// pool abandoned at its hard time limit, and by the error of a task
	// whose abandoned attempt had not returned when the pool stopped.
	ErrAbandoned = errors.New("arbor: task attempt abandoned")

	// ErrTooManyAbandoned is matched by the error Serve returns when more
	// abandoned attempts were still running than WithMaxAbandoned allows.
	ErrTooManyAbandoned = errors.New("arbor: too many abandoned task attempts")
)

// errInvalid builds an error matching arbor.ErrInvalid.
func errInvalid(format string, args ...any) error {
	return fmt.Errorf("%w: pool: %s", arborErrInvalid, fmt.Sprintf(format, args...))
}

// DeadLetterError is the error of a task that failed its last attempt, or
// that its handler refused to retry. It matches ErrDeadLetter, and unwraps
// to the last attempt's error.
type DeadLetterError struct {
	// Attempts holds the error of every attempt this process saw, oldest
	// first; the last is the failure that dead-lettered the task. A task
	// from a Source may have failed earlier attempts elsewhere: Attempt
	// counts them, Attempts does not hold them.
	Attempts []error
	// Attempt is the number of the last attempt (its delivery count).
	Attempt int
}

// Error says how many attempts failed and what the last one returned.
func (e *DeadLetterError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s after %d attempt", ErrDeadLetter.Error(), e.Attempt)
	if e.Attempt != 1 {
		b.WriteByte('s')
	}
	if last := e.last(); last != nil {
		b.WriteString(": ")
		b.WriteString(safeMessage(last))
	}
	return b.String()
}

// Unwrap returns ErrDeadLetter and the last attempt's error.
func (e *DeadLetterError) Unwrap() []error {
	if last := e.last(); last != nil {
		return []error{ErrDeadLetter, last}
	}
	return []error{ErrDeadLetter}
}

func (e *DeadLetterError) last() error {
	if len(e.Attempts) == 0 {
		return nil
	}
	return e.Attempts[len(e.Attempts)-1]
}

// safeMessage returns err.Error(), or a note saying it panicked.
func safeMessage(err error) string { return errwalk.Message(err) }

// matches reports whether target is in err's tree, as errors.Is does, for
// a handler's untrusted error (see internal/errwalk).
func matches(err, target error) bool { return errwalk.Is(err, target) }
