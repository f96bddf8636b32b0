package pool

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// errQueueClosed is what the in-memory queue's Lease returns once its pool
// shuts down: the worker then has nothing more to do.
var errQueueClosed = errors.New("arbor: pool queue closed")

// queue is the in-memory Source: a ring of tasks that wait, the idle
// workers waiting for one, and the retries waiting for their delay. Its
// capacity is a semaphore that Submit acquires and a worker's lease
// releases, so that Submit waits for room bounded by its context.
type queue[T, R any] struct {
	room *semaphore.Weighted
	wake func() // called, without the lock, when tasks wait and no worker is idle

	mu      sync.Mutex
	ring    []*record[T, R] // len is a power of two
	head, n int
	idle    []*waiter[T, R] // workers waiting, the last to come first
	free    []*waiter[T, R]
	closed  bool
	delayed delayHeap[T, R]
	timer   *time.Timer // fires at delayed[0].due
}

// A waiter is an idle worker's place in the queue: at most one task (or
// nil, for "closed") is ever sent on ch while the waiter is listed.
type waiter[T, R any] struct {
	ch chan *record[T, R]
}

func newQueue[T, R any](capacity int, wake func()) *queue[T, R] {
	q := &queue[T, R]{room: semaphore.NewWeighted(int64(capacity)), wake: wake, ring: make([]*record[T, R], 16)}
	q.timer = time.AfterFunc(time.Hour, q.due)
	q.timer.Stop()
	return q
}

// put hands r to an idle worker or queues it; false if the queue is closed.
func (q *queue[T, R]) put(r *record[T, R]) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	if k := len(q.idle); k > 0 {
		w := q.idle[k-1]
		q.idle = q.idle[:k-1]
		q.mu.Unlock()
		w.ch <- r // the waiter was listed: its buffer is free
		return true
	}
	q.push(r)
	wake := q.wake
	q.mu.Unlock()
	if wake != nil {
		wake()
	}
	return true
}

// push appends r to the ring. Called with mu held.
func (q *queue[T, R]) push(r *record[T, R]) {
	if q.n == len(q.ring) {
		ring := make([]*record[T, R], 2*len(q.ring))
		for i := range q.n {
			ring[i] = q.ring[(q.head+i)&(len(q.ring)-1)]
		}
		q.ring, q.head = ring, 0
	}
	q.ring[(q.head+q.n)&(len(q.ring)-1)] = r
	q.n++
}

// pop takes the oldest task of the ring. Called with mu held, q.n > 0.
func (q *queue[T, R]) pop() *record[T, R] {
	r := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) & (len(q.ring) - 1)
	q.n--
	return r
}

// Lease waits for a task.
func (q *queue[T, R]) Lease(ctx context.Context) (Lease[T], error) {
	q.mu.Lock()
	var w *waiter[T, R]
	if k := len(q.free); k > 0 {
		w = q.free[k-1]
		q.free = q.free[:k-1]
	} else {
		w = &waiter[T, R]{ch: make(chan *record[T, R], 1)}
	}
	q.mu.Unlock()
	r, err := q.lease(ctx, w)
	q.mu.Lock()
	q.free = append(q.free, w)
	q.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return r, nil
}

// lease waits for a task as w: each worker of the pool has its own waiter.
func (q *queue[T, R]) lease(ctx context.Context, w *waiter[T, R]) (*record[T, R], error) {
	if err := ctx.Err(); err != nil {
		return nil, err // a worker told to leave takes no task
	}
	q.mu.Lock()
	for q.n > 0 {
		r := q.pop()
		if r.claimed.Load() {
			q.unadmit(r)
			continue // ended while it waited (its pool stopped): nothing to run
		}
		q.mu.Unlock()
		return q.leased(r), nil
	}
	if q.closed {
		q.mu.Unlock()
		return nil, errQueueClosed
	}
	q.idle = append(q.idle, w)
	q.mu.Unlock()
	var r *record[T, R]
	select {
	case r = <-w.ch:
	case <-ctx.Done():
		q.mu.Lock()
		if i := indexOf(q.idle, w); i >= 0 {
			q.idle = append(q.idle[:i], q.idle[i+1:]...)
			q.mu.Unlock()
			return nil, ctx.Err()
		}
		q.mu.Unlock()
		r = <-w.ch // it was handed something as ctx ended: take it
	}
	if r == nil {
		return nil, errQueueClosed
	}
	if r.claimed.Load() {
		return q.lease(ctx, w) // ended while it was handed over: wait for another
	}
	return q.leased(r), nil
}

