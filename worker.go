package arbor

import (
	"context"
	"runtime"
	"runtime/debug"
)

// Worker is anything a supervisor can run. Serve runs until the worker is done
// or ctx is cancelled, and must block in the calling goroutine: the
// supervisor considers the worker finished when Serve returns.
//
// A worker should return promptly once ctx is done. One that does not return
// within its shutdown timeout is declared stuck (see the package
// documentation): it is reported but never killed, and never started again
// while it still runs.
type Worker interface {
	Serve(ctx context.Context) error
}

// WorkerFunc adapts an ordinary function to the Worker interface.
type WorkerFunc func(ctx context.Context) error

// Serve calls f(ctx).
func (f WorkerFunc) Serve(ctx context.Context) error { return f(ctx) }

// childMain is the body of every child goroutine: it runs one copy of the
// child's worker and reports how it ended to the supervisor.
//
// It must not be inlined, and it keeps s, run and c live across its call to
// runCopy so that the compiler keeps them in their argument slots: goroutine
// dumps then print their true values as childMain's arguments, which is how a
// stuck child's stack is found and how a child calling its own supervisor is
// recognised (see internal/gstack). runCopy does the work; nothing here may
// capture the arguments in a closure.
//
//go:noinline
func childMain(s *Supervisor, run uint64, c *child, ctx context.Context) {
	runCopy(s, run, c, ctx)
	runtime.KeepAlive(s)
	runtime.KeepAlive(run)
	runtime.KeepAlive(c)
}

// runCopy runs one copy of c's worker and posts its exit to s, also when the
// worker leaves through runtime.Goexit.
func runCopy(s *Supervisor, run uint64, c *child, ctx context.Context) {
	err := ErrGoexit // stays so only if Serve leaves through runtime.Goexit
	defer func() { s.post(message{c: c, run: run, err: err}) }()
	err = serveRecover(c.worker, ctx)
}

// serveRecover calls w.Serve and turns a panic into a *PanicError.
func serveRecover(w Worker, ctx context.Context) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return w.Serve(ctx)
}
