package arbor

import (
	"container/heap"
	"fmt"
	"slices"
	"time"
)

// waitKind says what a child waits for in the deadlines heap.
type waitKind uint8

const (
	waitRestart waitKind = iota // its delayed restart is due (a job's entry is always this)
	waitStart                   // its start timeout: it has not signalled readiness
	waitBeat                    // its heartbeat period: check for a heartbeat
	waitStop                    // its shutdown timeout after it was cancelled: declare it stuck
)

// entry is one timed wait: of a child (its one deadline at most) or of a
// group restart waiting for its delay.
type entry struct {
	due time.Time
	c   *child
	j   *job
}

// deadlines is every timed wait of a supervisor, a min-heap by due time,
// served by one timer: delayed restarts, delayed group restarts, start
// timeouts, heartbeats and shutdown timeouts.
type deadlines []entry

func (h deadlines) Len() int           { return len(h) }
func (h deadlines) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h deadlines) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].setSlot(i)
	h[j].setSlot(j)
}
func (h *deadlines) Push(x any) {
	e := x.(entry)
	e.setSlot(len(*h))
	*h = append(*h, e)
}
func (h *deadlines) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = entry{}
	*h = old[:len(old)-1]
	e.setSlot(-1)
	return e
}

func (e entry) setSlot(i int) {
	if e.c != nil {
		e.c.slot = int32(i)
	} else {
		e.j.slot = int32(i)
	}
}

// deadline sets e's timed wait, replacing the child's earlier one.
func (s *Supervisor) deadline(e entry, kind waitKind) {
	h := &s.loop.heap
	slot := int32(-1)
	if e.c != nil {
		e.c.wait = kind
		slot = e.c.slot
	}
	if slot >= 0 {
		(*h)[slot].due = e.due
		heap.Fix(h, int(slot))
	} else {
		heap.Push(h, e)
	}
	s.armTimer()
}

// unschedule cancels c's timed wait, if any.
func (s *Supervisor) unschedule(c *child) {
	if c.slot < 0 || !s.serving {
		return
	}
	if c.wait == waitRestart && c.cold != nil {
		c.cold.nextStart = time.Time{}
	}
	s.removeAt(int(c.slot))
}

// unscheduleJob cancels a group restart's wait for its delay.
func (s *Supervisor) unscheduleJob(j *job) {
	if j.slot >= 0 {
		s.removeAt(int(j.slot))
	}
}

func (s *Supervisor) removeAt(i int) {
	heap.Remove(&s.loop.heap, i)
	s.armTimer()
}

// armTimer sets the timer for the earliest deadline.
func (s *Supervisor) armTimer() {
	l := &s.loop
	if len(l.heap) == 0 {
		if l.timerArmed {
			l.timer.Stop()
			l.timerArmed = false
		}
		return
	}
	at := l.heap[0].due
	if l.timerArmed && at.Equal(l.timerAt) {
		return
	}
	l.timer.Reset(time.Until(at))
	l.timerAt, l.timerArmed = at, true
}

// due handles the deadlines whose time has come.
func (s *Supervisor) due() {
	l := &s.loop
	now := time.Now()
	for len(l.heap) > 0 && !l.heap[0].due.After(now) {
		e := heap.Pop(&l.heap).(entry)
		if j := e.j; j == l.giveUp && j != nil {
			s.giveUpStopping()
			continue
		} else if j != nil {
			if i := slices.Index(l.delayed, j); i >= 0 {
				l.delayed = slices.Delete(l.delayed, i, i+1)
			}
			s.startGroup(j)
			continue
		}
		c := e.c
		switch c.wait {
		case waitRestart:
			c.cold.nextStart = time.Time{}
			s.setPhase(c, phIdle)
			s.restartOne(c, now)
		case waitStart:
			s.cancelAsFailed(c, fmt.Errorf("%w: child %q not ready after %v", ErrStartTimeout, c.name, c.startTimeout))
		case waitBeat:
			s.checkBeat(c, now)
		case waitStop:
			s.declareStuck(c)
		}
	}
	s.armTimer()
}

// dropPendingStarts removes the deadlines of delayed restarts and delayed
// group restarts.
func (s *Supervisor) dropPendingStarts() {
	l := &s.loop
	kept := l.heap[:0]
	for _, e := range l.heap {
		if e.j != nil || e.c.wait == waitRestart {
			e.setSlot(-1)
			continue
		}
		kept = append(kept, e)
	}
	clear(l.heap[len(kept):])
	l.heap = kept
	for i, e := range l.heap {
		e.setSlot(i)
	}
	heap.Init(&l.heap)
	s.armTimer()
}
