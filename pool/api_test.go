package pool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/arborgo/arbor"
)

func TestBadInput(t *testing.T) {
	h := func(_ context.Context, n int) (int, error) { return n, nil }
	cases := map[string][]Option{
		"zero workers":          {WithWorkers(0)},
		"negative workers":      {WithWorkers(-1)},
		"autoscale min 0":       {WithAutoscale(0, 3, 0)},
		"autoscale min > max":   {WithAutoscale(4, 3, 0)},
		"negative idle":         {WithAutoscale(1, 3, -time.Second)},
		"zero queue":            {WithQueue(0)},
		"zero attempts":         {WithMaxAttempts(0)},
		"negative attempts":     {WithMaxAttempts(-2)},
		"hard not above soft":   {WithTimeLimit(time.Second, time.Second)},
		"hard below soft":       {WithTimeLimit(2*time.Second, time.Second)},
		"negative limit":        {WithTimeLimit(-1, 0)},
		"zero heartbeat":        {WithHeartbeat(0)},
		"zero lease extension":  {WithLeaseExtension(0)},
		"zero tasks per worker": {WithMaxTasksPerWorker(0)},
		"negative abandoned":    {WithMaxAbandoned(-1)},
		"nil backoff":           {WithRetryBackoff(nil)},
		"nil source":            {WithSource[int](nil)},
		"source of other tasks": {WithSource[string](newBroker())},
		"nil dead letter":       {WithDeadLetter[int](nil)},
		"dead letter of others": {WithDeadLetter(func(string, *DeadLetterError) {})},
		"nil event handler":     {WithEventHandler(nil)},
		"nil option":            {nil},
		"bad supervisor option": {WithSupervisor(arbor.WithIntensity(-1, time.Second))},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := New("jobs", h, opts...)
			if !errors.Is(err, arbor.ErrInvalid) || p != nil {
				t.Fatalf("New = %v, %v; want an error matching arbor.ErrInvalid", p, err)
			}
		})
	}
	if _, err := New[int, int]("jobs", nil); !errors.Is(err, arbor.ErrInvalid) {
		t.Fatalf("nil handler: %v", err)
	}
	if _, err := NewWithSetup[int, int]("jobs", nil); !errors.Is(err, arbor.ErrInvalid) {
		t.Fatalf("nil setup: %v", err)
	}
	if _, err := New("a/b", h); !errors.Is(err, arbor.ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
	p, err := New("jobs", h, WithWorkers(2))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]int{{0, 1}, {3, 2}, {-1, -1}} {
		if err := p.Resize(r[0], r[1]); !errors.Is(err, arbor.ErrInvalid) {
			t.Fatalf("Resize(%d, %d) = %v", r[0], r[1], err)
		}
	}
	//lint:ignore SA1012 a nil context is bad input
	if _, err := p.Submit(nil, 1); !errors.Is(err, arbor.ErrInvalid) { //nolint:staticcheck
		t.Fatalf("Submit(nil ctx) = %v", err)
	}
}

func TestEventsAndStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []string
		p := mustNew(t, func(_ context.Context, n int) (int, error) {
			if n == 2 {
				return 0, errors.New("no")
			}
			return n, nil
		}, WithWorkers(1), WithMaxAttempts(2), WithRetryBackoff(arbor.ConstantBackoff(time.Second)),
			WithEventHandler(func(e Event) {
				mu.Lock()
				got = append(got, fmt.Sprintf("%v %v %s #%d", e.Kind, e.Task, e.Worker, e.Attempt))
				mu.Unlock()
			}),
			WithEventHandler(func(Event) { panic("a handler that panics is contained") }))
		sv := serve(t, p)
		wait(t, submit(t, p, 1))
		wait(t, submit(t, p, 2))
		want := []string{
			"started 1 worker-1 #1", "succeeded 1 worker-1 #1",
			"started 2 worker-1 #1", "failed 2 worker-1 #1", "retried 2 worker-1 #1",
			"started 2 worker-1 #2", "failed 2 worker-1 #2", "dead_lettered 2 worker-1 #2",
		}
		mu.Lock()
		if !slices.Equal(got, want) {
			t.Fatalf("events\n%q\nwant\n%q", got, want)
		}
		mu.Unlock()
		st := p.Stats()
		if st != (Stats{Workers: 1, Succeeded: 1, Failed: 2, Retried: 1, DeadLettered: 1}) {
			t.Fatalf("stats %+v", st)
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// A pool nested in a tree shows its workers below it, in Tree and Health,
// and a pool's events reach nobody else's handlers.
func TestPoolInTree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew(t, func(_ context.Context, n int) (int, error) { return n, nil }, WithWorkers(2))
		root := arbor.New("app", arbor.WithLogger(nil))
		if err := root.Add("jobs", p); err != nil {
			t.Fatal(err)
		}
		sv := serve(t, root)
		if _, err := wait(t, submit(t, p, 1)); err != nil {
			t.Fatal(err)
		}
		var paths []string
		for n := range root.Tree(context.Background()).All() {
			paths = append(paths, fmt.Sprintf("%s %v", n.Path, n.State))
		}
		want := []string{"app running", "app/jobs running", "app/jobs/worker-1 running", "app/jobs/worker-2 running"}
		if !slices.Equal(paths, want) {
			t.Fatalf("tree %q, want %q", paths, want)
		}
		if h := root.Health(context.Background()); !h.Live || !h.Ready || len(h.Checks) != 4 {
			t.Fatalf("health %+v", h)
		}
		if err := p.Serve(context.Background()); !errors.Is(err, arbor.ErrAlreadyServing) {
			t.Fatalf("second Serve: %v", err)
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}
