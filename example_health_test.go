package arbor_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/arborgo/arbor"
)

// A child added with WithReadiness holds back the children after it until it
// calls Ready: here the API starts only once the database connection is up.
func ExampleWithReadiness() {
	ctx, cancel := context.WithCancel(context.Background())
	root := arbor.New("root", arbor.WithLogger(nil))
	must(root.Add("db", arbor.WorkerFunc(func(ctx context.Context) error {
		fmt.Println("db: connecting")
		time.Sleep(10 * time.Millisecond) // dial, migrate...
		fmt.Println("db: ready")
		arbor.Ready(ctx)
		<-ctx.Done()
		return nil
	}), arbor.WithReadiness(time.Second)))
	must(root.Add("api", arbor.WorkerFunc(func(ctx context.Context) error {
		fmt.Println("api: started")
		cancel()
		<-ctx.Done()
		return nil
	})))
	fmt.Println("Serve:", root.Serve(ctx))
	// Output:
	// db: connecting
	// db: ready
	// api: started
	// Serve: <nil>
}

// A worker watched by WithHeartbeat that stops calling Heartbeat is cancelled
// as hung, with a cause that says so, and restarted.
func ExampleWithHeartbeat() {
	ctx, cancel := context.WithCancel(context.Background())
	root := arbor.New("root", arbor.WithLogger(nil))
	var copies atomic.Int32
	must(root.Add("job", arbor.WorkerFunc(func(ctx context.Context) error {
		if copies.Add(1) == 2 {
			fmt.Println("copy 2: running")
			cancel() // stop the example
			<-ctx.Done()
			return nil
		}
		arbor.Heartbeat(ctx) // then it wedges and beats no more
		<-ctx.Done()
		fmt.Println("copy 1:", context.Cause(ctx))
		return ctx.Err()
	}), arbor.WithHeartbeat(20*time.Millisecond)))
	fmt.Println("Serve:", root.Serve(ctx))
	fmt.Println("last error is ErrHung:", errors.Is(root.Children()[0].LastError, arbor.ErrHung))
	// Output:
	// copy 1: arbor: child missed its heartbeat: child "job" sent no heartbeat for 20ms
	// copy 2: running
	// Serve: <nil>
	// last error is ErrHung: true
}

// Health walks the whole tree. Here a nested supervisor's child waits in
// backoff after a failure: the tree is live but not ready.
func ExampleSupervisor_Health() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	failed := make(chan struct{})
	db := arbor.New("db", arbor.WithLogger(nil), arbor.WithBackoff(arbor.ConstantBackoff(time.Hour)))
	must(db.Add("conn", arbor.WorkerFunc(func(ctx context.Context) error {
		close(failed)
		return errors.New("connection refused")
	})))
	root := arbor.New("root", arbor.WithLogger(nil))
	must(root.Add("db", db))
	done := make(chan error)
	go func() { done <- root.Serve(ctx) }()
	<-failed
	h := root.Health(ctx)
	for len(h.Checks) < 3 || h.Checks[2].Reason != "restarting" || !h.Checks[1].Ready {
		time.Sleep(time.Millisecond) // until db is up and has seen the failure
		h = root.Health(ctx)
	}
	fmt.Println("live:", h.Live, "ready:", h.Ready)
	for _, c := range h.Checks {
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%-13s live=%v ready=%v %s", c.Path, c.Live, c.Ready, c.Reason)))
	}
	cancel()
	<-done
	// Output:
	// live: true ready: false
	// root          live=true ready=true
	// root/db       live=true ready=true
	// root/db/conn  live=true ready=false restarting
}
