// Command testworker is the worker process of the package's multi-process
// tests: a pool on a jetstream.Source, in a tree with the source's
// Watcher, that appends what happens to each task to a log file, one line
// per event: "<unix nanoseconds> <pid> <event> <task id> <delivery>".
// Events: ready (the tree is ready; no task), start, done (the handler
// succeeded), ack (the server confirmed the ack), ackerr, nack. SIGTERM or
// SIGINT shuts it down gracefully; it then closes the source and drains
// the connection, and exits 0.
//
// For the benchmark of worker processes (BenchmarkProcesses), -quiet logs
// only "ready" (a line per task would dominate the cost of a no-op task),
// and -mode plain replaces the pool with a plain nats.go loop: Consume with
// its default prefetch, and DoubleAck for each message, the lower bound.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"

	"github.com/arborgo/arbor"
	"github.com/arborgo/arbor/pool"
	"github.com/arborgo/arbor/pool/jetstream"
)

// Task is a test task.
type Task struct {
	ID string
	// Work is how long the handler works, watching its context.
	Work time.Duration
	// Hang makes the first delivery's attempt block until the process
	// dies or shuts down.
	Hang bool
	// Delivery is set by the tracing lease: the attempt's number.
	Delivery int `json:"-"`
}

func main() {
	url := flag.String("url", nats.DefaultURL, "NATS server URL")
	stream := flag.String("stream", "TASKS", "stream")
	consumer := flag.String("consumer", "workers", "durable pull consumer")
	logPath := flag.String("log", "", "the file to append events to")
	workers := flag.Int("workers", 1, "pool workers")
	mode := flag.String("mode", "pool", "pool: a pool on a jetstream.Source; plain: a plain Consume loop that DoubleAcks each message")
	quiet := flag.Bool("quiet", false, "log only the ready event, not one line per task event")
	flag.Parse()
	var err error
	switch *mode {
	case "pool":
		err = run(*url, *stream, *consumer, *logPath, *workers, *quiet)
	case "plain":
		err = runPlain(*url, *stream, *consumer, *logPath)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testworker:", err)
		os.Exit(1)
	}
}

func run(url, stream, consumer, logPath string, workers int, quiet bool) error {
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	lg := &eventLog{f: f, pid: os.Getpid(), quiet: quiet}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	js, drain, err := connect(url)
	if err != nil {
		return err
	}
	defer drain()
	src, err := jetstream.New[Task](ctx, js, stream, consumer)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = src.Close(cctx)
	}()

	handler := func(ctx context.Context, t Task) (struct{}, error) {
		lg.event("start", t.ID, t.Delivery)
		if t.Hang && t.Delivery == 1 {
			<-ctx.Done()
			return struct{}{}, context.Cause(ctx)
		}
		timer := time.NewTimer(t.Work)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return struct{}{}, context.Cause(ctx)
		}
		lg.event("done", t.ID, t.Delivery)
		return struct{}{}, nil
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var source pool.Source[Task] = traced{src, lg}
	if quiet {
		source = src // nothing to log per task
	}
	p, err := pool.New("jobs", handler,
		pool.WithSource[Task](source),
		pool.WithLeaseExtension(src.LeaseExtension()),
		pool.WithWorkers(workers),
		pool.WithRetryBackoff(arbor.ConstantBackoff(100*time.Millisecond)),
		pool.WithLogger(logger))
	if err != nil {
		return err
	}
	root := arbor.New("testworker", arbor.WithLogger(logger))
	if err := root.Add("nats", src.Watcher()); err != nil {
		return err
	}
	if err := root.Add("jobs", p); err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- root.Serve(ctx) }()
	if err := root.WaitReady(ctx); err == nil {
		lg.event("ready", "-", 0)
	}
	return <-served
}

// connect connects to url, reconnecting for ever; drain drains the
// connection and waits until it is closed.
func connect(url string) (js njs.JetStream, drain func(), err error) {
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return nil, nil, err
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	drain = func() {
		_ = nc.Drain()
		<-closed
	}
	js, err = njs.New(nc)
	if err != nil {
		drain()
		return nil, nil, err
	}
	return js, drain, nil
}

// runPlain is the plain loop of the benchmark: nats.go's Consume (its
// default prefetch) and DoubleAck for each message, no pool. It logs only
// "ready", once it consumes; SIGTERM or SIGINT drains it, and it exits 0.
func runPlain(url, stream, consumer, logPath string) error {
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	lg := &eventLog{f: f, pid: os.Getpid(), quiet: true}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	js, drain, err := connect(url)
	if err != nil {
		return err
	}
	defer drain()
	c, err := js.Consumer(ctx, stream, consumer)
	if err != nil {
		return err
	}
	cc, err := c.Consume(func(m njs.Msg) {
		_ = m.DoubleAck(context.Background())
	})
	if err != nil {
		return err
	}
	lg.event("ready", "-", 0)
	<-ctx.Done()
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(5 * time.Second):
	}
	return nil
}

// eventLog appends one line per event, each in one write; a quiet one only
// "ready".
type eventLog struct {
	mu    sync.Mutex
	f     *os.File
	pid   int
	quiet bool
}

func (l *eventLog) event(what, id string, delivery int) {
	if l.quiet && what != "ready" {
		return
	}
	line := fmt.Sprintf("%d %d %s %s %d\n", time.Now().UnixNano(), l.pid, what, id, delivery)
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.f.WriteString(line)
}

// traced wraps the source to log acks and nacks, and to give the handler
// its attempt's number.
type traced struct {
	src *jetstream.Source[Task]
	lg  *eventLog
}

func (t traced) Lease(ctx context.Context) (pool.Lease[Task], error) {
	l, err := t.src.Lease(ctx)
	if err != nil {
		return nil, err
	}
	return tracedLease{l, t.lg}, nil
}

type tracedLease struct {
	pool.Lease[Task]
	lg *eventLog
}

func (l tracedLease) Task() (Task, error) {
	t, err := l.Lease.Task()
	t.Delivery = l.Attempt()
	return t, err
}

func (l tracedLease) Ack(ctx context.Context) error {
	t, _ := l.Lease.Task()
	err := l.Lease.Ack(ctx)
	if err != nil {
		l.lg.event("ackerr", t.ID, l.Attempt())
		return err
	}
	l.lg.event("ack", t.ID, l.Attempt())
	return nil
}

func (l tracedLease) Nack(ctx context.Context, delay time.Duration) error {
	t, _ := l.Lease.Task()
	l.lg.event("nack", t.ID, l.Attempt())
	return l.Lease.Nack(ctx, delay)
}
