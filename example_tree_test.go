package arbor_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/arborgo/arbor"
)

// Handlers registered with WithEventHandler see every transition of the
// tree, with the supervisor's path, in order, off the supervisor's own
// goroutine; Serve returns after they have seen the last one.
func ExampleWithEventHandler() {
	root := arbor.New("root", arbor.WithLogger(nil), arbor.WithAutoShutdown(arbor.AnySignificant),
		arbor.WithEventHandler(func(e arbor.Event) { fmt.Println(e) }))
	var runs atomic.Int32
	must(root.Add("job", arbor.WorkerFunc(func(ctx context.Context) error {
		if runs.Add(1) == 1 {
			return errors.New("disk full")
		}
		return nil // done: the significant child's exit ends the supervisor
	}), arbor.WithRestart(arbor.Transient), arbor.WithSignificant()))
	_ = root.Serve(context.Background())
	// Output:
	// root: supervisor started
	// root/job: child started (restarts=0)
	// root/job: child failed (restarts=0): disk full
	// root/job: child restarted (restarts=1)
	// root/job: child exited (restarts=1)
	// root: supervisor stopping
	// root: supervisor stopped
}

// Tree takes a snapshot of the whole hierarchy, nested supervisors
// expanded; it prints like pstree, walks with All and marshals to JSON.
func ExampleSupervisor_Tree() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	idle := arbor.WorkerFunc(func(ctx context.Context) error { <-ctx.Done(); return nil })
	db := arbor.New("db", arbor.WithStrategy(arbor.RestForOne), arbor.WithLogger(nil))
	must(db.Add("conn", idle))
	must(db.Add("cache", idle))
	root := arbor.New("root", arbor.WithLogger(nil))
	must(root.Add("db", db))
	must(root.Add("api", idle))
	done := make(chan error)
	go func() { done <- root.Serve(ctx) }()
	for !root.Health(ctx).Ready {
		time.Sleep(time.Millisecond) // until every child runs
	}
	tree := root.Tree(ctx)
	fmt.Print(tree)
	for n := range tree.All() {
		if n.Kind == arbor.KindWorker {
			fmt.Println(n.Path, n.State, n.Counters.Starts)
		}
	}
	cancel()
	<-done
	// Output:
	// root [supervisor] running
	// ├─ db [supervisor] running
	// │  ├─ conn running
	// │  └─ cache running
	// └─ api running
	// root/db/conn running 1
	// root/db/cache running 1
	// root/api running 1
}
