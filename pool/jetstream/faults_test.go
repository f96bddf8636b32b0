package jetstream_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"

	"github.com/arborgo/arbor"
	"github.com/arborgo/arbor/pool"
	"github.com/arborgo/arbor/pool/jetstream"
)

// The NATS server restarts (same port, same store) while a pool works: the
// tree is not ready during the outage (the watcher's child), the pool's
// workers do not fail, and every task is done, none lost.
func TestServerRestart(t *testing.T) {
	ns := startServer(t)
	_, js := connect(t, ns)
	provision(t, js, setup{storage: njs.FileStorage, ackWait: 2 * time.Second})
	src := newSource(t, js)
	rec := newRecord()
	sv := serveTree(t, src, rec.handler)
	all := ids("r", 40)
	var jobs []job
	for _, id := range all {
		jobs = append(jobs, job{ID: id, Work: 20 * time.Millisecond})
	}
	publish(t, src, jobs...)
	rec.waitDone(t, 10*time.Second, all[:5]...)

	ready := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return sv.root.Health(ctx).Ready
	}
	ns.restart(func() {
		eventually(t, 10*time.Second, "the tree stayed ready while NATS was down", func() bool { return !ready() })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h := sv.root.Health(ctx)
		found := false
		for _, c := range h.Checks {
			if c.Path == "app/nats/connection" && !c.Ready {
				found = errors.Is(c.Err, jetstream.ErrDisconnected) || c.Err == nil
			}
		}
		if !found || !h.Live {
			t.Errorf("health during the outage: %+v", h)
		}
	})
	eventually(t, 20*time.Second, "the tree is not ready again after NATS came back", ready)
	rec.waitDone(t, 20*time.Second, all...)
	eventually(t, 20*time.Second, "the consumer still holds messages", func() bool {
		info := consumerInfo(t, js)
		return info.NumAckPending == 0 && info.NumPending == 0
	})
	for _, c := range sv.pool.Supervisor().Children() {
		if c.Restarts != 0 {
			t.Errorf("worker %s restarted %d times", c.Name, c.Restarts)
		}
	}
	if err := sv.stop(); err != nil {
		t.Fatal(err)
	}
}

