package jetstream_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	njs "github.com/nats-io/nats.go/jetstream"
)

// workTask is the task of the worker program (internal/testworker).
type workTask struct {
	ID   string
	Work time.Duration
	Hang bool
}

func publishWork(t testing.TB, js njs.JetStream, tasks ...workTask) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, task := range tasks {
		data := fmt.Appendf(nil, `{"ID":%q,"Work":%d,"Hang":%t}`, task.ID, task.Work, task.Hang)
		if _, err := js.Publish(ctx, "tasks."+task.ID, data); err != nil {
			t.Fatal(err)
		}
	}
}

// An event is one line of the worker program's log.
type event struct {
	at       time.Time
	pid      int
	what, id string
	delivery int
}

// readLog reads the events logged so far (a line being written is left
// for the next read).
func readLog(t testing.TB, path string) []event {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []event
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return evs // EOF, or a partial line
		}
		var e event
		var ns int64
		if _, err := fmt.Sscanf(line, "%d %d %s %s %d", &ns, &e.pid, &e.what, &e.id, &e.delivery); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		e.at = time.Unix(0, ns)
		evs = append(evs, e)
	}
}

// find returns the events matching what (and id, unless empty).
func find(evs []event, what, id string) []event {
	var out []event
	for _, e := range evs {
		if e.what == what && (id == "" || e.id == id) {
			out = append(out, e)
		}
	}
	return out
}

// waitLog waits for the log to satisfy cond.
func waitLog(t testing.TB, path string, within time.Duration, what string, cond func([]event) bool) []event {
	t.Helper()
	var evs []event
	eventually(t, within, what, func() bool {
		evs = readLog(t, path)
		return cond(evs)
	})
	return evs
}

// acked reports whether every id has an ack.
func acked(evs []event, ids []string) bool {
	for _, id := range ids {
		if len(find(evs, "ack", id)) == 0 {
			return false
		}
	}
	return true
}

// checkAckedOnce fails the test unless every id was acked exactly once.
func checkAckedOnce(t testing.TB, evs []event, ids []string) {
	t.Helper()
	for _, id := range ids {
		if acks := find(evs, "ack", id); len(acks) != 1 {
			t.Errorf("task %s acked %d times: %v", id, len(acks), acks)
		}
	}
	if errs := find(evs, "ackerr", ""); len(errs) > 0 {
		t.Errorf("failed acks: %v", errs)
	}
}

// A worker process killed (SIGKILL) in the middle of a task: another
// process finishes everything, the killed attempt comes back once its
// AckWait passed (not before: its lease was extended while it ran), and no
// task is acknowledged twice.
func TestCrashRedelivers(t *testing.T) {
	const ackWait = 2 * time.Second
	ns := startServer(t)
	_, js := connect(t, ns)
	provision(t, js, setup{storage: njs.FileStorage, ackWait: ackWait})
	logPath := filepath.Join(t.TempDir(), "events.log")
	var tasks []workTask
	var all []string
	for i := range 10 {
		if i == 5 {
			tasks = append(tasks, workTask{ID: "hang", Hang: true})
			all = append(all, "hang")
		}
		id := "t" + strconv.Itoa(i)
		tasks = append(tasks, workTask{ID: id, Work: 20 * time.Millisecond})
		all = append(all, id)
	}
	publishWork(t, js, tasks...)

	// One worker: when it starts the hanging task, nothing else is in
	// flight in its process.
	a := startWorker(t, ns, logPath, 1)
	waitLog(t, logPath, 30*time.Second, "the first process never started the hanging task", func(evs []event) bool {
		return len(find(evs, "start", "hang")) == 1
	})
	killed := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.wait(t, 10*time.Second)

	b := startWorker(t, ns, logPath, 1)
	evs := waitLog(t, logPath, 30*time.Second, "not every task acked", func(evs []event) bool { return acked(evs, all) })
	checkAckedOnce(t, evs, all)
	starts := find(evs, "start", "hang")
	if len(starts) != 2 || starts[0].pid != a.pid() || starts[0].delivery != 1 || starts[1].pid != b.pid() || starts[1].delivery != 2 {
		t.Fatalf("starts of the hanging task: %+v", starts)
	}
	// Its lease was last extended at most AckWait/3 before the kill; the
	// server delivered it again AckWait after that.
	if gap := starts[1].at.Sub(starts[0].at); gap < ackWait-100*time.Millisecond {
		t.Errorf("delivered again %v after its first start: before AckWait", gap)
	}
	if gap := starts[1].at.Sub(killed); gap < ackWait*2/3-200*time.Millisecond || gap > ackWait+5*time.Second {
		t.Errorf("delivered again %v after the kill", gap)
	}
	for _, e := range find(evs, "start", "") {
		if e.id != "hang" && e.delivery != 1 {
			t.Errorf("task %s delivered %d times", e.id, e.delivery)
		}
	}
	eventually(t, 10*time.Second, "the consumer still holds messages", func() bool {
		info := consumerInfo(t, js)
		return info.NumAckPending == 0 && info.NumPending == 0
	})
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := b.wait(t, 10*time.Second); err != nil {
		t.Fatalf("worker after SIGTERM: %v", err)
	}
}

