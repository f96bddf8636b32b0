// Command example shares the jobs of a NATS JetStream stream between task
// pools in several processes (package github.com/arborgo/arbor/pool/jetstream):
// kill one, and the others finish its jobs. See README.md.
//
//	go run ./example -server                  # a NATS server, in this process
//	go run ./example work -http 127.0.0.1:8081 # a worker process, with its live view
//	go run ./example work -http 127.0.0.1:8082 # another
//	go run ./example submit -n 30              # publish 30 jobs
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"

	"github.com/arborgo/arbor"
	"github.com/arborgo/arbor/arborhttp"
	"github.com/arborgo/arbor/pool"
	"github.com/arborgo/arbor/pool/jetstream"
)

// The stream, its consumer and the dead letters' stream, made by every
// mode (making them again changes nothing).
const (
	stream      = "JOBS"
	consumer    = "workers"
	deadStream  = "JOBS_DEAD"
	deadSubject = "dead.jobs"
	attempts    = 3
	ackWait     = 10 * time.Second
)

// A Job is a task: it takes Millis milliseconds, and its first attempt
// fails if FailOnce.
type Job struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	Millis   int    `json:"millis"`
	FailOnce bool   `json:"fail_once"`
}

func (j Job) String() string { return fmt.Sprintf("job %d (%s)", j.ID, j.Name) }

func main() {
	natsURL := flag.String("nats", nats.DefaultURL, "the NATS server to use")
	runServer := flag.Bool("server", false, "run a NATS server with JetStream in this process, on the -nats address")
	store := flag.String("store", filepath.Join(os.TempDir(), "arbor-jetstream-example"), "where the -server keeps its streams")
	httpAddr := flag.String("http", "127.0.0.1:8081", "work: the address of the live view")
	workers := flag.Int("workers", 3, "work: the pool's workers")
	n := flag.Int("n", 20, "submit: how many jobs")
	ms := flag.Int("ms", 1000, "submit: how long the shortest job takes, in milliseconds")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: example [flags] [work | submit]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	// The flags may also follow the mode: "example work -http :8082".
	mode := ""
	if flag.NArg() > 0 {
		mode = flag.Arg(0)
		if err := flag.CommandLine.Parse(flag.Args()[1:]); err != nil || flag.NArg() > 0 {
			flag.Usage()
			os.Exit(2)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, mode, *natsURL, *runServer, *store, *httpAddr, *workers, *n, *ms); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, mode, natsURL string, runServer bool, store, httpAddr string, workers, n, ms int) error {
	if mode != "" && mode != "work" && mode != "submit" {
		return fmt.Errorf("unknown mode %q: want work or submit", mode)
	}
	if runServer {
		srv, err := startServer(natsURL, store)
		if err != nil {
			return err
		}
		defer func() {
			srv.Shutdown()
			srv.WaitForShutdown()
		}()
		natsURL = srv.ClientURL()
		fmt.Fprintf(out, "NATS server with JetStream on %s, streams in %s\n", natsURL, store)
	}
	if mode == "" && !runServer {
		return errors.New("nothing to do: give -server, a mode (work, submit), or both")
	}
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		return fmt.Errorf("connect to %s: %w (start a server with -server)", natsURL, err)
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	defer func() {
		_ = nc.Drain()
		<-closed
	}()
	js, err := njs.New(nc)
	if err != nil {
		return err
	}
	if err := provision(ctx, js); err != nil {
		return err
	}
	switch mode {
	case "work":
		return work(ctx, out, js, httpAddr, workers)
	case "submit":
		return submit(ctx, out, js, n, ms)
	}
	fmt.Fprintln(out, "serving until Ctrl-C")
	<-ctx.Done()
	return nil
}

// startServer starts a NATS server with JetStream on the host and port of
// natsURL.
func startServer(natsURL, store string) (*server.Server, error) {
	u, err := url.Parse(natsURL)
	if err != nil {
		return nil, fmt.Errorf("-nats %q: %w", natsURL, err)
	}
	host, port := u.Hostname(), 4222
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("-nats %q: %w", natsURL, err)
		}
	}
	srv, err := server.NewServer(&server.Options{Host: host, Port: port, JetStream: true, StoreDir: store, NoSigs: true, NoLog: true})
	if err != nil {
		return nil, err
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("NATS server on %s:%d not ready (is the port taken?)", host, port)
	}
	return srv, nil
}

