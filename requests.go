package arbor

import (
	"context"
	"fmt"
)

// message is an exit of a child copy, its readiness signal, or a request.
type message struct {
	cp    *copyCtx // the copy that exited or signalled readiness
	err   error    // what the copy returned
	class errClass // what err matches, worked out in the copy's goroutine
	ready bool     // cp signalled readiness
	req   *request
}

type reqKind uint8

const (
	reqAdd reqKind = iota
	reqTerminate
	reqRestart
	reqRemove
	reqChildren
	reqSnap
	reqReady
)

// request is a call of the API, answered on reply.
type request struct {
	kind  reqKind
	name  string
	c     *child          // reqAdd: the new child
	self  *copyCtx        // the caller's own copy of a child of this supervisor, or nil
	ctx   context.Context // reqReady, reqSnap: the caller's, to drop a call that gave up
	reply chan answer     // size 1, so that answering never blocks
}

type answer struct {
	err   error
	infos []ChildInfo
	snap  *supSnap
}

// call has req answered: by the loop while the supervisor serves, or by the
// calling goroutine under mu, through the same code, when it does not (a
// WaitReady call may then wait for a later Serve). It gives up when ctx is
// done; the reply channel has room for the late answer, so nobody ever
// blocks on it.
func (s *Supervisor) call(ctx context.Context, req *request) (answer, error) {
	if s.byName == nil {
		return answer{}, errZero
	}
	if ctx == nil {
		return answer{}, invalidf("nil context")
	}
	req.reply = make(chan answer, 1)
	s.mu.Lock()
	if s.serving {
		s.inbox = append(s.inbox, message{req: req})
		s.mu.Unlock()
		s.ring()
	} else {
		s.drain() // exits that came while no loop ran
		s.apply(req)
		s.mu.Unlock()
	}
	select {
	case a := <-req.reply:
		return a, a.err
	case <-ctx.Done():
		select {
		case a := <-req.reply: // answered as ctx ended: a child stopping itself
			return a, a.err
		default:
		}
		return answer{}, context.Cause(ctx)
	}
}

// post hands a message to the supervisor. It never blocks: the inbox grows
// by at most one exit and one readiness signal per copy started, and one
// message per call.
func (s *Supervisor) post(m message) {
	s.mu.Lock()
	if !s.serving { // settled now, by the same code, so that nothing waits for a call
		s.drain()
		s.handle([]message{m})
		s.mu.Unlock()
		return
	}
	s.inbox = append(s.inbox, m)
	s.mu.Unlock()
	s.ring()
}

func (s *Supervisor) ring() {
	select {
	case s.wake <- struct{}{}:
	default: // the loop has a wake-up pending and will see the message
	}
}

// drain handles what arrived in the inbox: on the loop, or under mu when no
// loop runs.
func (s *Supervisor) drain() {
	if !s.serving {
		batch := s.inbox
		s.inbox = nil
		s.handle(batch)
		return
	}
	s.mu.Lock()
	batch := s.inbox
	s.inbox = s.loop.spare
	s.mu.Unlock()
	s.handle(batch)
	s.loop.spare = batch[:0]
}

func (s *Supervisor) handle(batch []message) {
	var snap *supSnap // one snapshot answers every request for one in the batch
	for i := range batch {
		m := batch[i]
		batch[i] = message{}
		switch {
		case m.req != nil && m.req.kind == reqSnap:
			if m.req.ctx.Err() != nil {
				continue // the caller gave up: it costs nothing
			}
			if snap == nil {
				snap = s.snapNow()
			}
			m.req.reply <- answer{snap: snap}
		case m.req != nil:
			s.apply(m.req)
		case m.ready:
			s.readied(m.cp)
		default:
			s.copyReturned(m.cp, m.err, m.class)
		}
	}
}

// active reports whether the supervisor starts children: it serves and does
// not shut down. Otherwise starts only edit what the next Serve does.
func (s *Supervisor) active() bool { return s.serving && !s.loop.shutting }

// apply answers one request. It is the one place that decides what Add,
// Terminate, Restart, Remove, Children and the snapshots do, whether the
// supervisor serves, shuts down or does not serve.
func (s *Supervisor) apply(req *request) {
	switch req.kind {
	case reqChildren:
		req.reply <- answer{infos: s.childInfos()}
		return
	case reqSnap:
		req.reply <- answer{snap: s.snapNow()}
		return
	case reqReady:
		s.addReadyWaiter(req)
		return
	case reqAdd:
		if s.byName[req.name] != nil {
			req.reply <- answer{err: fmt.Errorf("%w: %q", ErrAlreadyExists, req.name)}
			return
		}
		if sub := req.c.sub; sub != nil {
			if err := s.adopt(req.name, sub); err != nil {
				req.reply <- answer{err: err}
				return
			}
		}
		s.link(req.c)
		if s.active() {
			s.start(req.c)
		}
		req.reply <- answer{}
		return
	}
	c := s.byName[req.name]
	if c == nil {
		req.reply <- answer{err: fmt.Errorf("%w: %q", ErrNotFound, req.name)}
		return
	}
	switch req.kind {
	case reqRestart:
		if c.ph != phIdle {
			req.reply <- answer{err: fmt.Errorf("%w: %q is %v", ErrNotStopped, c.name, c.state())}
			return
		}
		c.terminated = false
		if c.cold != nil {
			c.cold.failures = 0
		}
		if s.active() {
			s.start(c)
		}
		req.reply <- answer{}
	case reqTerminate, reqRemove:
		s.stopChild(c, req)
	}
}

// stopChild carries out Terminate (or Remove): no pending start of c
// happens any more, and its live copy, if any, stops.
func (s *Supervisor) stopChild(c *child, req *request) {
	c.gen++ // group restarts queued before this call do not start it
	c.pendingStarts, c.restartNext = 0, false
	c.terminated = true
	remove := req.kind == reqRemove || c.restart == Temporary
	switch c.ph {
	case phIdle, phDelayed, phGrouped, phQueued:
		s.cancelStart(c)
		if remove {
			s.delete(c)
		} else {
			s.setPhase(c, phIdle)
		}
		req.reply <- answer{}
		return
	}
	// A copy runs.
	switch {
	case remove:
		c.then = thenRemove
	case c.then != thenRemove: // a Terminate does not undo a Remove under way
		c.then = thenStopped
	}
	if c.ph == phStuck {
		c.claimed = true // its return is a stop, not the failure it was cancelled for
		req.reply <- answer{err: c.stuckErr()}
		return
	}
	if req.self == c.cp {
		// The caller is the copy itself, or runs under it: it cannot wait
		// for its own return. Answered before the cancellation, which ends
		// the caller's wait.
		req.reply <- answer{}
		s.cancelCopy(c, nil)
		return
	}
	x := c.coldRec()
	x.waiters = append(x.waiters, req)
	if !c.claimed {
		c.claimed = true
		if s.active() {
			s.loop.jobs = append(s.loop.jobs, &job{stops: []stopRef{{c: c, cp: c.cp, gen: c.gen}}, slot: -1})
		}
	}
}
