package arborhttp

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/arborgo/arbor"
	"go.uber.org/goleak"
)

// TestMain fails the test binary if any test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// served is a supervisor running in its own goroutine, for tests.
type served struct {
	cancel context.CancelFunc
	done   chan error
}

// serveBG starts s.Serve in a goroutine and waits until the bubble is idle.
// Call it inside synctest.Test.
func serveBG(t *testing.T, s *arbor.Supervisor) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	sv := &served{cancel: cancel, done: make(chan error, 1)}
	go func() { sv.done <- s.Serve(ctx) }()
	synctest.Wait()
	return sv
}

// stop cancels Serve's context and returns what Serve returned.
func (sv *served) stop() error {
	sv.cancel()
	return <-sv.done
}

// worker is a child that runs until its context ends, or until the test
// sends an error on exit, which it returns.
type worker struct {
	exit chan error
}

func newWorker() *worker { return &worker{exit: make(chan error)} }

func (w *worker) Serve(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-w.exit:
		return err
	}
}
