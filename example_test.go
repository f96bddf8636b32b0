package arbor_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/arborgo/arbor"
)

// A worker that fails twice is restarted until it comes up; cancelling the
// context then shuts the tree down cleanly.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	sup := arbor.New("root", arbor.WithLogger(nil))
	attempts := 0
	must(sup.Add("flaky", arbor.WorkerFunc(func(ctx context.Context) error {
		attempts++
		if attempts < 3 {
			fmt.Println("flaky: attempt", attempts, "fails")
			return errors.New("connection refused")
		}
		fmt.Println("flaky: attempt", attempts, "is up")
		cancel() // end the example: shut the supervisor down
		<-ctx.Done()
		return ctx.Err()
	})))

	err := sup.Serve(ctx)
	fmt.Println("Serve returned:", err)
	c := sup.Children()[0]
	fmt.Println(c.Name, c.State, "restarts:", c.Restarts, "last error:", c.LastError)
	// Output:
	// flaky: attempt 1 fails
	// flaky: attempt 2 fails
	// flaky: attempt 3 is up
	// Serve returned: <nil>
	// flaky stopped restarts: 2 last error: connection refused
}

// restartsAfterFailure runs children a, b and c under strategy st, makes b
// fail once, and prints how many times each child was restarted.
func restartsAfterFailure(st arbor.Strategy) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sup := arbor.New("root", arbor.WithStrategy(st), arbor.WithLogger(nil))
	idle := arbor.WorkerFunc(func(ctx context.Context) error { <-ctx.Done(); return nil })
	up := make(chan int)
	runs := 0
	must(sup.Add("a", idle))
	must(sup.Add("b", arbor.WorkerFunc(func(ctx context.Context) error {
		runs++
		up <- runs
		if runs == 1 {
			return errors.New("b failed")
		}
		<-ctx.Done()
		return nil
	})))
	must(sup.Add("c", idle))
	done := make(chan error)
	go func() { done <- sup.Serve(ctx) }()
	<-up // b's first run, which fails
	<-up // b's second run: the restart is done
	for _, c := range sup.Children() {
		fmt.Printf("%s: %v, restarts %d\n", c.Name, c.State, c.Restarts)
	}
	cancel()
	<-done
}

// OneForOne restarts only the child that failed.
func ExampleOneForOne() {
	restartsAfterFailure(arbor.OneForOne)
	// Output:
	// a: running, restarts 0
	// b: running, restarts 1
	// c: running, restarts 0
}

// OneForAll restarts every child when one fails: a and c are stopped (c
// first), then a, b and c start again in order.
func ExampleOneForAll() {
	restartsAfterFailure(arbor.OneForAll)
	// Output:
	// a: running, restarts 1
	// b: running, restarts 1
	// c: running, restarts 1
}

// RestForOne restarts the child that failed and the children added after it.
func ExampleRestForOne() {
	restartsAfterFailure(arbor.RestForOne)
	// Output:
	// a: running, restarts 0
	// b: running, restarts 1
	// c: running, restarts 1
}

// When restarts come faster than the intensity allows, the supervisor stops
// its children and Serve returns an error that still reaches the cause.
func ExampleWithIntensity() {
	sup := arbor.New("root", arbor.WithIntensity(2, time.Minute), arbor.WithLogger(nil))
	must(sup.Add("db", arbor.WorkerFunc(func(ctx context.Context) error {
		panic("no database")
	})))

	err := sup.Serve(context.Background())
	var pe *arbor.PanicError
	fmt.Println(errors.Is(err, arbor.ErrIntensityExceeded), errors.As(err, &pe), pe.Value)
	fmt.Println(sup.Children()[0].Restarts)
	// Output:
	// true true no database
	// 2
}

// A nested supervisor is a child like any other: its escalation is a failure
// its parent restarts.
func ExampleSupervisor_nested() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inner := arbor.New("inner", arbor.WithIntensity(0, time.Minute), arbor.WithLogger(nil))
	root := arbor.New("root", arbor.WithLogger(nil))
	runs := 0
	must(inner.Add("worker", arbor.WorkerFunc(func(ctx context.Context) error {
		runs++
		if runs == 1 {
			return errors.New("first run fails")
		}
		cancel()
		<-ctx.Done()
		return nil
	})))
	must(root.Add("inner", inner))

	fmt.Println("root returned:", root.Serve(ctx))
	c := root.Children()[0]
	fmt.Println(c.Name, "restarts:", c.Restarts, "intensity exceeded:", errors.Is(c.LastError, arbor.ErrIntensityExceeded))
	// Output:
	// root returned: <nil>
	// inner restarts: 1 intensity exceeded: true
}