// Mistakes in the configuration are errors from New, matching
// arbor.ErrInvalid, that say what is wrong.
func TestBadConfiguration(t *testing.T) {
	ns := startServer(t)
	_, js := connect(t, ns)
	provision(t, js, setup{storage: njs.MemoryStorage, maxDeliv: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateConsumer(ctx, streamName, njs.ConsumerConfig{Durable: "push", DeliverSubject: "push.inbox",
		AckPolicy: njs.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, streamName, njs.ConsumerConfig{Durable: "noack", AckPolicy: njs.AckNonePolicy}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, streamName, njs.ConsumerConfig{Durable: "some", AckPolicy: njs.AckExplicitPolicy,
		FilterSubject: "tasks.some.>"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, stream, consumer string
		opts                   []jetstream.Option
		want                   string
		is                     error
	}{
		{name: "no stream", stream: "NOPE", consumer: consumerName, want: `no stream "NOPE"`, is: njs.ErrStreamNotFound},
		{name: "no consumer", stream: streamName, consumer: "nobody", want: `no consumer "nobody" on stream "TASKS"`, is: njs.ErrConsumerNotFound},
		{name: "push consumer", stream: streamName, consumer: "push", want: "push consumer"},
		{name: "no acks", stream: streamName, consumer: "noack", want: "need explicit acks"},
		{name: "MaxDeliver below attempts", stream: streamName, consumer: consumerName,
			opts: []jetstream.Option{jetstream.WithMaxAttempts(3)}, want: "at most 2 times (MaxDeliver), fewer than the 3 attempts"},
		{name: "dead letters kept nowhere", stream: streamName, consumer: consumerName,
			opts: []jetstream.Option{jetstream.WithDeadLetterSubject("nowhere.dead")}, want: `no stream captures the dead-letter subject "nowhere.dead"`},
		{name: "dead letters as tasks", stream: streamName, consumer: consumerName,
			opts: []jetstream.Option{jetstream.WithDeadLetterSubject("tasks.dead")}, want: `"tasks.dead" would be delivered`},
		{name: "wildcard dead-letter subject", stream: streamName, consumer: consumerName,
			opts: []jetstream.Option{jetstream.WithDeadLetterSubject("dead.*")}, want: "without wildcards"},
		{name: "codec of another type", stream: streamName, consumer: consumerName,
			opts: []jetstream.Option{jetstream.WithCodec[string](jetstream.JSON[string]{})}, want: "does not encode"},
		{name: "no names", want: "need both names"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := jetstream.New[job](ctx, js, c.stream, c.consumer, c.opts...)
			if !errors.Is(err, arbor.ErrInvalid) || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
				t.Fatalf("New: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "arbor: ") {
				t.Fatalf("error %q", err)
			}
		})
	}

	// Publish to a subject the consumer does not deliver.
	src, err := jetstream.New[job](ctx, js, streamName, "some")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close(ctx) }()
	for subj, want := range map[string]string{
		"elsewhere.x":   `stream "TASKS" does not capture it`,
		"tasks.other":   `consumer "some" does not deliver it`,
		"tasks.some.*":  "not a subject",
		"tasks..broken": "not a subject",
	} {
		if _, err := src.Publish(ctx, subj, job{ID: "x"}); !errors.Is(err, arbor.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("Publish to %q: %v", subj, err)
		}
	}
	if _, err := src.Publish(ctx, "tasks.some.x", job{ID: "x"}); err != nil {
		t.Fatal(err)
	}
}

// A consumer deleted while its pool serves: the pool's workers fail on
// Lease with an error that names it, and the pool's Serve returns it once
// the restart intensity is spent.
func TestConsumerDeletedFailsServe(t *testing.T) {
	ns := startServer(t)
	_, js := connect(t, ns)
	provision(t, js, setup{storage: njs.MemoryStorage})
	src := newSource(t, js)
	rec := newRecord()
	p, err := pool.New("jobs", rec.handler, append(src.PoolOptions(), pool.WithWorkers(2), pool.WithLogger(nil),
		pool.WithSupervisor(arbor.WithLogger(nil)))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx) }()
	eventually(t, 10*time.Second, "the workers do not wait for tasks", func() bool {
		return consumerInfo(t, js).NumWaiting == 2
	})
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	if err := js.DeleteConsumer(dctx, streamName, consumerName); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if !errors.Is(err, arbor.ErrIntensityExceeded) || !errors.Is(err, njs.ErrConsumerNotFound) ||
			!strings.Contains(err.Error(), `no consumer "workers" on stream "TASKS"`) {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve still runs")
	}
}

// A server that loses its streams on restart (memory storage): the pool
// fails with an error that says the stream is gone.
func TestStreamLostFailsServe(t *testing.T) {
	ns := startServer(t)
	nc, js := connect(t, ns)
	provision(t, js, setup{storage: njs.MemoryStorage})
	src := newSource(t, js)
	rec := newRecord()
	p, err := pool.New("jobs", rec.handler, append(src.PoolOptions(), pool.WithWorkers(2), pool.WithLogger(nil),
		pool.WithSupervisor(arbor.WithLogger(nil)))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx) }()
	eventually(t, 10*time.Second, "the workers do not wait for tasks", func() bool {
		return consumerInfo(t, js).NumWaiting == 2
	})
	ns.restart(func() {
		eventually(t, 10*time.Second, "still connected", func() bool { return !nc.IsConnected() })
	})
	select {
	case err := <-served:
		if !errors.Is(err, njs.ErrStreamNotFound) || !strings.Contains(err.Error(), `no stream "TASKS"`) {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve still runs")
	}
}

// The connection closed for good (here by the program): the pool fails
// with an error that says so.
func TestConnectionClosedFailsServe(t *testing.T) {
	ns := startServer(t)
	nc, js := connect(t, ns)
	provision(t, js, setup{storage: njs.MemoryStorage})
	src := newSource(t, js)
	rec := newRecord()
	p, err := pool.New("jobs", rec.handler, append(src.PoolOptions(), pool.WithWorkers(2), pool.WithLogger(nil),
		pool.WithSupervisor(arbor.WithLogger(nil)))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx) }()
	eventually(t, 10*time.Second, "the workers do not wait for tasks", func() bool {
		return consumerInfo(t, js).NumWaiting == 2
	})
	nc.Close()
	select {
	case err := <-served:
		if !errors.Is(err, nats.ErrConnectionClosed) || !errors.Is(err, arbor.ErrIntensityExceeded) {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve still runs")
	}
}
