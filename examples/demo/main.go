// Command demo runs a realistic supervision tree with injected faults: an
// ingestion pipeline under RestForOne, a pool of workers, a cache that must
// send heartbeats, and an HTTP server that serves the live web view of the
// tree (arborhttp.ViewHandler) and the Kubernetes probes. Workers fail, panic
// and hang at random; the tree absorbs it. Each change prints the event and
// the tree as text. It runs until interrupted, or for -duration.
//
//	go run ./examples/demo                  # then open http://127.0.0.1:8080/
//	go run ./examples/demo -duration 5s -addr 127.0.0.1:0
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/arborgo/arbor"
	"github.com/arborgo/arbor/arborhttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address of the live view and probes")
	duration := flag.Duration("duration", 0, "stop after this long (0: until Ctrl-C)")
	seed := flag.Uint64("seed", 1, "seed of the fault injector")
	quiet := flag.Bool("quiet", false, "print only the final tree")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	faults := &injector{rng: rand.New(rand.NewPCG(*seed, *seed))}

	var root *arbor.Supervisor
	var printMu sync.Mutex
	onEvent := func(e arbor.Event) {
		if *quiet {
			return
		}
		switch e.Kind {
		case arbor.EventChildStarted, arbor.EventChildReady, arbor.EventChildStopped:
			return // routine; the tree shows them
		}
		tctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		printMu.Lock()
		defer printMu.Unlock()
		fmt.Printf("\n%s  %v\n%s", e.Time.Format("15:04:05.000"), e, root.Tree(tctx))
	}
	root = arbor.New("demo",
		arbor.WithIntensity(20, 10*time.Second),
		arbor.WithLogger(nil), // the event handler prints instead
		arbor.WithEventHandler(onEvent))

	// The ingestion pipeline: reader → parser → writer. A parser restart
	// also restarts the writer (RestForOne); failures back off.
	ingest := arbor.New("ingest",
		arbor.WithStrategy(arbor.RestForOne),
		arbor.WithIntensity(10, 10*time.Second),
		arbor.WithBackoff(arbor.ExponentialBackoff{Initial: 200 * time.Millisecond, Max: 3 * time.Second, Multiplier: 2, Jitter: 0.2}))
	must(ingest.Add("reader", faults.worker("reader", 0.02, 0)))
	must(ingest.Add("parser", faults.worker("parser", 0.05, 0.02)))
	must(ingest.Add("writer", faults.worker("writer", 0.02, 0)))
	must(root.Add("ingest", ingest))

	// A pool of identical workers; one of them panics now and then.
	pool := arbor.New("pool", arbor.WithIntensity(10, 10*time.Second))
	for i := range 4 {
		name := fmt.Sprintf("worker-%d", i+1)
		must(pool.Add(name, faults.worker(name, 0.01, 0.01)))
	}
	must(root.Add("pool", pool))

	// A cache that must heartbeat every 500 ms; now and then it wedges
	// and the watchdog restarts it.
	must(root.Add("cache", faults.beater(), arbor.WithHeartbeat(500*time.Millisecond),
		arbor.WithBackoff(arbor.ConstantBackoff(time.Second))))

	// The HTTP server with the live view and the probes.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.Handle("/", arborhttp.ViewHandler(root))
	mux.Handle("/livez", arborhttp.ProbeHandler(root, arborhttp.Liveness))
	mux.Handle("/readyz", arborhttp.ProbeHandler(root, arborhttp.Readiness))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	must(root.Add("http", arbor.WorkerFunc(func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		arbor.Ready(ctx)
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
	}), arbor.WithRestart(arbor.Temporary)))

	fmt.Printf("live view on http://%s/ (probes: /livez, /readyz)\n", ln.Addr())
	err = root.Serve(ctx)
	fmt.Printf("\nfinal tree:\n%s", root.Tree(context.Background()))
	fmt.Printf("faults injected: %s\n", faults)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tree failed:", err)
		os.Exit(1)
	}
}

// injector makes workers fail, panic and hang at random.
type injector struct {
	mu                      sync.Mutex
	rng                     *rand.Rand
	failures, panics, hangs int
}

func (f *injector) roll() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.Float64()
}

func (f *injector) count(p *int) {
	f.mu.Lock()
	*p++
	f.mu.Unlock()
}

func (f *injector) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("%d failures, %d panics, %d hangs", f.failures, f.panics, f.hangs)
}

// worker ticks every 100 ms and, at each tick, fails with probability
// pFail or panics with probability pPanic.
func (f *injector) worker(name string, pFail, pPanic float64) arbor.Worker {
	return arbor.WorkerFunc(func(ctx context.Context) error {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				switch r := f.roll(); {
				case r < pPanic:
					f.count(&f.panics)
					panic(name + ": index out of range")
				case r < pPanic+pFail:
					f.count(&f.failures)
					return errors.New(name + ": connection reset")
				}
			}
		}
	})
}

// beater heartbeats every 100 ms and, now and then, wedges until cancelled.
func (f *injector) beater() arbor.Worker {
	return arbor.WorkerFunc(func(ctx context.Context) error {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				if f.roll() < 0.01 {
					f.count(&f.hangs)
					<-ctx.Done() // wedged, but still honours cancellation
					return context.Cause(ctx)
				}
				arbor.Heartbeat(ctx)
			}
		}
	})
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
