package arbor

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// wrapper is a Nested worker: it serves a supervisor of its own, plus a
// loop of its own, as package pool does.
type wrapper struct {
	sup  *Supervisor
	loop chan struct{} // closed when its own loop ran
}

func (w *wrapper) Supervisor() *Supervisor { return w.sup }

func (w *wrapper) Serve(ctx context.Context) error {
	close(w.loop)
	return w.sup.Serve(ctx)
}

func TestNestedWorkerIsPartOfTheTree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := New("inner", WithLogger(nil))
		started := make(chan struct{})
		if err := inner.Add("leaf", WorkerFunc(func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			return nil
		}), WithReadiness(0)); err != nil {
			t.Fatal(err)
		}
		w := &wrapper{sup: inner, loop: make(chan struct{})}
		var events []Event
		root := New("root", WithLogger(nil), WithEventHandler(func(e Event) { events = append(events, e) }))
		if err := root.Add("jobs", w); err != nil {
			t.Fatal(err)
		}
		sv := serveBG(t, root)
		<-w.loop
		<-started
		synctest.Wait()
		// The leaf never signals readiness: the nested supervisor, and so
		// the root, are not ready, as with a nested *Supervisor.
		h := root.Health(t.Context())
		if h.Ready {
			t.Fatalf("tree ready while a nested child starts: %+v", h)
		}
		tree := root.Tree(t.Context())
		var paths []string
		for n := range tree.All() {
			paths = append(paths, n.Path)
		}
		want := []string{"root", "root/jobs", "root/jobs/leaf"}
		if len(paths) != len(want) {
			t.Fatalf("tree paths %q, want %q", paths, want)
		}
		for i := range want {
			if paths[i] != want[i] {
				t.Fatalf("tree paths %q, want %q", paths, want)
			}
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range events {
			if e.Supervisor == "root/jobs" && e.Child == "leaf" {
				found = true
			}
		}
		if !found {
			t.Fatalf("no event of root/jobs/leaf reached the root's handler: %v", events)
		}
	})
}

func TestNestedWorkerRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := New("root", WithLogger(nil))
		w := &wrapper{sup: New("inner"), loop: make(chan struct{})}
		if err := root.Add("hb", w, WithHeartbeat(time.Second)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("heartbeat on a nested worker: %v, want ErrInvalid", err)
		}
		if err := root.Add("nil", &wrapper{loop: make(chan struct{})}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("nested worker without a supervisor: %v, want ErrInvalid", err)
		}
		if err := root.Add("a", w); err != nil {
			t.Fatal(err)
		}
		other := New("other", WithLogger(nil))
		if err := other.Add("b", w); !errors.Is(err, ErrInvalid) {
			t.Fatalf("a nested supervisor in two trees: %v, want ErrInvalid", err)
		}
		if err := root.Add("c", w.sup); !errors.Is(err, ErrInvalid) {
			t.Fatalf("the same supervisor, plain, in the same tree: %v, want ErrInvalid", err)
		}
		infos := root.Children()
		if len(infos) != 1 {
			t.Fatalf("children %v", infos)
		}
	})
}

// A stuck child of a nested worker's supervisor is reported by the root.
func TestNestedWorkerStuckChildReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := New("inner", WithLogger(nil))
		release := make(chan struct{})
		if err := inner.Add("hang", WorkerFunc(func(ctx context.Context) error {
			<-release
			return nil
		}), WithShutdownTimeout(time.Second)); err != nil {
			t.Fatal(err)
		}
		root := New("root", WithLogger(nil))
		if err := root.Add("jobs", &wrapper{sup: inner, loop: make(chan struct{})}); err != nil {
			t.Fatal(err)
		}
		sv := serveBG(t, root)
		err := sv.stop()
		var se *StuckError
		if !errors.As(err, &se) || se.Supervisor != "root/jobs" || se.Child != "hang" {
			t.Fatalf("Serve returned %v, want the stuck error of root/jobs/hang", err)
		}
		close(release)
		synctest.Wait()
	})
}
