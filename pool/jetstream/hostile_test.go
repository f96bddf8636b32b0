package jetstream_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"

	"github.com/arborgo/arbor"
	"github.com/arborgo/arbor/pool"
	"github.com/arborgo/arbor/pool/jetstream"
)

// Hostile tests: attacks on the guarantees of the package doc.

// countDead returns the number of messages in the dead-letter stream.
func countDead(t testing.TB, js njs.JetStream) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, deadStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// servePool serves a pool (no tree) and returns a channel with what Serve
// returned; the pool is stopped at the end of the test.
func runPoolT[T any](t testing.TB, p *pool.Pool[T, string]) (context.CancelFunc, chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			served <- err
		case <-time.After(10 * time.Second):
			t.Error("pool still serves")
		}
	})
	return cancel, served
}

// A pool stops (its parent restarts it, or it autoscaled down): each of
// its workers leaves a pull request at the server, alive for the pull
// expiry (10 s). A task published meanwhile is delivered to one of them,
// held half a second, nakked, delivered to the next stale request, ... each
// time counting a delivery. The doc promises at most one extra delivery
// per task ("a shutdown may add one to the NumDelivered of at most one task
// per worker"), and that the next Lease has it "long before AckWait"; the
// pool then dead-letters the task without running it (its attempt number
// is past WithMaxAttempts), or the consumer's MaxDeliver drops it.
func TestHostileStaleRequestsBurnDeliveries(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	_, js := connect(t, ns)
	provision(t, js, setup{storage: njs.MemoryStorage, ackWait: time.Minute})
	src := newSource(t, js, jetstream.WithMaxAttempts(3))
	rec := newRecord()
	sv := serveTree(t, src, rec.handler, pool.WithWorkers(8))
	eventually(t, 10*time.Second, "8 pull requests", func() bool { return consumerInfo(t, js).NumWaiting == 8 })
	if err := sv.stop(); err != nil {
		t.Fatal(err)
	}
	publish(t, src, job{ID: "x"})
	time.Sleep(3 * time.Second) // the pool is restarted a moment later
	info := consumerInfo(t, js)
	t.Logf("before the restart: delivered %d times, redelivered %d", info.Delivered.Consumer, info.NumRedelivered)

	var mu sync.Mutex
	var dead []*pool.DeadLetterError
	serveTree(t, src, rec.handler, pool.WithWorkers(2), pool.WithDeadLetter(func(_ job, err *pool.DeadLetterError) {
		mu.Lock()
		dead = append(dead, err)
		mu.Unlock()
	}))
	eventually(t, 10*time.Second, "task neither done nor dead-lettered", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		mu.Lock()
		defer mu.Unlock()
		return rec.done["x"] > 0 || len(dead) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(dead) > 0 || rec.attempts["x"] == 0 {
		t.Fatalf("a task that never ran (attempts %d) was dead-lettered: %v", rec.attempts["x"], dead[0])
	}
}

// A task whose message has an empty body and a "Status" header (any outside
// publisher may set headers) is taken for the server's status reply to a
// pull request: it is never leased, never dead-lettered (an empty body does
// not decode: Task's error must dead-letter it at once), and is redelivered
// every AckWait for ever. With "409"/"Consumer Deleted" it fails every
// waiting worker, and so the pool.
func TestHostileStatusHeaderInTask(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		hdr  map[string]string
	}{
		{"408", map[string]string{"Status": "408"}},
		{"409 consumer deleted", map[string]string{"Status": "409", "Description": "Consumer Deleted"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ns := startServer(t)
			_, js := connect(t, ns)
			provision(t, js, setup{storage: njs.MemoryStorage, ackWait: time.Second})
			src := newSource(t, js, jetstream.WithMaxAttempts(2), jetstream.WithDeadLetterSubject(deadSubject))
			var sourceErrs atomic.Int64
			var lastErr atomic.Value
			rec := newRecord()
			p, err := pool.New("jobs", rec.handler, append(src.PoolOptions(), pool.WithWorkers(2), pool.WithLogger(nil),
				pool.WithSupervisor(arbor.WithLogger(nil)), pool.WithEventHandler(func(e pool.Event) {
					if e.Kind == pool.EventSourceError {
						sourceErrs.Add(1)
						lastErr.Store(e.Err.Error())
					}
				}))...)
			if err != nil {
				t.Fatal(err)
			}
			_, served := runPoolT(t, p)
			eventually(t, 10*time.Second, "workers do not wait", func() bool { return consumerInfo(t, js).NumWaiting == 2 })
			m := nats.NewMsg("tasks.hdr")
			for k, v := range c.hdr {
				m.Header.Set(k, v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := js.PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
			deadline := time.After(4 * time.Second)
			for countDead(t, js) == 0 {
				select {
				case err := <-served:
					served <- err // for the cleanup
					t.Fatalf("one published message made the pool fail: %v", err)
				case <-deadline:
					info := consumerInfo(t, js)
					le, _ := lastErr.Load().(string)
					t.Fatalf("undecodable task not dead-lettered after 4 s: delivered %d, redelivered %d, ack pending %d; %d source errors (last: %s)",
						info.Delivered.Consumer, info.NumRedelivered, info.NumAckPending, sourceErrs.Load(), le)
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
}

// blob is a task whose encoding is large.
type blob struct {
	ID  string
	Pad string
}

// A task that fails for good and whose encoding is large, yet well within
// the server's max payload (800 KB of 1 MB): its dead letter (the body in
// base64 in JSON) exceeds the max payload, the publish fails, the message
// is not terminated, and it loops for ever: delivered every AckWait,
// dead-lettered without running, failing again. It is never dead-lettered
// nor acked.
func TestHostileHugeTaskCannotBeDeadLettered(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	_, js := connect(t, ns)
	provision(t, js, setup{storage: njs.MemoryStorage, ackWait: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	src, err := jetstream.New[blob](ctx, js, streamName, consumerName, jetstream.WithMaxAttempts(1),
		jetstream.WithDeadLetterSubject(deadSubject))
	if err != nil {
		t.Fatal(err)
	}
	var sourceErrs atomic.Int64
	var lastErr atomic.Value
	p, err := pool.New("big", func(context.Context, blob) (string, error) { return "", errors.New("fails") },
		append(src.PoolOptions(), pool.WithWorkers(1), pool.WithLogger(nil), pool.WithEventHandler(func(e pool.Event) {
			if e.Kind == pool.EventSourceError {
				sourceErrs.Add(1)
				lastErr.Store(e.Err.Error())
			}
		}))...)
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := runPoolT(t, p)
	t.Cleanup(func() {
		stop()
		_ = src.Close(context.Background())
	})
	if _, err := src.Publish(ctx, "tasks.big", blob{ID: "big", Pad: strings.Repeat("a", 800_000)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(4 * time.Second)
	for countDead(t, js) == 0 {
		if time.Now().After(deadline) {
			info := consumerInfo(t, js)
			le, _ := lastErr.Load().(string)
			if len(le) > 300 {
				le = le[:300]
			}
			t.Fatalf("large failed task not dead-lettered: delivered %d times, ack pending %d; %d source errors (last: %s)",
				info.Delivered.Consumer, info.NumAckPending, sourceErrs.Load(), le)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// MaxDeliver equal to the attempts, which New accepts ("at least that"):
// the last attempt fails, and the dead letter's publish fails (the
// dead-letter stream is full). DeadLetter's doc: "If the publish fails the
// message is not terminated: it is delivered again after AckWait, and
// dead-lettered again then". But the server delivers it no more
// (MaxDeliver): once the dead-letter stream has room again, the task is
// still never dead-lettered: it is lost.
func TestHostileDeadLetterFailsAtMaxDeliver(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	_, js := connect(t, ns)
	provision(t, js, setup{storage: njs.MemoryStorage, ackWait: time.Second, maxDeliv: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Fixed: with a dead-letter subject, New refuses a finite MaxDeliver,
	// whose last delivery would lose a dead letter that failed.
	if _, err := jetstream.New[job](ctx, js, streamName, consumerName, jetstream.WithMaxAttempts(2),
		jetstream.WithDeadLetterSubject(deadSubject)); !errors.Is(err, arbor.ErrInvalid) || !strings.Contains(err.Error(), "MaxDeliver") {
		t.Fatalf("New with MaxDeliver 2 and a dead-letter subject: %v", err)
	}
	if _, err := js.UpdateConsumer(ctx, streamName, njs.ConsumerConfig{Durable: consumerName, AckPolicy: njs.AckExplicitPolicy,
		AckWait: time.Second, MaxDeliver: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.UpdateStream(ctx, njs.StreamConfig{Name: deadStream, Subjects: []string{"dead.>"}, Storage: njs.MemoryStorage,
		MaxMsgs: 1, Discard: njs.DiscardNew}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "dead.filler", []byte("x")); err != nil {
		t.Fatal(err)
	}
	src := newSource(t, js, jetstream.WithMaxAttempts(2), jetstream.WithDeadLetterSubject(deadSubject))
	var deadFailed atomic.Int64
	rec := newRecord()
	serveTree(t, src, rec.handler, pool.WithEventHandler(func(e pool.Event) {
		if e.Kind == pool.EventSourceError && strings.Contains(e.Err.Error(), "dead-letter") {
			deadFailed.Add(1)
		}
	}))
	publish(t, src, job{ID: "d", Fail: 99})
	eventually(t, 10*time.Second, "the dead letter's publish did not fail", func() bool { return deadFailed.Load() > 0 })
	// Room again in the dead-letter stream.
	if err := func() error {
		st, err := js.Stream(ctx, deadStream)
		if err != nil {
			return err
		}
		return st.Purge(ctx)
	}(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(4 * time.Second) // four AckWaits
	for countDead(t, js) == 0 {
		if time.Now().After(deadline) {
			info := consumerInfo(t, js)
			rec.mu.Lock()
			n := rec.attempts["d"]
			rec.mu.Unlock()
			t.Fatalf("task lost: %d attempts, delivered %d, ack pending %d, pending %d, no dead letter",
				n, info.Delivered.Consumer, info.NumAckPending, info.NumPending)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WithPullExpiry(math.MaxInt64), the usual "for ever": expiry + the stale
// grace overflows, the stale timer fires at once, and the source drops and
// re-sends its pull request in a loop.
func TestHostilePullExpiryForever(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	nc, js := connect(t, ns)
	provision(t, js, setup{storage: njs.MemoryStorage})
	if _, err := jetstream.New[job](context.Background(), js, streamName, consumerName,
		jetstream.WithPullExpiry(math.MaxInt64)); !errors.Is(err, arbor.ErrInvalid) {
		t.Fatalf("New with a pull expiry of MaxInt64: %v, want ErrInvalid", err)
	}
	src := newSource(t, js, jetstream.WithPullExpiry(time.Hour))
	before := nc.Stats().OutMsgs
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := src.Lease(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lease: %v", err)
	}
	if n := nc.Stats().OutMsgs - before; n > 10 {
		t.Fatalf("one Lease waiting one second sent %d messages (pull requests)", n)
	}
}

// fakeJS is a JetStream whose connection is nil.
type fakeJS struct{ njs.JetStream }

func (fakeJS) Conn() *nats.Conn { return nil }

// panicky is a codec that panics.
type panicky struct{}

func (panicky) Encode(job) ([]byte, error) { panic("encode") }
func (panicky) Decode([]byte) (job, error) { panic("decode") }

// Bad inputs: errors, never panics; a codec's panic is an error (Publish),
// or a Task error (which dead-letters the message); Close races Lease and
// itself.
func TestHostileInputs(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	nc, js := connect(t, ns)
	provision(t, js, setup{storage: njs.MemoryStorage})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := jetstream.New[job](ctx, fakeJS{}, streamName, consumerName); !errors.Is(err, arbor.ErrInvalid) {
		t.Errorf("New with a nil connection: %v", err)
	}
	for name, o := range map[string]jetstream.Option{
		"nil option": nil, "pull expiry 0": jetstream.WithPullExpiry(0), "timeout -1": jetstream.WithTimeout(-1),
		"attempts 0": jetstream.WithMaxAttempts(0), "nil codec": jetstream.WithCodec[job](nil),
		"dead subject with space": jetstream.WithDeadLetterSubject("dead. x"),
	} {
		if _, err := jetstream.New[job](ctx, js, streamName, consumerName, o); !errors.Is(err, arbor.ErrInvalid) {
			t.Errorf("New with %s: %v", name, err)
		}
	}

	src := newSource(t, js, jetstream.WithCodec[job](panicky{}))
	if _, err := src.Publish(ctx, "tasks.p", job{ID: "p"}); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Errorf("Publish with a panicking codec: %v", err)
	}
	if _, err := js.Publish(ctx, "tasks.p", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	l, err := src.Lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Task(); err == nil {
		t.Error("Task with a panicking codec: no error")
	}
	if err := l.DeadLetter(ctx, nil); err != nil {
		t.Errorf("DeadLetter(nil): %v", err)
	}

	// Huge task: an error, not a panic.
	src2 := newSource(t, js)
	if _, err := src2.Publish(ctx, "tasks.huge", job{ID: strings.Repeat("x", 2<<20)}); err == nil {
		t.Error("Publish of a task over the max payload: no error")
	}

	// Many Leases, Close twice at once: every Lease ends with ErrClosed.
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			_, err := src2.Lease(ctx)
			errs <- err
		})
	}
	time.Sleep(200 * time.Millisecond)
	var cwg sync.WaitGroup
	for range 2 {
		cwg.Go(func() {
			if err := src2.Close(ctx); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	cwg.Wait()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, jetstream.ErrClosed) {
			t.Errorf("Lease during Close: %v", err)
		}
	}
	if _, err := src2.Lease(ctx); !errors.Is(err, jetstream.ErrClosed) {
		t.Errorf("Lease after Close: %v", err)
	}

	// A closed connection.
	nc.Close()
	if _, err := jetstream.New[job](ctx, js, streamName, consumerName); err == nil {
		t.Error("New on a closed connection: no error")
	}
}

// The server restarts (file storage) for longer than AckWait while an
// extended attempt runs: its InProgress messages wait in the client's
// buffer. Does the server deliver the task again, to another worker of the
// same process, while its first attempt still runs?
func TestHostileOutageLongerThanAckWait(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	_, js := connect(t, ns)
	provision(t, js, setup{storage: njs.FileStorage, ackWait: time.Second})
	src := newSource(t, js)
	var mu sync.Mutex
	running, most, runs := 0, 0, 0
	started := make(chan struct{}, 10)
	h := func(ctx context.Context, j job) (string, error) {
		mu.Lock()
		running++
		runs++
		most = max(most, running)
		mu.Unlock()
		started <- struct{}{}
		defer func() {
			mu.Lock()
			running--
			mu.Unlock()
		}()
		select {
		case <-time.After(j.Work):
			return j.ID, nil
		case <-ctx.Done():
			return "", context.Cause(ctx)
		}
	}
	sv := serveTree(t, src, h, pool.WithWorkers(4))
	publish(t, src, job{ID: "long", Work: 6 * time.Second})
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("not started")
	}
	ns.restart(func() { time.Sleep(2500 * time.Millisecond) })
	eventually(t, 15*time.Second, "the task still runs", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return running == 0
	})
	eventually(t, 10*time.Second, "the consumer still holds messages", func() bool {
		info := consumerInfo(t, js)
		return info.NumAckPending == 0 && info.NumPending == 0
	})
	if err := sv.stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if most > 1 {
		t.Fatalf("two attempts of one task ran at once in one process (%d runs)", runs)
	}
	if runs != 1 {
		t.Logf("%d runs (one after the other)", runs)
	}
}
