package pool

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/arborgo/arbor"
)

// conn is a worker's state in tests.
type conn struct {
	id     int
	closed bool
}

// connPool counts the connections its workers open and close.
type connPool struct {
	mu     sync.Mutex
	opened []*conn
}

func (cp *connPool) setup(ctx context.Context) (Handler[int, int], func(), error) {
	cp.mu.Lock()
	c := &conn{id: len(cp.opened) + 1}
	cp.opened = append(cp.opened, c)
	cp.mu.Unlock()
	h := func(ctx context.Context, n int) (int, error) {
		if n < 0 {
			Recycle(ctx)
		}
		return c.id, nil
	}
	release := func() {
		cp.mu.Lock()
		c.closed = true
		cp.mu.Unlock()
	}
	return h, release, nil
}

func (cp *connPool) counts() (opened, closed int) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for _, c := range cp.opened {
		if c.closed {
			closed++
		}
	}
	return len(cp.opened), closed
}

func TestWorkerStateAndRecycling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cp := &connPool{}
		p, err := NewWithSetup("jobs", cp.setup, quiet(WithWorkers(1), WithMaxTasksPerWorker(3))...)
		if err != nil {
			t.Fatal(err)
		}
		sv := serve(t, p)
		var ids []int
		for i := range 7 {
			id, err := wait(t, submit(t, p, i))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		// Replaced after 3 tasks each.
		if want := []int{1, 1, 1, 2, 2, 2, 3}; !slices.Equal(ids, want) {
			t.Fatalf("tasks ran on connections %v, want %v", ids, want)
		}
		// Recycle: the task that asks runs on its connection, the next on a new one.
		a, _ := wait(t, submit(t, p, -1))
		b, _ := wait(t, submit(t, p, 1))
		if a != 3 || b != 4 {
			t.Fatalf("around Recycle: connections %d then %d, want 3 then 4", a, b)
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
		if opened, closed := cp.counts(); opened != 4 || closed != 4 {
			t.Fatalf("%d connections opened, %d closed; want 4 and 4", opened, closed)
		}
	})
}

// A worker whose setup fails is restarted by its supervisor, with its backoff.
func TestSetupFailureRestartsWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tries atomic.Int64
		p, err := NewWithSetup("jobs", func(ctx context.Context) (Handler[int, int], func(), error) {
			if tries.Add(1) < 3 {
				return nil, nil, fmt.Errorf("connect: refused")
			}
			return func(_ context.Context, n int) (int, error) { return n, nil }, nil, nil
		}, quiet(WithWorkers(1), WithSupervisor(arbor.WithBackoff(arbor.ConstantBackoff(time.Second))))...)
		if err != nil {
			t.Fatal(err)
		}
		sv := serve(t, p)
		start := time.Now()
		if _, err := wait(t, submit(t, p, 1)); err != nil {
			t.Fatal(err)
		}
		if tries.Load() != 3 || time.Since(start) != 2*time.Second {
			t.Fatalf("%d setups over %v", tries.Load(), time.Since(start))
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// barrier blocks handlers until released, counting how many run at once.
type barrier struct {
	running, most atomic.Int64
	release       chan struct{}
}

func newBarrier() *barrier { return &barrier{release: make(chan struct{})} }

func (b *barrier) handle(ctx context.Context, n int) (int, error) {
	r := b.running.Add(1)
	defer b.running.Add(-1)
	for {
		m := b.most.Load()
		if r <= m || b.most.CompareAndSwap(m, r) {
			break
		}
	}
	<-b.release
	return n, nil
}

func TestFixedSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBarrier()
		p := mustNew(t, b.handle, WithWorkers(4))
		sv := serve(t, p)
		var tasks []*Task[int, int]
		for i := range 10 {
			tasks = append(tasks, submit(t, p, i))
		}
		synctest.Wait()
		if b.running.Load() != 4 {
			t.Fatalf("%d attempts run at once, want 4", b.running.Load())
		}
		st := p.Stats()
		if st.Workers != 4 || st.Busy != 4 || st.Queued != 6 {
			t.Fatalf("stats %+v", st)
		}
		close(b.release)
		for _, tk := range tasks {
			if _, err := wait(t, tk); err != nil {
				t.Fatal(err)
			}
		}
		if b.most.Load() != 4 {
			t.Fatalf("%d at once, want 4", b.most.Load())
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAutoscale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBarrier()
		p := mustNew(t, b.handle, WithAutoscale(1, 4, 10*time.Second))
		sv := serve(t, p)
		if st := p.Stats(); st.Workers != 1 {
			t.Fatalf("idle pool has %d workers, want its minimum 1", st.Workers)
		}
		var tasks []*Task[int, int]
		for i := range 8 {
			tasks = append(tasks, submit(t, p, i))
		}
		synctest.Wait()
		if st := p.Stats(); st.Workers != 4 || st.Busy != 4 {
			t.Fatalf("with 8 tasks waiting: %+v; want 4 workers busy", st)
		}
		close(b.release)
		for _, tk := range tasks {
			if _, err := wait(t, tk); err != nil {
				t.Fatal(err)
			}
		}
		// Idle workers stay for a whole idle window, then leave down to the minimum.
		time.Sleep(5 * time.Second)
		if st := p.Stats(); st.Workers != 4 {
			t.Fatalf("idle for 5s: %d workers, want 4", st.Workers)
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if st := p.Stats(); st.Workers != 1 {
			t.Fatalf("idle for 25s: %d workers, want 1", st.Workers)
		}
		if n := len(p.Supervisor().Children()); n != 1 {
			t.Fatalf("%d children, want 1", n)
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestResize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBarrier()
		p := mustNew(t, b.handle, WithWorkers(2))
		sv := serve(t, p)
		var tasks []*Task[int, int]
		for i := range 6 {
			tasks = append(tasks, submit(t, p, i))
		}
		synctest.Wait()
		if err := p.Resize(5, 5); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if r := b.running.Load(); r != 5 {
			t.Fatalf("after Resize(5, 5): %d running, want 5", r)
		}
		// Shrinking lets running attempts finish.
		if err := p.Resize(1, 1); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if r := b.running.Load(); r != 5 {
			t.Fatalf("after Resize(1, 1): %d running, want the 5 to go on", r)
		}
		close(b.release)
		for _, tk := range tasks {
			if _, err := wait(t, tk); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if st := p.Stats(); st.Workers != 1 || len(p.Supervisor().Children()) != 1 {
			t.Fatalf("after shrinking: %+v, children %v", st, p.Supervisor().Children())
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// An autoscaling pool on a Source, which hides its backlog, adds a worker
// whenever one takes a task and none is left waiting on the source.
func TestAutoscaleWithSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker()
		for i := range 50 {
			b.publish(fmt.Sprint(i), "x", 0)
		}
		p, err := New("jobs", func(_ context.Context, s string) (string, error) {
			time.Sleep(time.Second)
			return s, nil
		}, quiet(WithSource[string](b), WithAutoscale(1, 8, time.Minute))...)
		if err != nil {
			t.Fatal(err)
		}
		sv := serve(t, p)
		time.Sleep(500 * time.Millisecond)
		if st := p.Stats(); st.Workers != 8 || st.Busy != 8 {
			t.Fatalf("with 50 tasks on the source: %+v; want 8 workers busy", st)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if st := p.Stats(); st.Succeeded != 50 {
			t.Fatalf("stats %+v", st)
		}
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		if st := p.Stats(); st.Workers != 1 {
			t.Fatalf("idle: %d workers, want 1", st.Workers)
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}
