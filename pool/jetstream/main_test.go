package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if workerDir != "" {
			_ = os.RemoveAll(workerDir)
		}
	}))
}

// natsServer is a NATS server with JetStream in the test process, which a
// test can restart on the same port and store.
type natsServer struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
}

// startServer starts a server on a random port, its store in a temporary
// directory, and stops it at the end of the test.
func startServer(t testing.TB) *natsServer {
	t.Helper()
	ns := &natsServer{t: t, opts: server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	}}
	ns.start()
	ns.opts.Port = ns.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(ns.stop)
	return ns
}

func (ns *natsServer) start() {
	ns.t.Helper()
	opts := ns.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		ns.t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		ns.t.Fatal("NATS server not ready")
	}
	ns.srv = srv
}

func (ns *natsServer) stop() {
	if ns.srv != nil {
		ns.srv.Shutdown()
		ns.srv.WaitForShutdown()
		ns.srv = nil
	}
}

// restart stops the server, calls during, and starts the server again on
// the same port and store.
func (ns *natsServer) restart(during func()) {
	ns.t.Helper()
	ns.stop()
	if during != nil {
		during()
	}
	ns.start()
}

func (ns *natsServer) url() string {
	return "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ns.opts.Port))
}

// connect connects to ns, reconnecting for ever, and closes the connection
// at the end of the test.
func connect(t testing.TB, ns *natsServer) (*nats.Conn, njs.JetStream) {
	t.Helper()
	nc, err := nats.Connect(ns.url(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // the outages are on purpose
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := njs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// setup is a stream, its consumer and a dead-letter stream.
type setup struct {
	storage  njs.StorageType
	ackWait  time.Duration
	maxDeliv int
}

const (
	streamName   = "TASKS"
	consumerName = "workers"
	deadStream   = "DEAD"
	deadSubject  = "dead.tasks"
)

// provision creates stream TASKS on tasks.>, its durable pull consumer
// "workers", and stream DEAD on dead.>.
func provision(t testing.TB, js njs.JetStream, s setup) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.ackWait == 0 {
		s.ackWait = 30 * time.Second
	}
	if s.maxDeliv == 0 {
		s.maxDeliv = -1
	}
	if _, err := js.CreateStream(ctx, njs.StreamConfig{Name: streamName, Subjects: []string{"tasks.>"}, Storage: s.storage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, njs.StreamConfig{Name: deadStream, Subjects: []string{"dead.>"}, Storage: s.storage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, streamName, njs.ConsumerConfig{
		Durable: consumerName, AckPolicy: njs.AckExplicitPolicy, AckWait: s.ackWait, MaxDeliver: s.maxDeliv,
	}); err != nil {
		t.Fatal(err)
	}
}

// consumerInfo returns the consumer's state.
func consumerInfo(t testing.TB, js njs.JetStream) *njs.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, streamName, consumerName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// eventually polls cond until it holds, failing the test after within.
// The multi-process tests wait for other processes and a server: there is
// no channel to wait on, so they poll a condition under a generous deadline.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The worker program of the multi-process tests, built once per test
// binary.
var (
	buildOnce sync.Once
	workerBin string
	workerDir string
	buildErr  error
)

func testWorker(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		workerDir, buildErr = os.MkdirTemp("", "arbor-testworker-")
		if buildErr != nil {
			return
		}
		workerBin = filepath.Join(workerDir, "testworker")
		out, err := exec.Command("go", "build", "-o", workerBin, "./internal/testworker").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./internal/testworker: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return workerBin
}

// A proc is a running worker process.
type proc struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan error
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// startWorker starts the worker program, with extra flags after the
// others; the test kills it at its end if it still runs, and shows its
// stderr if it failed.
func startWorker(t testing.TB, ns *natsServer, logPath string, workers int, extra ...string) *proc {
	t.Helper()
	args := append([]string{"-url", ns.url(), "-stream", streamName, "-consumer", consumerName,
		"-log", logPath, "-workers", strconv.Itoa(workers)}, extra...)
	cmd := exec.Command(testWorker(t), args...)
	p := &proc{cmd: cmd, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }() // ends when the process does
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("worker %d stderr:\n%s", cmd.Process.Pid, p.stderr.String())
		}
	})
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// wait waits for the process to exit, up to within.
func (p *proc) wait(t testing.TB, within time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(within):
		t.Fatalf("worker %d still runs after %v", p.pid(), within)
		return errors.New("unreachable")
	}
}
