// Command quickstart runs a small supervision tree whose workers fail and are
// restarted, prints what happens, and exits by itself after a few seconds (or
// on Ctrl-C).
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/arborgo/arbor"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()

	// Failures are logged through slog; print them plainly on stdout.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "panic_stack" {
				return slog.Attr{}
			}
			return a
		},
	}))

	// db: a connection that drops every 700ms, and a cache that depends on
	// it. RestForOne restarts the cache whenever the connection restarts.
	db := arbor.New("db", arbor.WithStrategy(arbor.RestForOne), arbor.WithLogger(logger))
	must(db.Add("conn", worker("db/conn", 700*time.Millisecond, errors.New("connection reset"))))
	must(db.Add("cache", worker("db/cache", 0, nil)))

	// root: the db subtree, and an HTTP poller that panics now and then.
	root := arbor.New("root", arbor.WithIntensity(5, 10*time.Second), arbor.WithLogger(logger))
	must(root.Add("db", db))
	must(root.Add("poller", worker("poller", time.Second, nil)))

	fmt.Println("serving for 3 seconds; Ctrl-C stops earlier")
	err := root.Serve(ctx)
	fmt.Println("root returned:", err)
	for _, c := range root.Children() {
		fmt.Printf("  %-7s %-8v restarts=%d last error=%v\n", c.Name, c.State, c.Restarts, c.LastError)
	}
	for _, c := range db.Children() {
		fmt.Printf("  db/%-4s %-8v restarts=%d last error=%v\n", c.Name, c.State, c.Restarts, c.LastError)
	}
	if err != nil {
		os.Exit(1) // let systemd or Kubernetes restart the process
	}
}

// worker returns a worker that prints when it starts and stops, and after
// every period (if not zero) fails with err, or panics if err is nil.
func worker(name string, every time.Duration, err error) arbor.Worker {
	return arbor.WorkerFunc(func(ctx context.Context) error {
		fmt.Println(name, "started")
		var fail <-chan time.Time
		if every > 0 {
			t := time.NewTimer(every)
			defer t.Stop()
			fail = t.C
		}
		select {
		case <-ctx.Done():
			fmt.Println(name, "stopped")
			return nil
		case <-fail:
			if err == nil {
				panic(name + ": unexpected response")
			}
			return err
		}
	})
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