func indexOf[W comparable](ws []W, w W) int {
	for i, x := range ws {
		if x == w {
			return i
		}
	}
	return -1
}

// leased counts r's new attempt and gives back its unit of capacity.
func (q *queue[T, R]) leased(r *record[T, R]) *record[T, R] {
	r.attempts++
	q.unadmit(r)
	return r
}

// unadmit gives back r's unit of capacity, if it holds one.
func (q *queue[T, R]) unadmit(r *record[T, R]) {
	if r.admitted {
		r.admitted = false
		q.room.Release(1)
	}
}

// retry queues r again after delay, or ends it if the queue is closed.
func (q *queue[T, R]) retry(r *record[T, R], delay time.Duration) {
	if delay <= 0 {
		if !q.put(r) {
			var zero R
			r.finish(zero, r.closedErr())
		}
		return
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		var zero R
		r.finish(zero, r.closedErr())
		return
	}
	due := time.Now().Add(delay)
	heap.Push(&q.delayed, delayedTask[T, R]{r: r, due: due})
	if q.delayed[0].r == r {
		q.timer.Reset(delay)
	}
	q.mu.Unlock()
}

// due moves the retries whose delay has passed to the ring or to idle
// workers. It runs on the timer's goroutine.
func (q *queue[T, R]) due() {
	var ready []*record[T, R]
	q.mu.Lock()
	now := time.Now()
	for len(q.delayed) > 0 && !q.delayed[0].due.After(now) {
		ready = append(ready, heap.Pop(&q.delayed).(delayedTask[T, R]).r)
	}
	if len(q.delayed) > 0 {
		q.timer.Reset(q.delayed[0].due.Sub(now))
	}
	q.mu.Unlock()
	for _, r := range ready {
		if !q.put(r) {
			var zero R
			r.finish(zero, r.closedErr())
		}
	}
}

// close stops the queue: idle workers are told, and every task it holds
// ends with ErrClosed. Later puts fail.
func (q *queue[T, R]) close() {
	q.mu.Lock()
	q.closed = true
	var held []*record[T, R]
	for q.n > 0 {
		held = append(held, q.pop())
	}
	for len(q.delayed) > 0 {
		held = append(held, heap.Pop(&q.delayed).(delayedTask[T, R]).r)
	}
	q.timer.Stop()
	idle := q.idle
	q.idle = nil
	q.mu.Unlock()
	for _, w := range idle {
		w.ch <- nil
	}
	var zero R
	for _, r := range held {
		if r.admitted {
			r.admitted = false
			q.room.Release(1) // a Submit waiting for room wakes, and finds the queue closed
		}
		r.finish(zero, r.closedErr())
	}
}

// open lets a new Serve use the queue again.
func (q *queue[T, R]) open() {
	q.mu.Lock()
	q.closed = false
	q.mu.Unlock()
}

// isClosed reports whether the queue is closed.
func (q *queue[T, R]) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// len returns the number of tasks waiting, delayed retries included.
func (q *queue[T, R]) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n + len(q.delayed)
}

// backlog returns how many tasks wait in the ring with no idle worker.
func (q *queue[T, R]) backlog() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// delayedTask is a retry waiting for its delay.
type delayedTask[T, R any] struct {
	r   *record[T, R]
	due time.Time
}

// delayHeap orders delayed retries by due time.
type delayHeap[T, R any] []delayedTask[T, R]

func (h delayHeap[T, R]) Len() int           { return len(h) }
func (h delayHeap[T, R]) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h delayHeap[T, R]) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayHeap[T, R]) Push(x any)        { *h = append(*h, x.(delayedTask[T, R])) }
func (h *delayHeap[T, R]) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = delayedTask[T, R]{}
	*h = old[:len(old)-1]
	return d
}
