package jetstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	njs "github.com/nats-io/nats.go/jetstream"

	"github.com/arborgo/arbor"
	"github.com/arborgo/arbor/pool"
	"github.com/arborgo/arbor/pool/jetstream"
)

// job is the tasks' type in the tests of this file.
type job struct {
	ID   string
	Fail int           // its first Fail attempts fail
	Work time.Duration // how long an attempt works
}

// newSource makes a source for job tasks and closes it at the end of the
// test.
func newSource(t testing.TB, js njs.JetStream, opts ...jetstream.Option) *jetstream.Source[job] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	src, err := jetstream.New[job](ctx, js, streamName, consumerName, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := src.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return src
}

func publish(t testing.TB, src *jetstream.Source[job], jobs ...job) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, j := range jobs {
		if _, err := src.Publish(ctx, "tasks."+j.ID, j); err != nil {
			t.Fatal(err)
		}
	}
}

// record keeps what the handler saw.
type record struct {
	mu       sync.Mutex
	attempts map[string]int
	done     map[string]int
	changed  chan struct{}
}

func newRecord() *record {
	return &record{attempts: map[string]int{}, done: map[string]int{}, changed: make(chan struct{}, 1)}
}

func (r *record) handler(ctx context.Context, j job) (string, error) {
	r.mu.Lock()
	r.attempts[j.ID]++
	n := r.attempts[j.ID]
	r.mu.Unlock()
	if j.Work > 0 {
		timer := time.NewTimer(j.Work)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return "", context.Cause(ctx)
		}
	}
	if n <= j.Fail {
		return "", fmt.Errorf("attempt %d of %s fails", n, j.ID)
	}
	r.mu.Lock()
	r.done[j.ID]++
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
	return j.ID, nil
}

// waitDone waits until every id succeeded at least once.
func (r *record) waitDone(t testing.TB, within time.Duration, ids ...string) {
	t.Helper()
	timeout := time.After(within)
	for {
		r.mu.Lock()
		missing := []string{}
		for _, id := range ids {
			if r.done[id] == 0 {
				missing = append(missing, id)
			}
		}
		r.mu.Unlock()
		if len(missing) == 0 {
			return
		}
		select {
		case <-r.changed:
		case <-timeout:
			t.Fatalf("after %v, not done: %v", within, missing)
		}
	}
}

// served is a tree being served: the source's watcher and a pool.
type served struct {
	root   *arbor.Supervisor
	pool   *pool.Pool[job, string]
	cancel context.CancelFunc
	err    chan error
}

