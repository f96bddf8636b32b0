package pool_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/arborgo/arbor"
	"github.com/arborgo/arbor/pool"
)

// A pool runs typed tasks and gives their results.
func Example() {
	p, err := pool.New("squares", func(_ context.Context, n int) (int, error) {
		return n * n, nil
	}, pool.WithWorkers(4))
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Serve(ctx) }()

	var tasks []*pool.Task[int, int]
	for n := range 5 {
		t, err := p.Submit(ctx, n)
		if err != nil {
			panic(err)
		}
		tasks = append(tasks, t)
	}
	for _, t := range tasks {
		r, err := t.Wait(ctx)
		fmt.Println(r, err)
	}
	stop()
	fmt.Println("served:", <-done)
	// Output:
	// 0 <nil>
	// 1 <nil>
	// 4 <nil>
	// 9 <nil>
	// 16 <nil>
	// served: <nil>
}

// A task that keeps failing is retried, then dead-lettered with every
// attempt's error.
func ExampleWithDeadLetter() {
	attempts := 0
	p, _ := pool.New("mail", func(_ context.Context, to string) (string, error) {
		attempts++
		return "", fmt.Errorf("attempt %d: smtp: connection refused", attempts)
	}, pool.WithWorkers(1), pool.WithLogger(nil), pool.WithMaxAttempts(3),
		pool.WithRetryBackoff(arbor.ConstantBackoff(time.Millisecond)),
		pool.WithDeadLetter(func(to string, err *pool.DeadLetterError) {
			fmt.Printf("dead letter %q after %d attempts: %v\n", to, err.Attempt, err.Attempts)
		}))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go p.Serve(ctx)

	t, _ := p.Submit(ctx, "ann@example.com")
	_, err := t.Wait(ctx)
	fmt.Println(errors.Is(err, pool.ErrDeadLetter))
	fmt.Println(err)
	// Output:
	// dead letter "ann@example.com" after 3 attempts: [attempt 1: smtp: connection refused attempt 2: smtp: connection refused attempt 3: smtp: connection refused]
	// true
	// arbor: task dead-lettered after 3 attempts: attempt 3: smtp: connection refused
}

// Each worker owns state set up when it starts and released when it stops.
func ExampleNewWithSetup() {
	var mu sync.Mutex
	var log []string
	say := func(s string) {
		mu.Lock()
		log = append(log, s)
		mu.Unlock()
	}
	conns := 0
	setup := func(ctx context.Context) (pool.Handler[string, string], func(), error) {
		conns++ // one worker at a time here
		id := conns
		say(fmt.Sprint("connect #", id))
		h := func(_ context.Context, q string) (string, error) {
			say(fmt.Sprintf("query %s on #%d", q, id))
			return "rows", nil
		}
		return h, func() { say(fmt.Sprint("disconnect #", id)) }, nil
	}
	p, _ := pool.NewWithSetup("db", setup, pool.WithWorkers(1), pool.WithMaxTasksPerWorker(2))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Serve(ctx) }()

	for _, q := range []string{"a", "b", "c"} {
		t, _ := p.Submit(ctx, q)
		t.Wait(ctx)
	}
	stop()
	<-done
	for _, line := range log {
		fmt.Println(line)
	}
	// Output:
	// connect #1
	// query a on #1
	// query b on #1
	// disconnect #1
	// connect #2
	// query c on #2
	// disconnect #2
}

// At its soft limit an attempt's context is cancelled with ErrSoftTimeout.
func ExampleWithTimeLimit() {
	p, _ := pool.New("reports", func(ctx context.Context, _ string) (string, error) {
		<-ctx.Done() // a slow report
		return "", context.Cause(ctx)
	}, pool.WithWorkers(1), pool.WithLogger(nil), pool.WithMaxAttempts(1),
		pool.WithTimeLimit(10*time.Millisecond, time.Second))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go p.Serve(ctx)

	t, _ := p.Submit(ctx, "yearly")
	_, err := t.Wait(ctx)
	fmt.Println(errors.Is(err, pool.ErrSoftTimeout))
	// Output:
	// true
}

// A pool nests in a tree: its workers are children of its own supervisor.
func ExamplePool_Supervisor() {
	p, _ := pool.New("jobs", func(_ context.Context, n int) (int, error) { return n, nil }, pool.WithWorkers(2))
	root := arbor.New("app")
	if err := root.Add("jobs", p); err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- root.Serve(ctx) }()
	if err := root.WaitReady(ctx); err != nil {
		panic(err)
	}
	t, _ := p.Submit(ctx, 1)
	t.Wait(ctx)
	for n := range root.Tree(ctx).All() {
		fmt.Println(n.Path, n.State)
	}
	stop()
	<-done
	// Output:
	// app running
	// app/jobs running
	// app/jobs/worker-1 running
	// app/jobs/worker-2 running
}
