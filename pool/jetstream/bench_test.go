package jetstream_test

import (
	"context"
	"fmt"
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

// The throughput of no-op tasks through JetStream: b.N tasks published
// beforehand (not timed), then consumed by 1 or 3 consumers in this
// process, each on its own connection, each ack confirmed by the server:
//
//   - pool: a pool of 4 workers on a Source (pool-1-worker: of 1);
//   - loop: a plain nats.go loop (Consume, its default prefetch, and
//     DoubleAck for each message), the lower bound;
//   - memory: the same pool on its in-memory queue (Submit, then Wait).
//
// Each reports tasks/s. Run with:
//
//	go test -run '^$' -bench . -benchtime 20000x
func BenchmarkThroughput(b *testing.B) {
	for _, st := range []struct {
		name    string
		storage njs.StorageType
	}{{"file", njs.FileStorage}, {"memory", njs.MemoryStorage}} {
		for _, consumers := range []int{1, 3} {
			b.Run(fmt.Sprintf("%s/loop/%d", st.name, consumers), func(b *testing.B) {
				benchJetStream(b, st.storage, consumers, runLoop)
			})
			b.Run(fmt.Sprintf("%s/pool/%d", st.name, consumers), func(b *testing.B) {
				benchJetStream(b, st.storage, consumers, runPool(benchWorkers))
			})
			b.Run(fmt.Sprintf("%s/pool-1-worker/%d", st.name, consumers), func(b *testing.B) {
				benchJetStream(b, st.storage, consumers, runPool(1))
			})
		}
	}
	b.Run("inmemory/pool/1", func(b *testing.B) {
		p, err := pool.New("bench", func(context.Context, int) (struct{}, error) { return struct{}{}, nil },
			pool.WithWorkers(benchWorkers), pool.WithLogger(nil), pool.WithSupervisor(arbor.WithLogger(nil)), pool.WithQueue(b.N+1))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- p.Serve(ctx) }()
		b.ResetTimer()
		start := time.Now()
		tasks := make([]*pool.Task[int, struct{}], b.N)
		for i := range b.N {
			if tasks[i], err = p.Submit(ctx, i); err != nil {
				b.Fatal(err)
			}
		}
		for _, t := range tasks {
			if _, err := t.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tasks/s")
		b.StopTimer()
		cancel()
		if err := <-served; err != nil {
			b.Fatal(err)
		}
	})
}

const benchWorkers = 4

// A consumer runs until done is closed; acked counts what it acked.
type consumeFunc func(b *testing.B, js njs.JetStream, acked *atomic.Int64, total int64, done chan struct{}) (stop func())

func benchJetStream(b *testing.B, storage njs.StorageType, consumers int, run consumeFunc) {
	ns := startServer(b)
	_, js := connect(b, ns)
	provision(b, js, setup{storage: storage})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	publishBench(ctx, b, js)
	var acked atomic.Int64
	done := make(chan struct{})
	b.ResetTimer()
	start := time.Now()
	var stops []func()
	for range consumers {
		nc, err := nats.Connect(ns.url())
		if err != nil {
			b.Fatal(err)
		}
		cjs, err := njs.New(nc)
		if err != nil {
			b.Fatal(err)
		}
		stop := run(b, cjs, &acked, int64(b.N), done)
		stops = append(stops, func() { stop(); nc.Close() })
	}
	select {
	case <-done:
	case <-ctx.Done():
		b.Fatalf("acked %d of %d", acked.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tasks/s")
	for _, stop := range stops {
		stop()
	}
}

// publishBench publishes b.N no-op tasks, and waits for the server to
// confirm them.
func publishBench(ctx context.Context, b *testing.B, js njs.JetStream) {
	b.Helper()
	body := []byte(`{"ID":"x"}`)
	var futures []njs.PubAckFuture
	for i := range b.N {
		f, err := js.PublishAsync("tasks.bench", body)
		if err != nil {
			b.Fatal(err)
		}
		futures = append(futures, f)
		if i%1000 == 999 || i == b.N-1 {
			for _, f := range futures {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					b.Fatal(err)
				case <-ctx.Done():
					b.Fatal(ctx.Err())
				}
			}
			futures = futures[:0]
		}
	}
}

// count counts an ack, and closes done at the last.
func count(acked *atomic.Int64, total int64, done chan struct{}) {
	if acked.Add(1) == total {
		close(done)
	}
}

func runLoop(b *testing.B, js njs.JetStream, acked *atomic.Int64, total int64, done chan struct{}) func() {
	ctx := context.Background()
	c, err := js.Consumer(ctx, streamName, consumerName)
	if err != nil {
		b.Fatal(err)
	}
	cc, err := c.Consume(func(m njs.Msg) {
		if err := m.DoubleAck(ctx); err == nil {
			count(acked, total, done)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	return cc.Drain
}

func runPool(workers int) consumeFunc {
	return func(b *testing.B, js njs.JetStream, acked *atomic.Int64, total int64, done chan struct{}) func() {
		return servePool(b, js, workers, acked, total, done)
	}
}

func servePool(b *testing.B, js njs.JetStream, workers int, acked *atomic.Int64, total int64, done chan struct{}) func() {
	ctx, cancel := context.WithCancel(context.Background())
	src, err := jetstream.New[job](ctx, js, streamName, consumerName)
	if err != nil {
		b.Fatal(err)
	}
	p, err := pool.New("bench", func(context.Context, job) (struct{}, error) { return struct{}{}, nil },
		pool.WithSource[job](countingSource{src, func() { count(acked, total, done) }}),
		pool.WithWorkers(workers), pool.WithLogger(nil), pool.WithSupervisor(arbor.WithLogger(nil)))
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := p.Serve(ctx); err != nil {
			b.Error(err)
		}
	})
	return func() {
		cancel()
		wg.Wait()
		_ = src.Close(context.Background())
	}
}

// countingSource counts the acks the server confirmed.
type countingSource struct {
	*jetstream.Source[job]
	acked func()
}

func (s countingSource) Lease(ctx context.Context) (pool.Lease[job], error) {
	l, err := s.Source.Lease(ctx)
	if err != nil {
		return nil, err
	}
	return countingLease{l, s.acked}, nil
}

type countingLease struct {
	pool.Lease[job]
	acked func()
}

func (l countingLease) Ack(ctx context.Context) error {
	err := l.Lease.Ack(ctx)
	if err == nil {
		l.acked()
	}
	return err
}
