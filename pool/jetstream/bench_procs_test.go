package jetstream_test

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	njs "github.com/nats-io/nats.go/jetstream"
)

// The throughput of no-op tasks through JetStream with 1 or 3 worker
// PROCESSES (the program internal/testworker, built once per test binary,
// with -quiet: it logs "ready", nothing per task), the server in the
// benchmark's process:
//
//   - pool: a pool of 4 workers on a Source, in a tree with its Watcher
//     (pool-1-worker: of 1);
//   - plain: a plain nats.go loop (Consume, its default prefetch, and
//     DoubleAck for each message), the lower bound.
//
// What is timed: b.N tasks are published (not timed) to a fresh stream
// whose consumer is paused (JetStream's consumer pause), so that the
// processes, once started, connect, pull, and log "ready" without
// receiving anything; then the clock starts and the consumer is resumed.
// The clock stops when the server reports every task acked: the consumer
// info, polled every 5ms, shows nothing pending and nothing awaiting an ack.
// So neither the processes' start-up nor the publishing is timed, and
// the processes do not consume while the tasks are published.
//
// Each reports tasks/s. Run with:
//
//	go test -run '^$' -bench Processes -benchtime 20000x
func BenchmarkProcesses(b *testing.B) {
	for _, st := range []struct {
		name    string
		storage njs.StorageType
	}{{"file", njs.FileStorage}, {"memory", njs.MemoryStorage}} {
		for _, procs := range []int{1, 3} {
			for _, kind := range []struct {
				name  string
				flags []string
			}{
				{"plain", []string{"-mode", "plain"}},
				{"pool", []string{"-mode", "pool", "-workers", fmt.Sprint(benchWorkers)}},
				{"pool-1-worker", []string{"-mode", "pool", "-workers", "1"}},
			} {
				b.Run(fmt.Sprintf("%s/%s/%d", st.name, kind.name, procs), func(b *testing.B) {
					benchProcesses(b, st.storage, procs, kind.flags)
				})
			}
		}
	}
}

func benchProcesses(b *testing.B, storage njs.StorageType, procs int, flags []string) {
	testWorker(b) // built before anything is timed
	ns := startServer(b)
	_, js := connect(b, ns)
	provision(b, js, setup{storage: storage})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := js.PauseConsumer(ctx, streamName, consumerName, time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	publishBench(ctx, b, js)

	logPath := filepath.Join(b.TempDir(), "events.log")
	var ps []*proc
	for range procs {
		// -workers from flags, given later, wins over startWorker's.
		ps = append(ps, startWorker(b, ns, logPath, 1, append([]string{"-quiet"}, flags...)...))
	}
	waitLog(b, logPath, 30*time.Second, "not every process ready", func(evs []event) bool {
		return len(find(evs, "ready", "")) == procs
	})
	if info := consumerInfo(b, js); info.Delivered.Consumer != 0 {
		b.Fatalf("%d tasks delivered while the consumer was paused", info.Delivered.Consumer)
	}

	b.ResetTimer()
	start := time.Now()
	if _, err := js.ResumeConsumer(ctx, streamName, consumerName); err != nil {
		b.Fatal(err)
	}
	for {
		info := consumerInfo(b, js)
		if info.NumAckPending == 0 && info.NumPending == 0 {
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("after %v: %d tasks pending, %d awaiting an ack", time.Since(start), info.NumPending, info.NumAckPending)
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tasks/s")

	if info := consumerInfo(b, js); info.Delivered.Consumer != uint64(b.N) || info.AckFloor.Consumer != uint64(b.N) {
		b.Errorf("delivered %d, ack floor %d, of %d tasks (redeliveries?)", info.Delivered.Consumer, info.AckFloor.Consumer, b.N)
	}
	for _, p := range ps {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			b.Fatal(err)
		}
	}
	for _, p := range ps {
		if err := p.wait(b, 10*time.Second); err != nil {
			b.Fatalf("worker after SIGTERM: %v\n%s", err, p.stderr.String())
		}
	}
}
