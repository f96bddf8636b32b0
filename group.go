package arbor

import (
	"slices"
	"time"
)

// job stops children one at a time, in order; a group restart then starts
// its members in start order, at once or, if later, at its trigger's next
// start. Terminate and shutdown queue jobs that only stop.
type job struct {
	stops   []stopRef
	starts  []member
	trigger *child    // the child whose exit asked for a group restart, or nil
	at      time.Time // not before: the trigger's backoff
	slot    int32     // index in the deadlines heap while it waits for at, or -1
}

// member is a child that a group restart will start, unless Terminate or
// Remove stopped it after the group restart was queued (gen changed).
type member struct {
	c   *child
	gen uint32
}

// stopRef is a child that a job stops: the copy that ran when the job was
// queued or, for a group restart, one an earlier group restart started
// since, but not one started after a Terminate or Remove since (gen
// changed): that stop was not meant for it.
type stopRef struct {
	c     *child
	cp    *copyCtx
	gen   uint32
	group bool // a group restart's stop
}

// group returns the children that a restart of c under strategy st stops and
// starts again, in start order.
func (s *Supervisor) group(st Strategy, c *child) []*child {
	first := c
	if st == OneForAll {
		first = s.head
	}
	var g []*child
	for x := first; x != nil; x = x.next {
		g = append(g, x)
	}
	return g
}

// groupRestart queues the OneForAll or RestForOne restart that c's exit
// calls for: stop the group's live children in reverse start order, then
// start its non-temporary children in start order, not before at.
func (s *Supervisor) groupRestart(c *child, at time.Time) {
	g := s.group(s.cfg.strategy, c)
	j := &job{trigger: c, at: at, slot: -1}
	for _, x := range g {
		if x.ph.live() {
			continue
		}
		// The group restart takes the place of x's pending start, and of a
		// group restart x triggered, whose members are all in g.
		s.dropDelayed(x)
		switch x.ph {
		case phDelayed:
			s.unschedule(x)
		case phQueued:
			s.dequeue(x)
			if x.restart == Temporary { // never started, never restarted
				s.delete(x)
				continue
			}
			s.setPhase(x, phIdle)
		}
	}
	for i := len(g) - 1; i >= 0; i-- {
		if x := g[i]; x.ph.live() && x.ph != phRemoved {
			x.claimed = true
			j.stops = append(j.stops, stopRef{c: x, cp: x.cp, gen: x.gen, group: true})
		}
	}
	for _, x := range g {
		if x.restart == Temporary || x.ph == phRemoved {
			continue
		}
		x.pendingStarts++
		x.coldRec().nextStart = at
		if !x.ph.live() {
			s.setPhase(x, phGrouped)
		}
		j.starts = append(j.starts, member{x, x.gen})
	}
	s.loop.jobs = append(s.loop.jobs, j)
}

// dropDelayed cancels a group restart that trigger's exit queued and that
// waits for its delay: its members will not be started by it.
func (s *Supervisor) dropDelayed(trigger *child) {
	l := &s.loop
	for i := 0; i < len(l.delayed); i++ {
		j := l.delayed[i]
		if j.trigger != trigger {
			continue
		}
		l.delayed = slices.Delete(l.delayed, i, i+1)
		i--
		s.unscheduleJob(j)
		s.forgetStarts(j)
	}
}

// forgetStarts undoes what a group restart that will not happen promised its
// members.
func (s *Supervisor) forgetStarts(j *job) {
	for _, m := range j.starts {
		x := m.c
		if m.gen != x.gen {
			continue // stopped since: not counted
		}
		x.pendingStarts--
		if x.pendingStarts == 0 {
			if x.cold != nil {
				x.cold.nextStart = time.Time{}
			}
			if x.ph == phGrouped {
				s.setPhase(x, phIdle)
			}
		}
	}
}

// advance runs queued jobs as far as they go without waiting for a child,
// then starts queued children.
func (s *Supervisor) advance() {
	l := &s.loop
	for l.cur == nil && len(l.jobs) > 0 {
		j := l.jobs[0]
		if len(j.stops) > 0 {
			ref := j.stops[0]
			j.stops = j.stops[1:]
			x := ref.c
			if (x.ph == phStarting || x.ph == phRunning || x.ph == phStopping) && (x.cp == ref.cp || ref.group && x.gen == ref.gen) {
				s.beginStop(x)
			}
			continue
		}
		l.jobs[0] = nil
		l.jobs = l.jobs[1:]
		switch {
		case j.trigger == nil:
		case j.at.After(time.Now()) && !l.shutting:
			l.delayed = append(l.delayed, j)
			s.deadline(entry{due: j.at, j: j}, waitRestart)
		default:
			s.startGroup(j)
		}
	}
	if len(l.jobs) == 0 {
		l.jobs = l.jobs[:0:0]
	}
	s.startQueued()
}

// startGroup performs a group restart's starts, in start order, within the
// restart intensity.
func (s *Supervisor) startGroup(j *job) {
	l := &s.loop
	allowed := l.window.allow(time.Since(l.started))
	for _, m := range j.starts {
		x, live := m.c, m.gen == m.c.gen
		if live {
			x.pendingStarts--
		}
		if x.pendingStarts == 0 && x.cold != nil {
			x.cold.nextStart = time.Time{}
		}
		switch {
		case !live || !allowed || x.ph == phRemoved || l.shutting:
			if x.ph == phGrouped && x.pendingStarts == 0 {
				s.setPhase(x, phIdle)
			}
		case x.ph == phQueued:
			// Its start is queued already, by an earlier group restart (a
			// restart) or by Restart (a start): that one start serves both.
		case x.ph == phStuck:
			if x.then != thenStart && x.then != thenRemove { // start it again when it returns
				x.then, x.restartNext, x.terminated = thenStart, x.ranIn == s.serves, false
			}
		case x.ph.live():
			// Started since by another group restart or by Restart: its start
			// is done already.
		default:
			// A child that never ran in this Serve (its first start waited
			// in the queue) gets its first start, not a restart.
			x.terminated = false
			x.restartNext = x.ranIn == s.serves
			s.start(x)
		}
	}
	if !allowed {
		s.escalate(j.trigger)
	}
}
