// Command systemd runs a supervision tree as a systemd service with
// Type=notify and WatchdogSec= (see arbor-example.service): the root
// supervisor, created WithSystemd, sends READY=1 once every child is ready,
// WATCHDOG=1 every half WatchdogSec while the tree is live, and STOPPING=1
// when it shuts down. A stuck child stops the pings, so systemd restarts the
// service; a failure the tree cannot absorb makes the process exit non-zero,
// and Restart=on-failure restarts it too.
//
// Without systemd, -listen plays its part: it opens a notify socket, points
// $NOTIFY_SOCKET and $WATCHDOG_USEC at it, and prints what arrives.
//
//	go run ./examples/systemd -listen -duration 3s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/arborgo/arbor"
)

func main() {
	listen := flag.Bool("listen", false, "play systemd: listen on a notify socket and print the notifications")
	duration := flag.Duration("duration", 0, "stop after this long (0: until SIGTERM or Ctrl-C)")
	flag.Parse()

	if *listen {
		stopListening := fakeSystemd(time.Second)
		defer stopListening()
	}

	// systemd stops a service with SIGTERM.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	root := arbor.New("service", arbor.WithSystemd(), arbor.WithLogger(nil))
	must(root.Add("db", arbor.WorkerFunc(func(ctx context.Context) error {
		time.Sleep(300 * time.Millisecond) // connect
		fmt.Println("db: connected")
		arbor.Ready(ctx)
		<-ctx.Done()
		return nil
	}), arbor.WithReadiness(10*time.Second)))
	must(root.Add("worker", arbor.WorkerFunc(func(ctx context.Context) error {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				arbor.Heartbeat(ctx)
			}
		}
	}), arbor.WithHeartbeat(time.Second)))

	if err := root.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "tree failed:", err)
		os.Exit(1) // Restart=on-failure
	}
	fmt.Println("stopped cleanly")
}

// fakeSystemd listens on a notify socket as systemd would, with a watchdog
// of WatchdogSec=watchdog, and prints each notification. It returns a
// function that waits for the last one and closes the socket.
func fakeSystemd(watchdog time.Duration) func() {
	dir, err := os.MkdirTemp("", "arbor-notify")
	if err != nil {
		panic(err)
	}
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		panic(err)
	}
	os.Setenv("NOTIFY_SOCKET", path)
	os.Setenv("WATCHDOG_USEC", strconv.FormatInt(watchdog.Microseconds(), 10))
	os.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msg := string(buf[:n])
			fmt.Printf("systemd: %-10s at %v\n", msg, time.Since(start).Round(100*time.Millisecond))
			if msg == "STOPPING=1" {
				return
			}
		}
	}()
	return func() {
		select {
		case <-done:
		case <-time.After(time.Second):
		}
		conn.Close()
		<-done
		os.RemoveAll(dir)
	}
}

func must(err error) {
	if err != nil {
		panic(errors.Join(errors.New("setting up the tree"), err))
	}
}
