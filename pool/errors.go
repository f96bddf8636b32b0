package pool

import (
	"errors"
	"fmt"
	"strings"
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

// safeMessage returns err.Error(), or a placeholder if that panics.
func safeMessage(err error) (msg string) {
	defer func() {
		if recover() != nil {
			msg = fmt.Sprintf("(%T whose Error method panicked)", err)
		}
	}()
	return err.Error()
}

// maxChain bounds the errors looked at in one error's tree.
const maxChain = 1000

// matches reports whether target is in err's tree, looking at it breadth
// first, at most maxChain errors, and treating a method that panics
// as a leaf: a handler's error value is not trusted (as in package arbor).
func matches(err, target error) bool {
	if err == nil {
		return false
	}
	seen := map[error]bool{}
	queue := []error{err}
	for n := 0; len(queue) > 0 && n < maxChain; n++ {
		e := queue[0]
		queue = queue[1:]
		if e == nil {
			continue
		}
		if hashable(e) { // an unhashable error is looked at, not remembered
			if seen[e] {
				continue
			}
			seen[e] = true
			if e == target {
				return true
			}
		}
		if safeIs(e, target) {
			return true
		}
		queue = append(queue, safeUnwrap(e)...)
	}
	return false
}

func hashable(e error) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	m := map[error]bool{}
	m[e] = true
	return true
}

func safeIs(e, target error) (is bool) {
	defer func() {
		if recover() != nil {
			is = false
		}
	}()
	x, ok := e.(interface{ Is(error) bool })
	return ok && x.Is(target)
}

func safeUnwrap(e error) (next []error) {
	defer func() {
		if recover() != nil {
			next = nil
		}
	}()
	switch x := e.(type) {
	case interface{ Unwrap() error }:
		if n := x.Unwrap(); n != nil {
			return []error{n}
		}
	case interface{ Unwrap() []error }:
		return x.Unwrap()
	}
	return nil
}
