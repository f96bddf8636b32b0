// Package strategydemo is the scenario that examples/oneforone,
// examples/oneforall and examples/restforone run, each under its strategy:
// children a, b and c start in order; once all are up, b fails; the program
// prints which children were stopped (in the supervisor's order) and started
// again, each child's restart count, and the ordered shutdown. It mirrors the
// package's ExampleOneForOne, ExampleOneForAll and ExampleRestForOne.
package strategydemo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/arborgo/arbor"
)

// An event is something a child reports: "started", "failed" or "stopped".
type event struct {
	name, what string
}

// Run runs the scenario under strategy and prints what happens; it exits the
// process with status 1 if Serve fails.
func Run(strategy arbor.Strategy) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()

	events := make(chan event, 64)
	failB := make(chan struct{})
	sup := arbor.New("root", arbor.WithStrategy(strategy), arbor.WithLogger(nil))
	order := []string{"a", "b", "c"}
	for _, name := range order {
		var fail chan struct{}
		if name == "b" {
			fail = failB
		}
		must(sup.Add(name, child(name, events, fail)))
	}

	fmt.Printf("strategy %v; children a, b, c in start order\n", strategy)
	done := make(chan error, 1)
	go func() { done <- sup.Serve(ctx) }()

	// The supervisor launches the children in start order, but their
	// goroutines run concurrently: gather the start reports and print them in
	// start order.
	fmt.Println("started:", strings.Join(waitStarts(ctx, events, order, order), ", "))

	fmt.Println("b fails:")
	close(failB)
	var seen []string // children started again, as reported
wait:
	for {
		select {
		case e := <-events:
			if e.what != "started" {
				// The supervisor stops children one at a time, so these
				// lines come in its order.
				fmt.Printf("  %s %s\n", e.name, e.what)
				continue
			}
			seen = append(seen, e.name)
			if e.name == "b" {
				break wait // b is up again: the restart is done
			}
		case <-ctx.Done():
			break wait
		}
	}
	// Which children the restart started again, from the supervisor's
	// record, in start order; wait for the start reports not seen yet.
	var restarted []string
	for _, c := range sup.Children() {
		if c.Restarts > 0 {
			restarted = append(restarted, c.Name)
		}
	}
	rest := slices.DeleteFunc(slices.Clone(restarted), func(n string) bool { return slices.Contains(seen, n) })
	waitStarts(ctx, events, rest, order)
	fmt.Println("  restarted:", strings.Join(restarted, ", "))

	for _, c := range sup.Children() {
		fmt.Printf("%s: %v, restarts %d, last error: %v\n", c.Name, c.State, c.Restarts, c.LastError)
	}

	fmt.Println("shutting down (reverse start order):")
	cancel()
	err := <-done
	for len(events) > 0 {
		e := <-events
		fmt.Printf("  %s %s\n", e.name, e.what)
	}
	fmt.Println("Serve returned:", err)
	if err != nil {
		os.Exit(1)
	}
}

// child returns a worker that reports its starts and stops on events. If
// fail is not nil, its first run fails when fail is closed.
func child(name string, events chan<- event, fail <-chan struct{}) arbor.Worker {
	runs := 0 // the supervisor never runs two copies of a child at once
	return arbor.WorkerFunc(func(ctx context.Context) error {
		runs++
		events <- event{name, "started"}
		if fail != nil && runs == 1 {
			select {
			case <-fail:
				events <- event{name, "failed"}
				return errors.New(name + " failed")
			case <-ctx.Done():
			}
		}
		<-ctx.Done()
		events <- event{name, "stopped"}
		return nil
	})
}

// waitStarts waits until each child in names has reported a start, and
// returns those seen in start order.
func waitStarts(ctx context.Context, events <-chan event, names, order []string) []string {
	seen := map[string]bool{}
	for len(seen) < len(names) {
		select {
		case e := <-events:
			if e.what == "started" {
				seen[e.name] = true
			}
		case <-ctx.Done():
			return nil
		}
	}
	var started []string
	for _, n := range order {
		if seen[n] {
			started = append(started, n)
		}
	}
	return started
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
