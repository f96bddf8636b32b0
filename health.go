package arbor

import "context"

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

// Health reports whether the tree under s is live and ready, and why not,
// down to every nested supervisor and child: Tree(ctx).Health(). It never
// waits for a child, and answers promptly even while a supervisor waits for
// a slow child to stop. If ctx ends before a supervisor answers (one busy in
// a slow restart predicate, say), that supervisor is reported not live with
// the reason "no answer".
func (s *Supervisor) Health(ctx context.Context) Health {
	return s.Tree(ctx).Health()
}

// Health derives the health of the tree under n from the snapshot. A root
// is live while it serves and has not failed; while it does not serve,
// nothing under it is live or ready either. A nested supervisor is live
// unless it is stuck or failed: in the moments its parent has started it
// and it does not serve yet, or it returned and its parent has not seen
// that yet, it is live but not ready; one its parent keeps Stopped is live
// and ready. A child is live unless stuck, and ready when running or
// Stopped.
func (n *Node) Health() Health {
	nodes := 0
	for range n.All() {
		nodes++
	}
	h := Health{Live: true, Ready: true, Checks: make([]Check, 0, nodes)}
	down := n.sup != nil && n.sup.noAnswer == nil && !n.sup.serving
	n.health(&h, true, false, down)
	return h
}

// health appends the checks of n and below; under a node exempt from
// readiness every check is ready, its reason kept; under a root that does
// not serve (down), no check is live or ready.
func (n *Node) health(h *Health, root, exempt, down bool) {
	exempt = exempt || n.exempt
	add := func(ck Check) {
		if down && ck.Live {
			ck.Live, ck.Ready, ck.Reason = false, false, "not serving"
		}
		if exempt && !ck.Ready && !down {
			ck.Ready = true
			ck.Reason += " (exempt from readiness)"
		}
		h.add(ck)
	}
	if n.Kind == KindWorker || n.sup == nil {
		ck := Check{Path: n.Path, Live: true, Ready: true}
		switch n.State {
		case Stuck:
			ck.Live, ck.Ready = false, false
		case Starting, Restarting, Stopping:
			ck.Ready = false
		}
		if !ck.Ready {
			ck.Reason, ck.Err = n.State.String(), n.LastError
		}
		add(ck)
		return
	}
	sn := n.sup
	seen := n.State // as its parent sees it; a root is seen running
	if root {
		seen = Running
	}
	me := Check{Path: n.Path, Live: true, Ready: true}
	switch {
	case sn.noAnswer != nil:
		me.Live, me.Ready, me.Reason, me.Err = false, false, "no answer", sn.noAnswer
	case seen == Stuck:
		me.Live, me.Ready, me.Reason, me.Err = false, false, "stuck", n.LastError
	case !sn.serving && root:
		me.Live, me.Ready, me.Reason = false, false, "not serving"
	case !sn.serving && seen != Stopped:
		// Starting, or just returned: its parent sees to it.
		me.Ready, me.Reason = false, "not serving"
	case sn.reason != nil:
		me.Live, me.Ready, me.Reason, me.Err = false, false, "failed, shutting down", sn.reason
	case sn.shutting:
		me.Ready, me.Reason = false, "shutting down"
	case seen != Running && sn.serving:
		me.Ready, me.Reason = false, seen.String()
	}
	add(me)
	for _, c := range n.Children {
		c.health(h, false, exempt, down)
	}
	for _, err := range sn.orphans { // still under the tree, though removed from it
		ck := Check{Path: n.Path, Reason: "stuck", Err: err}
		if se, ok := err.(*StuckError); ok {
			ck.Path = se.Supervisor + "/" + se.Child
		}
		add(ck)
	}
}

func (h *Health) add(c Check) {
	h.Live = h.Live && c.Live
	h.Ready = h.Ready && c.Ready
	h.Checks = append(h.Checks, c)
}