// provision makes the streams and the consumer.
func provision(ctx context.Context, js njs.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, njs.StreamConfig{Name: stream, Subjects: []string{"jobs.>"}, Storage: njs.FileStorage}); err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, njs.StreamConfig{Name: deadStream, Subjects: []string{deadSubject}, Storage: njs.FileStorage}); err != nil {
		return fmt.Errorf("stream %s: %w", deadStream, err)
	}
	_, err := js.CreateOrUpdateConsumer(ctx, stream, njs.ConsumerConfig{
		Durable: consumer, AckPolicy: njs.AckExplicitPolicy, AckWait: ackWait, MaxDeliver: -1,
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", consumer, err)
	}
	return nil
}

var names = []string{"resize photo", "send email", "index page", "charge card", "import feed", "render report", "purge cache", "ping webhook"}

// submit publishes n jobs, of ms to 2.75×ms milliseconds, each with an ID
// the stream deduplicates.
func submit(ctx context.Context, out io.Writer, js njs.JetStream, n, ms int) error {
	src, err := jetstream.New[Job](ctx, js, stream, consumer)
	if err != nil {
		return err
	}
	defer func() { _ = src.Close(context.WithoutCancel(ctx)) }()
	first := int(time.Now().Unix() % 100000 * 100)
	for i := range n {
		j := Job{ID: first + i, Name: names[i%len(names)], Millis: ms + ms/4*(i%8), FailOnce: i%5 == 4}
		if _, err := src.Publish(ctx, "jobs."+strconv.Itoa(j.ID), j, njs.WithMsgID(strconv.Itoa(j.ID))); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "published %d jobs, %d to %d\n", n, first, first+n-1)
	return nil
}

// work runs a pool on the stream's consumer, in a tree with the source's
// watcher and an HTTP server for the live view, until ctx ends.
func work(ctx context.Context, out io.Writer, js njs.JetStream, httpAddr string, workers int) error {
	src, err := jetstream.New[Job](ctx, js, stream, consumer,
		jetstream.WithMaxAttempts(attempts), jetstream.WithDeadLetterSubject(deadSubject))
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = src.Close(cctx)
	}()
	pid := os.Getpid()
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, "%s [%d] %s\n", time.Now().Format("15:04:05.000"), pid, fmt.Sprintf(format, args...))
	}
	var failedOnce sync.Map // by job ID: FailOnce fails the first attempt this process runs
	handle := func(ctx context.Context, j Job) (struct{}, error) {
		timer := time.NewTimer(time.Duration(j.Millis) * time.Millisecond)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return struct{}{}, context.Cause(ctx)
		}
		if _, failed := failedOnce.LoadOrStore(j.ID, true); j.FailOnce && !failed {
			return struct{}{}, errors.New("the remote service answered 503")
		}
		return struct{}{}, nil
	}
	p, err := pool.New("jobs", handle, append(src.PoolOptions(),
		pool.WithWorkers(workers),
		pool.WithRetryBackoff(arbor.ConstantBackoff(time.Second)),
		pool.WithEventHandler(func(e pool.Event) {
			switch e.Kind {
			case pool.EventStarted:
				say("%v: attempt %d started on %s", e.Task, e.Attempt, e.Worker)
			case pool.EventSucceeded:
				say("%v: done", e.Task)
			case pool.EventFailed:
				say("%v: attempt %d failed: %v", e.Task, e.Attempt, e.Err)
			case pool.EventRetried:
				say("%v: retry in %v", e.Task, e.Delay)
			case pool.EventDeadLettered:
				say("%v: dead-lettered to %s", e.Task, deadSubject)
			}
		}),
		pool.WithLogger(nil))...)
	if err != nil {
		return err
	}
	root := arbor.New("worker")
	if err := root.Add("nats", src.Watcher()); err != nil {
		return err
	}
	if err := root.Add("jobs", p); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return fmt.Errorf("live view: %w (another worker there? give -http another address)", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", arborhttp.ViewHandler(root))
	mux.Handle("/readyz", arborhttp.ProbeHandler(root, arborhttp.Readiness))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := root.Add("http", arbor.WorkerFunc(func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }() // ends at Shutdown
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			err := srv.Shutdown(sctx)
			<-errc
			return err
		}
	}), arbor.WithRestart(arbor.Temporary)); err != nil {
		return err
	}
	say("working with %d workers; live view on http://%s/ (Ctrl-C to stop)", workers, ln.Addr())
	err = root.Serve(ctx)
	say("stopped; what this process had not finished is back on the stream")
	return err
}
