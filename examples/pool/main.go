// Command pool runs a task pool (package pool) inside a supervision tree:
// three workers, each with a connection of its own, process eight jobs of
// which some go wrong, and the program prints what became of each.
//
//   - "send email" fails its first attempt: it is retried after the retry
//     backoff and succeeds.
//   - "import feed" fails every attempt: after the third it is dead-lettered.
//   - "charge card" panics on its first attempt: the worker crashes, the
//     pool's supervisor restarts it (with a fresh connection), and the task
//     is retried.
//   - "render report" hangs on its first attempt, ignoring its context: it
//     is cancelled at the soft time limit, abandoned at the hard one, and a
//     new worker takes its slot. Go cannot kill a goroutine, so the hung call
//     goes on until the program lets it return; the task is then retried.
//
// Then the tree shuts down cleanly and the program exits, after a second or
// less (or on Ctrl-C). The transcript is the same on every run: it is printed
// from one goroutine, in job order, from what the pool reported. The logs of
// the tree and the pool are off; a real program keeps them (slog.Default by
// default), as they carry the stacks of crashed and abandoned attempts.
//
//	go run ./examples/pool
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arborgo/arbor"
	"github.com/arborgo/arbor/pool"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pool:", err)
		os.Exit(1)
	}
}

// A fault is what goes wrong with a job.
type fault int

const (
	noFault    fault = iota
	failOnce         // its first attempt returns an error
	failAlways       // every attempt returns an error
	panicOnce        // its first attempt panics
	hangOnce         // its first attempt hangs, ignoring its context
)

// A job is a pool's task.
type job struct {
	ID    int
	Name  string
	Fault fault
}

func (j job) String() string { return fmt.Sprintf("job %d %s", j.ID, j.Name) }

var jobs = []job{
	{1, "resize photo", noFault},
	{2, "send email", failOnce},
	{3, "index page", noFault},
	{4, "charge card", panicOnce},
	{5, "import feed", failAlways},
	{6, "render report", hangOnce},
	{7, "purge cache", noFault},
	{8, "ping webhook", noFault},
}

// The pool's settings.
const (
	workers    = 3
	attempts   = 3
	retryAfter = 50 * time.Millisecond
	softLimit  = 100 * time.Millisecond
	hardLimit  = 300 * time.Millisecond
)

// run serves the tree until every job has ended, shuts it down, and writes
// the transcript to w.
func run(ctx context.Context, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	be := &backend{tries: map[int]int{}, unblock: make(chan struct{})}
	jn := &journal{steps: map[int][]string{}, abandoned: make(chan struct{})}
	p, err := pool.NewWithSetup("jobs", be.setup,
		pool.WithWorkers(workers),
		pool.WithMaxAttempts(attempts),
		pool.WithRetryBackoff(arbor.ConstantBackoff(retryAfter)),
		pool.WithTimeLimit(softLimit, hardLimit),
		pool.WithDeadLetter(jn.deadLetter),
		pool.WithEventHandler(jn.poolEvent),
		pool.WithLogger(nil),
	)
	if err != nil {
		return err
	}
	root := arbor.New("app", arbor.WithLogger(nil), arbor.WithEventHandler(jn.treeEvent))
	if err := root.Add("jobs", p); err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- root.Serve(ctx) }()
	defer func() { // on an early return: no goroutine left behind
		cancel()
		be.release()
		if served != nil {
			<-served
		}
	}()

	fmt.Fprintf(w, "pool %q: %d workers, %d attempts a task, retry after %v, time limits %v soft, %v hard\n",
		"app/jobs", workers, attempts, retryAfter, softLimit, hardLimit)
	tasks := make([]*pool.Task[job, string], len(jobs))
	for i, j := range jobs {
		if tasks[i], err = p.Submit(ctx, j); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "submitted %d jobs\n", len(jobs))

	// The hung call returns once the pool has given up on it: the program
	// plays the remote end, which answers at last.
	select {
	case <-jn.abandoned:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	fmt.Fprintln(w, "an attempt was abandoned at its hard limit; its call now returns, late")
	be.release()

	fmt.Fprintln(w, "\n== results, in job order")
	for i, t := range tasks {
		res, err := t.Wait(ctx)
		switch {
		case errors.Is(err, pool.ErrDeadLetter):
			fmt.Fprintf(w, "%-22v dead-lettered: %v\n", jobs[i], err)
		case err != nil:
			return fmt.Errorf("%v: %w", jobs[i], err)
		default:
			fmt.Fprintf(w, "%-22v ok: %s\n", jobs[i], res)
		}
	}

	cancel()
	err = <-served
	served = nil

	// Printed once the tree has stopped, when everything below has been
	// reported: each attempt is settled, and its events sent, before its
	// worker returns; and the root's Serve returns once the tree's event
	// handlers have seen its last event.
	fmt.Fprintln(w, "\n== what happened to the jobs that went wrong")
	for _, j := range jobs {
		if steps := jn.steps[j.ID]; len(steps) > 1 {
			fmt.Fprintf(w, "%v:\n    %s\n", j, strings.Join(steps, "\n    "))
		}
	}
	fmt.Fprintln(w, "\n== dead letters")
	for _, d := range jn.dead {
		fmt.Fprintln(w, d)
	}
	fmt.Fprintln(w, "\n== workers")
	slices.Sort(jn.started)
	fmt.Fprintf(w, "started: %s (the last replaced the worker whose attempt was abandoned)\n", strings.Join(jn.started, ", "))
	fmt.Fprintf(w, "crashed and restarted in place: %d (%s)\n", jn.restarts, strings.Join(jn.crash, "; "))
	fmt.Fprintf(w, "connections opened: %d, closed: %d\n", be.opened.Load(), be.closed.Load())
	st := p.Stats()
	fmt.Fprintf(w, "\n== pool stats\nsucceeded %d, failed attempts %d, retries %d, dead-lettered %d, abandoned %d\n",
		st.Succeeded, st.Failed, st.Retried, st.DeadLettered, st.Abandoned)

	fmt.Fprintln(w, "\n== shutdown")
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	fmt.Fprintln(w, "app returned nil: a clean shutdown")
	fmt.Fprint(w, root.Tree(context.Background()))
	return nil
}

