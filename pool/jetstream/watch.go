package jetstream

import (
	"context"
	"fmt"
	"time"

	"github.com/arborgo/arbor"
)

// Pacing of a Watcher's restarts: each outage is one restart, at least
// watchBackoff after the last, and the watcher's supervisor allows one per
// watchWindow, shorter: so it never gives up.
const (
	watchBackoff = 250 * time.Millisecond
	watchWindow  = 200 * time.Millisecond
)

// Watcher returns a supervisor to add to the tree next to the pool, so
// that the tree's health follows the connection to NATS: it has one child,
// "connection", which is ready only while the source's connection is up.
// When the connection drops, the child fails with ErrDisconnected (logged
// by the tree's logger), and its restart waits for the connection to come
// back before it signals readiness (arbor.WithReadiness), so Health and the
// live view show it, and the tree, not ready for the outage. Its
// supervisor restarts it at most once per 250 milliseconds and never gives
// up: a flapping connection does not fail the tree. The pool's workers
// meanwhile wait in Lease, and stay ready. Each call returns a new
// supervisor.
func (s *Source[T]) Watcher() *arbor.Supervisor {
	sup := arbor.New("nats", arbor.WithIntensity(1, watchWindow), arbor.WithBackoff(arbor.ConstantBackoff(watchBackoff)))
	_ = sup.Add("connection", connWatch{s.connection}, arbor.WithReadiness(0)) // a fixed, valid child
	return sup
}

// connWatch is a Watcher's child: ready while connected.
type connWatch struct {
	state func() (bool, <-chan struct{})
}

// connection reports whether the connection is up, and a channel closed at
// its next change.
func (s *Source[T]) connection() (bool, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected, s.changed
}

// Serve waits for the connection, signals readiness, and fails with
// ErrDisconnected when the connection drops.
func (w connWatch) Serve(ctx context.Context) error {
	for {
		up, changed := w.state()
		if up {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
	arbor.Ready(ctx)
	for {
		up, changed := w.state()
		if !up {
			return fmt.Errorf("%w (the source's connection dropped)", ErrDisconnected)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}
