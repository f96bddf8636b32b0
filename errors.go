package arbor

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Match them with errors.Is; the errors the package returns
// wrap them with detail.
var (
	// ErrIntensityExceeded is matched by the *IntensityError Serve returns
	// when more restarts were needed than the supervisor's restart intensity
	// allows.
	ErrIntensityExceeded = errors.New("arbor: restart intensity exceeded")

	// ErrNotFound is returned for a child name the supervisor does not hold.
	ErrNotFound = errors.New("arbor: child not found")

	// ErrNotStopped is returned by Restart for a child that is not Stopped:
	// starting, running, restarting, stopping or stuck.
	ErrNotStopped = errors.New("arbor: child is not stopped")

	// ErrAlreadyExists is returned by Add for a name the supervisor already
	// holds.
	ErrAlreadyExists = errors.New("arbor: child already exists")

	// ErrStuck is matched by a *StuckError: a child that did not return
	// within its shutdown timeout after its context was cancelled.
	ErrStuck = errors.New("arbor: child is stuck")

	// ErrInvalid is matched by every error about bad input: an option value,
	// a name, a nil worker, a supervisor in two trees.
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

// invalidError is bad input: it matches ErrInvalid and says what was
// wrong, where, once: "arbor: invalid argument: child "x": negative ...".
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return ErrInvalid.Error() + ": " + e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// invalidf returns an error that matches ErrInvalid.
func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// within places err, bad input, in what it was about, such as
// `supervisor "db"`, keeping one "arbor: invalid argument" prefix.
func within(where string, err error) error {
	if e, ok := err.(*invalidError); ok {
		return &invalidError{msg: where + ": " + e.msg}
	}
	return fmt.Errorf("%s: %w", where, err)
}

// PanicError is the failure recorded for a worker that panicked. The panic is
// recovered in the child's own goroutine; it never reaches the supervisor.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	pcs   []uintptr // the panicking goroutine's stack, formatted by Stack
}

// newPanicError records a panic with value v, recovered by the caller.
func newPanicError(v any) *PanicError {
	// On the heap: a large array in this frame would make the panicking
	// goroutine's stack grow and be copied.
	pcs := make([]uintptr, 32)
	n := runtime.Callers(3, pcs) // skip Callers, newPanicError, the deferred func
	return &PanicError{Value: v, pcs: pcs[:n]}
}

// Error reports the panic value.
func (e *PanicError) Error() string {
	if e == nil {
		return "arbor: panic: <nil *PanicError>"
	}
	return fmt.Sprintf("arbor: panic: %v", e.Value)
}

// Unwrap returns the panic value if it is an error, so that errors.Is and
// errors.As see through a panic(err).
func (e *PanicError) Unwrap() error {
	if e == nil {
		return nil
	}
	err, _ := e.Value.(error)
	return err
}

// Stack returns the panicking goroutine's stack when the panic was
// recovered, innermost call first, as a Go traceback prints it (without
// argument values), or nil. It is captured as program counters and formatted
// on each call, so that a panic costs little until its stack is read.
func (e *PanicError) Stack() []byte {
	if e == nil || len(e.pcs) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("goroutine [panic]:\n")
	frames := runtime.CallersFrames(e.pcs)
	for {
		f, more := frames.Next()
		if f.Function != "" {
			b.WriteString(f.Function + "(...)\n\t" + f.File + ":" + strconv.Itoa(f.Line) + "\n")
		}
		if !more {
			break
		}
	}
	return []byte(b.String())
}

// StuckError describes a child that did not return within its shutdown
// timeout after the supervisor cancelled its context. It matches ErrStuck
// and unwraps to the cause of the cancellation, if it was a failure.
type StuckError struct {
	// Supervisor is the path of the supervisor that holds the child, such
	// as "root/db".
	Supervisor string
	// Child is the child's name.
	Child string
	// Err is why the supervisor cancelled the child, if not to stop it: an
	// error matching ErrHung or ErrStartTimeout; nil for a stop.
	Err   error
	stack *stackRef
}

// Error names the supervisor and the child.
func (e *StuckError) Error() string {
	if e == nil {
		return "arbor: child is stuck: <nil *StuckError>"
	}
	msg := "arbor: child " + e.Supervisor + "/" + e.Child + " is stuck: it did not return within its shutdown timeout after cancellation"
	if e.Err != nil {
		msg += ": " + safeMessage(e.Err)
	}
	return msg
}

// Is reports whether target is ErrStuck.
func (e *StuckError) Is(target error) bool { return target == ErrStuck }

// Unwrap returns Err.
func (e *StuckError) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// Stack returns the stuck goroutine's stack, or nil if it is not known. It
// is captured the first time it is asked for while the goroutine still runs
// (by this method, or when the tree's logger reports the stuck child), with
// one dump of all goroutines that serves every stuck child waiting for its
// stack at that moment; nil if the goroutine returned before that.
func (e *StuckError) Stack() []byte {
	if e == nil {
		return nil
	}
	return e.stack.get()
}

// IntensityError is the error Serve returns when a restart would exceed the
// supervisor's restart intensity. It matches ErrIntensityExceeded and
// unwraps to Err, the last failure of the child whose restart was refused;
// when that child is a nested supervisor, Err is that supervisor's own
// *IntensityError, and Error formats the whole chain once.
type IntensityError struct {
	// Supervisor is the path of the supervisor that gave up.
	Supervisor string
	// Child is the name of the child whose restart was refused (for a group
	// restart, the child that triggered it).
	Child string
	// MaxRestarts and Period are the supervisor's restart intensity.
	MaxRestarts int
	Period      time.Duration
	// Err is the child's last failure, or nil if it exited normally.
	Err error
}

// Error reports every supervisor that gave up, innermost first, and the
// failure that started it, such as
//
//	arbor: restart intensity exceeded: root/db (more than 3 restarts in 5s), then root (more than 3 restarts in 5s); last failure: root/db/conn: connection refused
func (e *IntensityError) Error() string {
	if e == nil {
		return ErrIntensityExceeded.Error() + ": <nil *IntensityError>"
	}
	var chain []*IntensityError
	last := e
	for x := e; x != nil; {
		chain = append(chain, x)
		last = x
		next, ok := x.Err.(*IntensityError)
		if !ok || len(chain) > maxErrChain {
			break
		}
		x = next
	}
	var b strings.Builder
	b.WriteString(ErrIntensityExceeded.Error() + ": ")
	for i := len(chain) - 1; i >= 0; i-- {
		x := chain[i]
		if i < len(chain)-1 {
			b.WriteString(", then ")
		}
		b.WriteString(x.Supervisor + " (more than " + strconv.Itoa(x.MaxRestarts) + " restart" + plural(x.MaxRestarts) + " in " + x.Period.String() + ")")
	}
	b.WriteString("; last failure: " + last.Supervisor + "/" + last.Child + ": ")
	if last.Err == nil {
		b.WriteString("exited normally")
	} else {
		b.WriteString(safeMessage(last.Err))
	}
	return b.String()
}

// Is reports whether target is ErrIntensityExceeded.
func (e *IntensityError) Is(target error) bool { return target == ErrIntensityExceeded }

// Unwrap returns Err.
func (e *IntensityError) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// treeError is what a supervisor whose child returned ErrTerminateTree
// returns: it wraps the child's error.
type treeError struct {
	path, child string
	err         error
}

func (e *treeError) Error() string {
	return "arbor: " + e.path + "/" + e.child + " ended the tree: " + safeMessage(e.err)
}

func (e *treeError) Unwrap() error { return e.err }
