package arbor

import (
	"context"
	"expvar"
	"time"
)

// Expvar returns an expvar.Var that shows the tree under s as JSON each time
// it is read: one entry per node, keyed by path, with the node's kind, state,
// restarts in the current Serve and Counters, and "total" for the whole
// tree's counters. Publish it under a name of your choice, once:
//
//	expvar.Publish("arbor", root.Expvar())
//
// Each read takes a snapshot with Tree, waiting at most a second for each
// supervisor.
func (s *Supervisor) Expvar() expvar.Var {
	return expvar.Func(func() any {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return metricsOf(s.Tree(ctx))
	})
}

// nodeMetrics is one node's entry in Expvar.
type nodeMetrics struct {
	Kind     string `json:"kind"`
	State    string `json:"state"`
	Restarts int    `json:"restarts"`
	Counters
}

func metricsOf(root *Node) map[string]any {
	m := make(map[string]any)
	for n := range root.All() {
		m[n.Path] = nodeMetrics{Kind: n.Kind.String(), State: n.State.String(), Restarts: n.Restarts, Counters: n.Counters}
	}
	m["total"] = root.Total()
	return m
}