// Terminate stops a child and keeps it; Restart starts it again; Remove deletes
// it.
func ExampleSupervisor_Terminate() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sup := arbor.New("root", arbor.WithLogger(nil))
	up := make(chan struct{}, 1)
	must(sup.Add("cache", arbor.WorkerFunc(func(ctx context.Context) error {
		up <- struct{}{}
		<-ctx.Done()
		return nil
	})))
	done := make(chan error)
	go func() { done <- sup.Serve(ctx) }()
	<-up // serving

	fmt.Println(sup.Terminate(context.Background(), "cache"), sup.Children()[0].State)
	fmt.Println(sup.Restart("cache"), sup.Children()[0].State)
	fmt.Println(errors.Is(sup.Restart("cache"), arbor.ErrNotStopped))
	fmt.Println(sup.Remove(context.Background(), "cache"), len(sup.Children()))
	cancel()
	<-done
	// Output:
	// <nil> stopped
	// <nil> running
	// true
	// <nil> 0
}

// A significant child ends its supervisor when it finishes: here a job whose
// completion shuts down the helper beside it.
func ExampleWithSignificant() {
	sup := arbor.New("batch", arbor.WithAutoShutdown(arbor.AnySignificant), arbor.WithLogger(nil))
	must(sup.Add("metrics", arbor.WorkerFunc(func(ctx context.Context) error {
		<-ctx.Done()
		fmt.Println("metrics: stopped")
		return nil
	})))
	must(sup.Add("job", arbor.WorkerFunc(func(ctx context.Context) error {
		fmt.Println("job: done")
		return nil
	}), arbor.WithRestart(arbor.Transient), arbor.WithSignificant()))

	fmt.Println("Serve returned:", sup.Serve(context.Background()))
	// Output:
	// job: done
	// metrics: stopped
	// Serve returned: <nil>
}

// ExponentialBackoff doubles the delay after each consecutive failure, up to
// its cap; with ImmediateFirst the first restart happens at once.
func ExampleExponentialBackoff() {
	b := arbor.ExponentialBackoff{Initial: time.Second, Max: 30 * time.Second, Multiplier: 2, ImmediateFirst: true}
	for n := 1; n <= 7; n++ {
		fmt.Print(b.Delay(n), " ")
	}
	fmt.Println()
	// Output:
	// 0s 1s 2s 4s 8s 16s 30s
}

// A worker that wraps ErrDoNotRestart is not restarted, whatever its policy.
func ExampleErrDoNotRestart() {
	sup := arbor.New("root", arbor.WithAutoShutdown(arbor.AnySignificant), arbor.WithLogger(nil))
	must(sup.Add("migration", arbor.WorkerFunc(func(ctx context.Context) error {
		return fmt.Errorf("schema already current: %w", arbor.ErrDoNotRestart)
	}), arbor.WithRestart(arbor.Transient), arbor.WithSignificant()))

	fmt.Println("Serve returned:", sup.Serve(context.Background()))
	c := sup.Children()[0]
	fmt.Println(c.State, c.Restarts, c.LastError)
	// Output:
	// Serve returned: <nil>
	// stopped 0 schema already current: arbor: do not restart
}

// A worker that wraps ErrTerminateTree shuts down every supervisor above it.
func ExampleErrTerminateTree() {
	inner := arbor.New("inner", arbor.WithLogger(nil))
	root := arbor.New("root", arbor.WithLogger(nil))
	must(inner.Add("config", arbor.WorkerFunc(func(ctx context.Context) error {
		return fmt.Errorf("invalid configuration: %w", arbor.ErrTerminateTree)
	})))
	must(root.Add("inner", inner))

	err := root.Serve(context.Background())
	fmt.Println(errors.Is(err, arbor.ErrTerminateTree))
	// Output:
	// true
}

// must stops an example at its first error: in an example, a refused Add is
// a bug. (A program would log the error and exit.)
func must(err error) {
	if err != nil {
		panic(err)
	}
}
