// Command pool runs a pool of identical workers whose size changes while the
// supervisor serves: Add starts a worker at once, Remove stops and deletes
// one, and Children describes the pool at any moment.
//
// The workers take jobs from one shared channel. The program starts the pool
// empty, scales it up to two workers and then to five, crashes one worker
// (it panics) to show that the supervisor restarts just that one (OneForOne),
// scales down to two, and runs a batch of jobs at each size, printing a
// summary of the children after each step.
//
//	go run ./examples/pool
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/arborgo/arbor"
)

// A job asks for the square of n; the answer goes to reply.
type job struct {
	n     int
	reply chan<- int
}

// A start is a worker's report that its run-th run has started.
type start struct {
	name string
	run  int
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()

	// The supervisor's failure reports, plainly on stdout.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "panic_stack" {
				return slog.Attr{}
			}
			return a
		},
	}))

	p := &pool{
		sup:    arbor.New("pool", arbor.WithLogger(logger)),
		jobs:   make(chan job),
		starts: make(chan start, 64),
		crash:  map[string]chan struct{}{},
	}
	done := make(chan error, 1)
	go func() { done <- p.sup.Serve(ctx) }()

	step := func(title string) bool {
		if ctx.Err() != nil {
			return false
		}
		fmt.Println("==", title)
		return true
	}
	if step("scale up to 2 workers") {
		p.resize(ctx, 2)
		p.summary()
		p.batch(ctx, 6)
	}
	if step("scale up to 5 workers") {
		p.resize(ctx, 5)
		p.summary()
		p.batch(ctx, 10)
	}
	if step("worker-4 crashes") {
		p.crashOne(ctx, "worker-4")
		p.summary()
		p.batch(ctx, 10)
	}
	if step("scale down to 2 workers") {
		p.resize(ctx, 2)
		p.summary()
		p.batch(ctx, 6)
	}

	fmt.Println("== shut down")
	cancel()
	err := <-done
	fmt.Println("pool returned:", err)
	p.summary()
	if err != nil {
		os.Exit(1)
	}
}

// pool keeps the supervisor of the workers and what the program needs to
// drive them.
type pool struct {
	sup    *arbor.Supervisor
	jobs   chan job
	starts chan start
	crash  map[string]chan struct{} // a worker's fault injection, by name
	size   int
}

// resize adds workers (worker-<size+1>, ...) or removes the newest ones
// until the pool has n.
func (p *pool) resize(ctx context.Context, n int) {
	for p.size < n {
		p.size++
		name := fmt.Sprintf("worker-%d", p.size)
		p.crash[name] = make(chan struct{}, 1)
		if err := p.sup.Add(name, p.worker(name)); err != nil {
			fmt.Println("add", name+":", err)
			return
		}
		p.waitStart(ctx, name, 1)
		fmt.Println("added", name)
	}
	for p.size > n {
		name := fmt.Sprintf("worker-%d", p.size)
		// Remove returns once the worker has returned: it finishes its job
		// first, since it looks at its context only between jobs.
		if err := p.sup.Remove(context.Background(), name); err != nil {
			fmt.Println("remove", name+":", err)
		} else {
			fmt.Println("removed", name)
		}
		delete(p.crash, name)
		p.size--
	}
}

// worker returns the worker that every member of the pool runs.
func (p *pool) worker(name string) arbor.Worker {
	crash := p.crash[name]
	runs := 0 // the supervisor never runs two copies of a child at once
	return arbor.WorkerFunc(func(ctx context.Context) error {
		runs++
		p.starts <- start{name, runs}
		for {
			select {
			case j := <-p.jobs:
				time.Sleep(5 * time.Millisecond) // work
				j.reply <- j.n * j.n
			case <-crash:
				fmt.Println(name + ": panics")
				panic(name + ": corrupted state")
			case <-ctx.Done():
				return nil
			}
		}
	})
}

// crashOne makes the named worker panic and waits until the supervisor has
// started it again.
func (p *pool) crashOne(ctx context.Context, name string) {
	p.crash[name] <- struct{}{}
	p.waitStart(ctx, name, 2)
	fmt.Println(name, "restarted")
}

// waitStart waits until the named worker reports its run-th start. (Add
// returns once the worker's goroutine is launched, or, before Serve has
// begun, once the worker is recorded for Serve to start.)
func (p *pool) waitStart(ctx context.Context, name string, run int) {
	for {
		select {
		case s := <-p.starts:
			if s.name == name && s.run == run {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// batch hands n jobs to the pool and waits for their answers.
func (p *pool) batch(ctx context.Context, n int) {
	replies := make(chan int, n)
	for i := 1; i <= n; i++ {
		select {
		case p.jobs <- job{i, replies}:
		case <-ctx.Done():
			return
		}
	}
	sum := 0
	for range n {
		select {
		case r := <-replies:
			sum += r
		case <-ctx.Done():
			return
		}
	}
	fmt.Printf("batch of %d jobs done by %d workers, sum of squares %d\n", n, p.size, sum)
}

func (p *pool) summary() {
	children := p.sup.Children()
	fmt.Printf("children (%d):\n", len(children))
	for _, c := range children {
		fmt.Printf("  %-8s %-7v restarts=%d last error=%v\n", c.Name, c.State, c.Restarts, c.LastError)
	}
}