// Three worker processes share one durable consumer: the tasks are spread
// over them; one shut down gracefully (SIGTERM) gives its unstarted and
// interrupted tasks back at once, and the other two finish everything long
// before AckWait.
func TestShareAcrossProcesses(t *testing.T) {
	const ackWait = 30 * time.Second
	ns := startServer(t)
	_, js := connect(t, ns)
	provision(t, js, setup{storage: njs.FileStorage, ackWait: ackWait})
	logPath := filepath.Join(t.TempDir(), "events.log")
	var procs []*proc
	for range 3 {
		procs = append(procs, startWorker(t, ns, logPath, 2))
	}
	waitLog(t, logPath, 30*time.Second, "not every process ready", func(evs []event) bool { return len(find(evs, "ready", "")) == 3 })
	var tasks []workTask
	var all []string
	for i := range 90 {
		id := "t" + strconv.Itoa(i)
		tasks = append(tasks, workTask{ID: id, Work: 100 * time.Millisecond})
		all = append(all, id)
	}
	publishWork(t, js, tasks...)
	stopped := procs[2]
	waitLog(t, logPath, 30*time.Second, "the third process started too few tasks", func(evs []event) bool {
		n := 0
		for _, e := range find(evs, "start", "") {
			if e.pid == stopped.pid() {
				n++
			}
		}
		return n >= 4
	})
	sigterm := time.Now()
	if err := stopped.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := stopped.wait(t, 10*time.Second); err != nil {
		t.Fatalf("worker after SIGTERM: %v", err)
	}
	evs := waitLog(t, logPath, ackWait/2, "not every task acked (a task waited for AckWait?)", func(evs []event) bool { return acked(evs, all) })
	finished := time.Since(sigterm)
	checkAckedOnce(t, evs, all)
	perProc := map[int]int{}
	for _, e := range find(evs, "ack", "") {
		perProc[e.pid]++
	}
	for _, p := range procs {
		if perProc[p.pid()] == 0 {
			t.Errorf("process %d acked no task: %v", p.pid(), perProc)
		}
	}
	// What the stopped process had started and not acked was given back,
	// and started again by another.
	for _, e := range find(evs, "nack", "") {
		if e.pid != stopped.pid() {
			t.Errorf("a nack outside the shutdown: %+v", e)
			continue
		}
		again := false
		for _, s := range find(evs, "start", e.id) {
			again = again || (s.pid != stopped.pid() && s.delivery > e.delivery)
		}
		if !again {
			t.Errorf("task %s given back, not started again", e.id)
		}
	}
	t.Logf("acks per process %v; all acked %v after the SIGTERM; given back: %d", perProc, finished.Round(time.Millisecond), len(find(evs, "nack", "")))
	eventually(t, 10*time.Second, "the consumer still holds messages", func() bool {
		info := consumerInfo(t, js)
		return info.NumAckPending == 0 && info.NumPending == 0
	})
	for _, p := range procs[:2] {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := p.wait(t, 10*time.Second); err != nil {
			t.Fatalf("worker after SIGTERM: %v", err)
		}
	}
}