// backend plays the services the jobs call. Each worker has a connection to
// it, opened when the worker starts and closed when it stops.
type backend struct {
	opened, closed atomic.Int32
	unblock        chan struct{} // closed to let the hung call return
	once           sync.Once

	mu    sync.Mutex
	tries map[int]int // attempts by job ID
}

// setup starts a worker: it opens the worker's connection and returns the
// handler that uses it, and a function to close it.
func (b *backend) setup(ctx context.Context) (pool.Handler[job, string], func(), error) {
	b.opened.Add(1)
	c := &conn{b: b}
	return c.call, func() { b.closed.Add(1) }, nil
}

// release lets the hung call return.
func (b *backend) release() { b.once.Do(func() { close(b.unblock) }) }

// try counts an attempt of job id and returns its number.
func (b *backend) try(id int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tries[id]++
	return b.tries[id]
}

// A conn is one worker's connection to the backend.
type conn struct{ b *backend }

// call runs one attempt of j.
func (c *conn) call(ctx context.Context, j job) (string, error) {
	n := c.b.try(j.ID)
	select { // the work
	case <-time.After(10 * time.Millisecond):
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
	switch {
	case j.Fault == failOnce && n == 1:
		return "", errors.New("smtp: 421 try again later")
	case j.Fault == failAlways:
		return "", errors.New("feed: 404 not found")
	case j.Fault == panicOnce && n == 1:
		var session map[string]string
		//lint:ignore SA5000 the bug this job demonstrates
		session["card"] = "4242" // a bug: assignment to entry in nil map
	case j.Fault == hangOnce && n == 1:
		<-c.b.unblock // ignores ctx: a call with no deadline of its own
		return "", context.Cause(ctx)
	}
	return fmt.Sprintf("done on attempt %d", n), nil
}

// journal records what the pool and the tree report, to print it in a
// fixed order once the tree has stopped: the handlers run on the pool's
// workers, and on the tree's event goroutine, concurrently.
type journal struct {
	abandoned chan struct{} // closed at the first abandoned attempt
	once      sync.Once

	mu       sync.Mutex
	steps    map[int][]string // by job ID
	dead     []string
	started  []string // workers started
	restarts int      // workers restarted
	crash    []string // why they failed
}

func (jn *journal) poolEvent(e pool.Event) {
	j := e.Task.(job)
	var step string
	switch e.Kind {
	case pool.EventFailed:
		step = fmt.Sprintf("attempt %d failed: %v", e.Attempt, e.Err)
	case pool.EventRetried:
		step = fmt.Sprintf("retry in %v", e.Delay)
	case pool.EventSucceeded:
		step = fmt.Sprintf("attempt %d succeeded", e.Attempt)
	case pool.EventDeadLettered:
		step = "dead-lettered"
	case pool.EventAbandoned:
		step = fmt.Sprintf("attempt %d abandoned at the hard limit, still running in %s",
			e.Attempt, hungIn(e.Stack))
		defer jn.once.Do(func() { close(jn.abandoned) })
	default:
		return
	}
	jn.mu.Lock()
	jn.steps[j.ID] = append(jn.steps[j.ID], step)
	jn.mu.Unlock()
}

// hungIn returns the function a hung attempt's goroutine is in: the first
// frame of its stack outside package runtime, without its package path (which
// is "main" in the program, the import path in its test).
func hungIn(stack []byte) string {
	for line := range strings.Lines(string(stack)) {
		// The header, then a line per frame, "pkg.Func(args)", each
		// followed by a line "\tfile:line".
		if strings.HasPrefix(line, "goroutine ") || strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "runtime.") {
			continue
		}
		fn := line
		if i := strings.LastIndexByte(fn, '('); i > 0 {
			fn = fn[:i] // pkg/path.(*T).Method
		}
		fn = fn[strings.LastIndexByte(fn, '/')+1:]
		_, fn, _ = strings.Cut(fn, ".")
		return fn
	}
	return "(stack not found)"
}

func (jn *journal) deadLetter(j job, err *pool.DeadLetterError) {
	jn.mu.Lock()
	defer jn.mu.Unlock()
	jn.dead = append(jn.dead, fmt.Sprintf("%v: %v (errors of its attempts: %d)", j, err, len(err.Attempts)))
}

func (jn *journal) treeEvent(e arbor.Event) {
	if e.Supervisor != "app/jobs" {
		return
	}
	jn.mu.Lock()
	defer jn.mu.Unlock()
	switch e.Kind {
	case arbor.EventChildStarted:
		jn.started = append(jn.started, e.Child)
	case arbor.EventChildRestarted:
		jn.restarts++
	case arbor.EventChildFailed:
		jn.crash = append(jn.crash, e.Err.Error())
	}
}
