package arbor

import (
	"context"
	"time"
)

// Health is the health of a supervision tree at one moment: whether it is
// live and ready, and one Check for every supervisor and child in it.
type Health struct {
	// Live reports whether every check is live: every supervisor serves and
	// has not failed, and no child is stuck. A tree that is not live needs
	// its process restarted.
	Live bool
	// Ready reports whether every check is ready: every child has signalled
	// readiness (or does not need to) and none is starting, restarting,
	// stopping or stuck.
	Ready bool
	// Checks lists the tree depth first: each supervisor, then its children
	// in start order, a nested supervisor's children right after it.
	Checks []Check
}

// Check is the health of one supervisor or child of a tree.
type Check struct {
	// Path names the node: the root's name, then child names joined with
	// '/', such as "root/db/pool".
	Path string
	// Live and Ready are the node's own answers (see Health).
	Live, Ready bool
	// Reason says why the node is not live or not ready, such as
	// "restarting" or "stuck"; it is empty when it is both. It never
	// contains a worker's error.
	Reason string
	// Err is the node's error when it is not live or not ready: a child's
	// last failure, or why a supervisor shuts down. It may hold data a worker
	// put in its error, so do not show it to untrusted clients.
	Err error
}

// supSnap is what one supervisor reports about itself for Health and Tree.
type supSnap struct {
	serving  bool
	shutting bool
	reason   error
	since    time.Time // when the current Serve started
	children []childSnap
}

type childSnap struct {
	info  ChildInfo
	alive bool // a copy runs
	err   error
	since time.Time
	count Counters
	sub   *Supervisor // a nested supervisor, or nil
}

// snapNow describes the supervisor, on its loop or under mu.
func (s *Supervisor) snapNow() *supSnap {
	h := &supSnap{serving: s.serving}
	if s.serving {
		h.shutting, h.reason, h.since = s.l.shutting, s.l.reason, s.l.started
	}
	h.children = make([]childSnap, 0, len(s.byName))
	for c := s.head; c != nil; c = c.next {
		ch := childSnap{info: c.info(), alive: c.alive, err: c.lastErr, count: c.count}
		if c.since != 0 {
			ch.since = time.Unix(0, c.since)
		}
		if c.stuck != nil {
			ch.err = c.stuck
		}
		ch.sub, _ = c.worker.(*Supervisor)
		h.children = append(h.children, ch)
	}
	return h
}

// Health reports whether the tree under s is live and ready, and why not,
// down to every nested supervisor and child. It asks each supervisor in
// turn, never waits for a child, and answers promptly even while a
// supervisor waits for a slow child to stop. If ctx ends before a supervisor
// answers (one busy in a slow log handler, say), that supervisor is reported
// not live with the reason "no answer".
func (s *Supervisor) Health(ctx context.Context) Health {
	h := Health{Live: true, Ready: true}
	s.health(ctx, s.name, Running, nil, &h)
	return h
}

// health appends the checks of s, served as a child in state st (Running for
// the root), at path.
func (s *Supervisor) health(ctx context.Context, path string, st State, lastErr error, h *Health) {
	a, ok := s.callCtx(ctx, &request{kind: reqSnap})
	me := Check{Path: path, Live: true, Ready: true}
	sh := a.snap
	switch {
	case !ok:
		me.Live, me.Ready, me.Reason, me.Err = false, false, "no answer", ctx.Err()
	case st == Stuck:
		me.Live, me.Ready, me.Reason, me.Err = false, false, "stuck", lastErr
	case !sh.serving:
		me.Live, me.Ready, me.Reason = false, false, "not serving"
	case sh.reason != nil:
		me.Live, me.Ready, me.Reason, me.Err = false, false, "failed, shutting down", sh.reason
	case sh.shutting:
		me.Ready, me.Reason = false, "shutting down"
	case st != Running:
		me.Ready, me.Reason = false, st.String()
	}
	h.add(me)
	if !ok {
		return
	}
	for _, c := range sh.children {
		p := path + "/" + c.info.Name
		if c.sub != nil && c.alive {
			c.sub.health(ctx, p, c.info.State, c.err, h)
			continue
		}
		ck := Check{Path: p, Live: true, Ready: true}
		switch c.info.State {
		case Stuck:
			ck.Live, ck.Ready = false, false
		case Starting, Restarting, Stopping:
			ck.Ready = false
		}
		if !ck.Ready {
			ck.Reason, ck.Err = c.info.State.String(), c.err
		}
		h.add(ck)
	}
}

func (h *Health) add(c Check) {
	h.Live = h.Live && c.Live
	h.Ready = h.Ready && c.Ready
	h.Checks = append(h.Checks, c)
}

// callCtx is call that gives up when ctx is done. The reply channel has room
// for the late answer, so the loop never blocks on it.
func (s *Supervisor) callCtx(ctx context.Context, req *request) (answer, bool) {
	s.mu.Lock()
	s.lazyInit()
	if !s.serving {
		s.drainOffline()
		a := s.offline(req)
		s.mu.Unlock()
		return a, true
	}
	req.reply = make(chan answer, 1)
	s.inbox = append(s.inbox, message{req: req})
	s.mu.Unlock()
	s.ring()
	select {
	case a := <-req.reply:
		return a, true
	case <-ctx.Done():
		return answer{}, false
	}
}