func serveTree(t testing.TB, src *jetstream.Source[job], h pool.Handler[job, string], opts ...pool.Option) *served {
	t.Helper()
	p, err := pool.New("jobs", h, append(append(src.PoolOptions(), pool.WithWorkers(2), pool.WithLogger(nil),
		pool.WithRetryBackoff(arbor.ConstantBackoff(50*time.Millisecond))), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	root := arbor.New("app", arbor.WithLogger(nil))
	if err := root.Add("nats", src.Watcher()); err != nil {
		t.Fatal(err)
	}
	if err := root.Add("jobs", p); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sv := &served{root: root, pool: p, cancel: cancel, err: make(chan error, 1)}
	go func() { sv.err <- root.Serve(ctx) }()
	t.Cleanup(func() { _ = sv.stop() })
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := root.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	return sv
}

// stop shuts the tree down and returns what Serve returned.
func (sv *served) stop() error {
	sv.cancel()
	err := <-sv.err
	sv.err <- err
	return err
}

func ids(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// A task that succeeds is acked once; one that fails is retried with its
// delivery count as the attempt; one that fails every attempt, and one
// that cannot be decoded, are terminated and published to the dead-letter
// subject with their data and errors.
func TestAckRetryDeadLetter(t *testing.T) {
	ns := startServer(t)
	_, js := connect(t, ns)
	provision(t, js, setup{storage: njs.MemoryStorage})
	src := newSource(t, js, jetstream.WithDeadLetterSubject(deadSubject), jetstream.WithMaxAttempts(3))
	rec := newRecord()
	var mu sync.Mutex
	var started []string
	sv := serveTree(t, src, rec.handler, pool.WithEventHandler(func(e pool.Event) {
		if e.Kind == pool.EventStarted {
			mu.Lock()
			started = append(started, fmt.Sprintf("%s#%d", e.Task.(job).ID, e.Attempt))
			mu.Unlock()
		}
	}))
	publish(t, src, job{ID: "ok"}, job{ID: "flaky", Fail: 1}, job{ID: "bad", Fail: 99})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "tasks.garbled", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	rec.waitDone(t, 10*time.Second, "ok", "flaky")

	// Two dead letters.
	dc, err := js.OrderedConsumer(ctx, deadStream, njs.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	letters := map[string]jetstream.DeadLetter{}
	for len(letters) < 2 {
		m, err := dc.Next(njs.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("dead letters so far %v: %v", letters, err)
		}
		var dl jetstream.DeadLetter
		if err := json.Unmarshal(m.Data(), &dl); err != nil {
			t.Fatal(err)
		}
		letters[dl.Subject] = dl
	}
	bad := letters["tasks.bad"]
	if bad.Deliveries != 3 || bad.Stream != streamName || bad.Consumer != consumerName || len(bad.Errors) != 1 ||
		!strings.Contains(bad.Errors[0], "attempt 3 of bad fails") || !strings.Contains(string(bad.Data), `"ID":"bad"`) {
		t.Fatalf("dead letter of bad: %+v", bad)
	}
	garbled := letters["tasks.garbled"]
	if garbled.Deliveries != 1 || string(garbled.Data) != "{not json" || len(garbled.Errors) != 1 ||
		!strings.Contains(garbled.Errors[0], "decode") {
		t.Fatalf("dead letter of garbled: %+v", garbled)
	}
	eventually(t, 10*time.Second, "consumer still holds messages", func() bool {
		info := consumerInfo(t, js)
		return info.NumAckPending == 0 && info.NumPending == 0
	})
	if err := sv.stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]bool{"ok#1": true, "flaky#1": true, "flaky#2": true, "bad#1": true, "bad#2": true, "bad#3": true}
	if len(started) != len(want) {
		t.Fatalf("attempts started: %v", started)
	}
	for _, s := range started {
		if !want[s] {
			t.Fatalf("attempts started: %v", started)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.done["ok"] != 1 || rec.done["flaky"] != 1 || rec.done["bad"] != 0 {
		t.Fatalf("done %v", rec.done)
	}
}

// An attempt longer than AckWait keeps its message: the pool extends the
// lease (InProgress) at the period the source recommends, and the server
// does not deliver it again meanwhile.
func TestLongAttemptExtended(t *testing.T) {
	ns := startServer(t)
	_, js := connect(t, ns)
	provision(t, js, setup{storage: njs.MemoryStorage, ackWait: time.Second})
	src := newSource(t, js)
	if got := src.LeaseExtension(); got != time.Second/3 {
		t.Fatalf("LeaseExtension %v", got)
	}
	rec := newRecord()
	sv := serveTree(t, src, rec.handler)
	publish(t, src, job{ID: "long", Work: 2500 * time.Millisecond})
	rec.waitDone(t, 10*time.Second, "long")
	if err := sv.stop(); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.attempts["long"] != 1 {
		t.Fatalf("%d attempts of a long task", rec.attempts["long"])
	}
	if info := consumerInfo(t, js); info.NumRedelivered != 0 || info.NumAckPending != 0 {
		t.Fatalf("consumer %+v", info)
	}
}

// A delivery beyond the attempts (its earlier attempts never settled, as
// in a process killed each time) is dead-lettered without running.
func TestTooManyDeliveries(t *testing.T) {
	ns := startServer(t)
	_, js := connect(t, ns)
	provision(t, js, setup{storage: njs.MemoryStorage})
	src := newSource(t, js, jetstream.WithMaxAttempts(2), jetstream.WithDeadLetterSubject(deadSubject))
	publish(t, src, job{ID: "poison"})
	// Two deliveries that never settle: fetched and given back unrun.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, streamName, consumerName)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		m, err := c.Next(njs.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Nak(); err != nil {
			t.Fatal(err)
		}
	}
	rec := newRecord()
	var mu sync.Mutex
	var deadErr *pool.DeadLetterError
	deadLettered := make(chan struct{})
	sv := serveTree(t, src, rec.handler, pool.WithDeadLetter(func(_ job, err *pool.DeadLetterError) {
		mu.Lock()
		deadErr = err
		mu.Unlock()
		close(deadLettered)
	}))
	select {
	case <-deadLettered:
	case <-time.After(10 * time.Second):
		t.Fatal("not dead-lettered")
	}
	if err := sv.stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if deadErr.Attempt != 3 || !strings.Contains(deadErr.Error(), "an earlier attempt never settled") {
		t.Fatalf("dead letter %v (attempt %d)", deadErr, deadErr.Attempt)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.attempts["poison"] != 0 {
		t.Fatal("the poison task ran")
	}
}

// A Lease whose context ends leaves its pull request at the server; the
// message that answers it goes back at once, and the next Lease has it
// long before AckWait.
func TestCancelledLeaseGivesBack(t *testing.T) {
	ns := startServer(t)
	_, js := connect(t, ns)
	provision(t, js, setup{storage: njs.MemoryStorage, ackWait: time.Minute})
	src := newSource(t, js)
	ctx, cancel := context.WithCancel(context.Background())
	leased := make(chan error, 1)
	go func() {
		_, err := src.Lease(ctx)
		leased <- err
	}()
	// Wait until its pull request waits at the server.
	eventually(t, 10*time.Second, "no pull request waits", func() bool { return consumerInfo(t, js).NumWaiting == 1 })
	cancel()
	if err := <-leased; !errors.Is(err, context.Canceled) {
		t.Fatalf("Lease returned %v", err)
	}
	publish(t, src, job{ID: "x"})
	start := time.Now()
	eventually(t, 10*time.Second, "not delivered", func() bool { return consumerInfo(t, js).Delivered.Consumer == 1 })
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	l, err := src.Lease(ctx2)
	if err != nil {
		t.Fatal(err)
	}
	if task, err := l.Task(); err != nil || task.ID != "x" {
		t.Fatalf("task %v, %v", task, err)
	}
	// The delivery reached the source after the first Lease left: it was
	// given back (a second delivery), unless the second Lease was already
	// waiting for it.
	if a := l.Attempt(); a != 1 && a != 2 {
		t.Fatalf("attempt %d", a)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("leased after %v", d)
	}
	if err := l.Ack(ctx2); err != nil {
		t.Fatal(err)
	}
}

// Pull requests that expire at the server (here every 100 milliseconds)
// are replaced: a Lease that waited through many of them, and the next
// one, get a message as soon as it is published.
func TestPullExpiry(t *testing.T) {
	ns := startServer(t)
	_, js := connect(t, ns)
	provision(t, js, setup{storage: njs.MemoryStorage})
	src := newSource(t, js, jetstream.WithPullExpiry(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // ten expiries
	defer cancel()
	if _, err := src.Lease(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lease on an empty stream: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	leased := make(chan pool.Lease[job], 1)
	go func() {
		l, err := src.Lease(ctx2)
		if err != nil {
			t.Error(err)
		}
		leased <- l
	}()
	// Let its pull request expire a few times too.
	eventually(t, 10*time.Second, "no pull request waits", func() bool { return consumerInfo(t, js).NumWaiting == 1 })
	time.Sleep(300 * time.Millisecond) // real time for requests to expire: what is tested
	publish(t, src, job{ID: "x"})
	start := time.Now()
	select {
	case l := <-leased:
		if d := time.Since(start); d > time.Second {
			t.Fatalf("leased %v after the publish", d)
		}
		if err := l.Ack(ctx2); err != nil {
			t.Fatal(err)
		}
	case <-ctx2.Done():
		t.Fatal("not leased")
	}
}
