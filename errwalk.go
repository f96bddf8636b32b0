package arbor

import "github.com/arborgo/arbor/internal/errwalk"

// A worker's error value is user code: its Error, Is, As and Unwrap methods
// may panic, block or return cycles. The supervisor never calls them on its
// own goroutine: what it needs to know is worked out once, in the child's
// goroutine (classify), by a walk that recovers panics, does not follow a
// cycle, and gives up after maxErrChain errors.

// maxErrChain bounds a walk through an error's chain or tree.
const maxErrChain = errwalk.Max

// errClass is what a worker's error matches, as the supervisor needs it.
type errClass struct {
	doNotRestart  bool // ErrDoNotRestart
	terminateTree bool // ErrTerminateTree
	stuck         bool // ErrStuck: a nested supervisor left stuck children
}

// classify works out what err matches, in one walk.
func classify(err error) (c errClass) {
	if err == nil {
		return c
	}
	walkErr(err, func(e error) bool {
		c.doNotRestart = c.doNotRestart || matches(e, ErrDoNotRestart)
		c.terminateTree = c.terminateTree || matches(e, ErrTerminateTree)
		c.stuck = c.stuck || matches(e, ErrStuck)
		return c.doNotRestart && c.terminateTree && c.stuck
	})
	return c
}

// The walks themselves are package errwalk's, shared with package pool.

func matches(e, target error) bool                   { return errwalk.Matches(e, target) }
func findErr[E error](err error) (E, bool)           { return errwalk.Find[E](err) }
func walkErr(err error, visit func(error) bool) bool { return errwalk.Walk(err, visit) }
func safeMessage(err error) string                   { return errwalk.Message(err) }
