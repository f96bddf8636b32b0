// Command httpserver runs an http.Server as a supervised Worker.
//
// The server worker listens (on 127.0.0.1 at a free port by default, or at
// -addr), serves until its context is cancelled and then shuts down
// gracefully with http.Server.Shutdown, letting in-flight requests finish. A
// handler that hits a fatal condition (here GET /crash) hands an error to the
// worker, which drains the server and returns that error: the supervisor
// restarts it, and it listens again (at a new port when the port is 0).
//
// A second worker, the client, makes a few requests, crashes the server once,
// checks that the restarted server answers, and then cancels the run, which
// shuts the tree down in reverse start order: client, then server.
//
//	go run ./examples/httpserver [-addr 127.0.0.1:8080]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/arborgo/arbor"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on (port 0: a free port, new at each restart)")
	timeout := flag.Duration("timeout", 5*time.Second, "stop after this long even if the client has not finished")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	// The supervisor's failure reports, plainly on stdout.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))

	ready := make(chan string, 1) // the server's address, each time it listens
	root := arbor.New("root", arbor.WithLogger(logger))
	must(root.Add("server", &server{addr: *addr, ready: ready}))
	must(root.Add("client", arbor.WorkerFunc(func(ctx context.Context) error {
		return client(ctx, ready, cancel)
	})))

	err := root.Serve(ctx)
	fmt.Println("root returned:", err)
	for _, c := range root.Children() {
		fmt.Printf("  %-6s %-7v restarts=%d last error=%v\n", c.Name, c.State, c.Restarts, c.LastError)
	}
	if err != nil {
		os.Exit(1)
	}
}

// server is a Worker that runs an http.Server.
type server struct {
	addr  string
	ready chan<- string
	runs  int // the supervisor never runs two copies at once
}

// errFatal is what the handler of /crash reports: a condition the server
// cannot recover from by itself.
var errFatal = errors.New("handler: fatal error, server state is corrupt")

func (s *server) Serve(ctx context.Context) error {
	s.runs++
	run := s.runs
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return err // a failure: the supervisor retries within its intensity
	}

	fatal := make(chan error, 1) // a handler's fatal error for this run
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from server run %d", run)
	})
	mux.HandleFunc("GET /crash", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "crashing", http.StatusInternalServerError)
		select {
		case fatal <- errFatal:
		default: // already crashing
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("server: run %d listening on %s\n", run, ln.Addr())
	select {
	case s.ready <- ln.Addr().String():
	case <-ctx.Done():
	}

	select {
	case err := <-served: // Serve failed by itself (it never returns nil)
		return err
	case err := <-fatal:
		fmt.Printf("server: run %d drains its requests and fails: %v\n", run, err)
		shutdown(srv, served)
		return err // a failure: the supervisor restarts the server
	case <-ctx.Done():
		fmt.Printf("server: run %d shutting down gracefully\n", run)
		shutdown(srv, served)
		fmt.Printf("server: run %d stopped\n", run)
		return nil
	}
}

// shutdown stops srv gracefully: no new connections, in-flight requests get
// up to 2 seconds to finish, then whatever is left is closed.
func shutdown(srv *http.Server, served <-chan error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
	}
	<-served // http.ErrServerClosed
}

// client makes requests to the server, crashes it once, checks that the
// restarted server answers, then ends the run by calling cancel.
func client(ctx context.Context, ready <-chan string, cancel context.CancelFunc) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	addr, err := next(ctx, ready)
	if err != nil {
		return err
	}
	for range 2 {
		if err := get(ctx, hc, addr, "/hello"); err != nil {
			return err
		}
	}
	// The answer to /crash races with the server's shutdown reports: print
	// the request before it is made.
	fmt.Println("client: GET /crash (its handler reports a fatal error)")
	if _, err := fetch(ctx, hc, addr, "/crash"); err != nil {
		return err
	}
	addr, err = next(ctx, ready) // the restarted server's address
	if err != nil {
		return err
	}
	if err := get(ctx, hc, addr, "/hello"); err != nil {
		return err
	}
	fmt.Println("client: done, cancelling the run")
	cancel()
	<-ctx.Done() // return once the supervisor stops us, so as not to be restarted
	return nil
}

// next waits for the server's next address.
func next(ctx context.Context, ready <-chan string) (string, error) {
	select {
	case addr := <-ready:
		return addr, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// get requests path and prints the answer.
func get(ctx context.Context, hc *http.Client, addr, path string) error {
	answer, err := fetch(ctx, hc, addr, path)
	if err != nil {
		return err
	}
	fmt.Printf("client: GET %s -> %s\n", path, answer)
	return nil
}

// fetch requests path and returns the status code and body.
func fetch(ctx context.Context, hc *http.Client, addr, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %q", resp.StatusCode, strings.TrimSpace(string(body))), nil
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
