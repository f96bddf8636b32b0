package arbor

import (
	"fmt"
	"reflect"
)

// A worker's error value is user code: its Error, Is, As and Unwrap methods
// may panic, block or return cycles. The supervisor never calls them on its
// own goroutine: what it needs to know is worked out once, in the child's
// goroutine (classify), by a walk that recovers panics and gives up after
// maxErrChain errors.

// maxErrChain bounds a walk through an error's chain or tree.
const maxErrChain = 100

// errClass is what a worker's error matches, as the supervisor needs it.
type errClass struct {
	doNotRestart  bool // ErrDoNotRestart
	terminateTree bool // ErrTerminateTree
	stuck         bool // ErrStuck: a nested supervisor left stuck children
}

// classify works out what err matches.
func classify(err error) errClass {
	if err == nil {
		return errClass{}
	}
	return errClass{
		doNotRestart:  errorIs(err, ErrDoNotRestart),
		terminateTree: errorIs(err, ErrTerminateTree),
		stuck:         errorIs(err, ErrStuck),
	}
}

// errorIs is errors.Is for untrusted errors: a panic in a method counts as
// no match, and the walk stops after maxErrChain errors.
func errorIs(err, target error) (found bool) {
	defer func() {
		if recover() != nil {
			found = false
		}
	}()
	n := 0
	return walkErr(err, &n, func(e error) bool {
		if t := reflect.TypeOf(e); t.Comparable() && e == target {
			return true
		}
		x, ok := e.(interface{ Is(error) bool })
		return ok && x.Is(target)
	})
}

// findErr returns the first error in err's tree of type E, as errors.As
// does, for untrusted errors.
func findErr[E error](err error) (found E, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	n := 0
	ok = walkErr(err, &n, func(e error) bool {
		found, ok = e.(E)
		return ok
	})
	return found, ok
}

// walkErr visits err and what it wraps, depth first, until visit returns
// true or *n reaches maxErrChain.
func walkErr(err error, n *int, visit func(error) bool) bool {
	for err != nil {
		if *n++; *n > maxErrChain {
			return false
		}
		if visit(err) {
			return true
		}
		switch x := err.(type) {
		case interface{ Unwrap() error }:
			err = x.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range x.Unwrap() {
				if walkErr(e, n, visit) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// safeMessage returns err.Error(), or a note saying it panicked.
func safeMessage(err error) (msg string) {
	defer func() {
		if v := recover(); v != nil {
			msg = fmt.Sprintf("%T (Error panicked: %v)", err, v)
		}
	}()
	return err.Error()
}
