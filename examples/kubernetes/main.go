// Command kubernetes runs a supervision tree behind Kubernetes probes: the
// tree's liveness on /livez and its readiness on /readyz (see deployment.yaml
// for the manifest whose probes point at them). The database child signals
// readiness only after it has "connected", so /readyz says 503 until then;
// a worker that wedges stops sending heartbeats and is restarted in-process;
// only a failure the tree cannot absorb makes the process exit non-zero, and
// a stuck worker makes /livez fail, so the kubelet restarts the container.
//
//	go run ./examples/kubernetes                      # serves on :8080 until Ctrl-C
//	go run ./examples/kubernetes -addr 127.0.0.1:0 -duration 3s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/arborgo/arbor"
	"github.com/arborgo/arbor/arborhttp"
)

func main() {
	addr := flag.String("addr", ":8080", "address for the probe and API server")
	duration := flag.Duration("duration", 0, "stop after this long (0: until SIGTERM or Ctrl-C)")
	flag.Parse()

	// The kubelet sends SIGTERM, then SIGKILL after the grace period.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	err := run(ctx, logger, *addr, 500*time.Millisecond, func(listenAddr string) {
		fmt.Println("probes on http://" + listenAddr + "/livez and /readyz")
		go report(ctx, "http://"+listenAddr)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "tree failed:", err)
		os.Exit(1) // the kubelet restarts the container
	}
}

// run serves the tree until ctx is done: the probe server, a database that
// takes dbWarmup to be ready, and a background job. listening is told the
// server's address before the tree starts.
func run(ctx context.Context, logger *slog.Logger, addr string, dbWarmup time.Duration, listening func(string)) error {
	// The whole shutdown stays within the pod's grace period
	// (terminationGracePeriodSeconds: 30 in deployment.yaml).
	root := arbor.New("app", arbor.WithLogger(logger), arbor.WithShutdownDeadline(25*time.Second))

	// Resolve a ":0" address to a free port once, so that restarts of the
	// server child listen where the probes point.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	listenAddr := ln.Addr().String()
	ln.Close()
	mux := http.NewServeMux()
	mux.Handle("/livez", arborhttp.ProbeHandler(root, arborhttp.Liveness))
	mux.Handle("/readyz", arborhttp.ProbeHandler(root, arborhttp.Readiness))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
	// The HTTP server is a child too, so the probes share its fate. It is
	// the first child: added after a readiness-gated child, it would start,
	// and answer the kubelet's probes, only once that child is ready.
	if err := root.Add("http", server(listenAddr, mux)); err != nil {
		return err
	}
	// The database: ready once connected; at most 5 s to get there.
	if err := root.Add("db", database(dbWarmup), arbor.WithReadiness(5*time.Second)); err != nil {
		return err
	}
	// A background job that must heartbeat every second. Its first copy
	// wedges after a second; it is cancelled as hung and restarted after a
	// one-second backoff. It is exempt from readiness: /readyz stays 200
	// meanwhile (?verbose shows it restarting), so the pod stays in its
	// Service.
	if err := root.Add("jobs", jobs(), arbor.WithHeartbeat(time.Second),
		arbor.WithBackoff(arbor.ConstantBackoff(time.Second)), arbor.WithReadinessExempt()); err != nil {
		return err
	}
	listening(listenAddr)
	return root.Serve(ctx)
}

// database pretends to connect for warmup, then signals readiness and
// serves.
func database(warmup time.Duration) arbor.Worker {
	return arbor.WorkerFunc(func(ctx context.Context) error {
		select {
		case <-time.After(warmup): // dial, migrate, warm caches
		case <-ctx.Done():
			return nil
		}
		arbor.Ready(ctx)
		<-ctx.Done()
		return nil
	})
}

// jobs returns a worker that heartbeats while it works; its first copy
// wedges after a second.
func jobs() arbor.Worker {
	copies := 0
	return arbor.WorkerFunc(func(ctx context.Context) error {
		copies++
		wedgeAt := time.After(time.Second)
		if copies > 1 {
			wedgeAt = nil
		}
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
				arbor.Heartbeat(ctx)
			case <-wedgeAt:
				<-ctx.Done() // stuck in a call that still honours ctx
				return context.Cause(ctx)
			}
		}
	})
}

// server serves handler on addr, and shuts down gracefully when ctx is done.
func server(addr string, handler http.Handler) arbor.Worker {
	return arbor.WorkerFunc(func(ctx context.Context) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
			defer cancel()
			err := srv.Shutdown(sctx)
			<-errc
			return err
		}
	})
}

// report probes the server as the kubelet would, and prints the answers.
func report(ctx context.Context, base string) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	for _, at := range []time.Duration{200 * time.Millisecond, 800 * time.Millisecond, 2 * time.Second} {
		select {
		case <-time.After(at):
		case <-ctx.Done():
			return
		}
		for _, p := range []string{"/livez", "/readyz?verbose"} {
			resp, err := client.Get(base + p)
			if err != nil { // the server starts once the database is ready
				fmt.Printf("GET %s -> no answer yet\n", p)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			fmt.Printf("GET %s -> %d\n%s\n", p, resp.StatusCode, body)
		}
	}
}
