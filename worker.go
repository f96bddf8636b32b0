package arbor

import "context"

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
