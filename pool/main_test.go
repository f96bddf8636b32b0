package pool

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/arborgo/arbor"
)

// TestMain fails the test binary if any test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// served is a worker served in the background.
type served struct {
	cancel context.CancelFunc
	done   chan error
}

// serve serves w until stop; in a synctest bubble it returns once the
// bubble settled.
func serve(t *testing.T, w arbor.Worker) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sv := &served{cancel: cancel, done: make(chan error, 1)}
	go func() { sv.done <- w.Serve(ctx) }()
	synctest.Wait()
	return sv
}

// stop cancels Serve's context and returns what Serve returned.
func (sv *served) stop() error {
	sv.cancel()
	return <-sv.done
}

// quiet are the options every test pool gets: no logs.
func quiet(opts ...Option) []Option {
	return append([]Option{WithLogger(nil), WithSupervisor(arbor.WithLogger(nil))}, opts...)
}

// mustNew is New that fails the test on an error.
func mustNew[T, R any](t *testing.T, h Handler[T, R], opts ...Option) *Pool[T, R] {
	t.Helper()
	p, err := New("jobs", h, quiet(opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wait returns a task's result, failing the test if it does not end
// within an hour of the bubble's time.
func wait[T, R any](t *testing.T, tk *Task[T, R]) (R, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	select {
	case <-tk.Done():
	case <-ctx.Done():
		t.Fatalf("task %v has not ended", tk.rec.task)
	}
	return tk.Wait(ctx)
}

// submit is Submit that fails the test on an error.
func submit[T, R any](t *testing.T, p *Pool[T, R], task T) *Task[T, R] {
	t.Helper()
	tk, err := p.Submit(context.Background(), task)
	if err != nil {
		t.Fatalf("Submit(%v): %v", task, err)
	}
	return tk
}
