package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lockedBuffer is the programs' output, safe for concurrent use; changed
// is signalled at each write.
type lockedBuffer struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{}
}

func newBuffer() *lockedBuffer { return &lockedBuffer{changed: make(chan struct{}, 1)} }

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The example's modes together: a worker process's run works every job a
// submit published, the one that fails once included.
func TestWorkAndSubmit(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	url := "nats://" + srv.Addr().(*net.TCPAddr).String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newBuffer()
	worked := make(chan error, 1)
	go func() { worked <- run(ctx, out, "work", url, false, "", "127.0.0.1:0", 3, 0, 0) }()
	sub := newBuffer()
	if err := run(ctx, sub, "submit", url, false, "", "", 0, 6, 20); err != nil {
		t.Fatal(err)
	}
	var first, last int
	if _, err := fmt.Sscanf(sub.String(), "published 6 jobs, %d to %d", &first, &last); err != nil {
		t.Fatalf("submit printed %q: %v", sub.String(), err)
	}
	timeout := time.After(30 * time.Second)
	for id := first; id <= last; id++ {
		for !strings.Contains(out.String(), fmt.Sprintf("job %d (%s): done", id, names[(id-first)%len(names)])) {
			select {
			case <-out.changed:
			case <-timeout:
				t.Fatalf("job %d not done:\n%s", id, out.String())
			}
		}
	}
	if !strings.Contains(out.String(), fmt.Sprintf("job %d (%s): retry in 1s", first+4, names[4])) {
		t.Fatalf("no retry:\n%s", out.String())
	}
	cancel()
	if err := <-worked; err != nil {
		t.Fatal(err)
	}
}
