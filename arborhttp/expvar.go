package arborhttp

import (
	"context"
	"expvar"
	"time"

	"github.com/arborgo/arbor"
)

// Expvar returns an expvar.Var that shows the tree under s as JSON each time
// it is read:
//
//	{
//	  "nodes": {
//	    "root":         {"kind": "supervisor", "state": "running", "restarts": 0, "counters": {...}},
//	    "root/db":      {"kind": "supervisor", "state": "running", "restarts": 0, "counters": {...}},
//	    "root/db/conn": {"kind": "worker", "state": "restarting", "restarts": 2,
//	                     "counters": {"starts": 3, "failures": 3, "restarts": 2, "stuck": 0}}
//	  },
//	  "total": {"starts": 4, "failures": 3, "restarts": 2, "stuck": 0}
//	}
//
// "nodes" has one entry per node, keyed by its path, with its kind, its
// state, its restarts in the current Serve (arbor.Node.Restarts) and its
// lifetime arbor.Counters; "total" sums the counters of the whole tree
// (arbor.Node.Total). The nodes sit under their own key so that no path,
// such as that of a root named "total", can collide with the sums. Publish
// it under a name of your choice, once:
//
//	expvar.Publish("arbor", arborhttp.Expvar(root))
//
// Each read takes a snapshot with arbor.Supervisor.Tree, waiting at most a
// second in all; supervisors that have not answered by then are shown
// without their children.
func Expvar(s *arbor.Supervisor) expvar.Var {
	return expvar.Func(func() any {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return metricsOf(s.Tree(ctx))
	})
}

// metrics is what Expvar shows.
type metrics struct {
	Nodes map[string]nodeMetrics `json:"nodes"`
	Total arbor.Counters         `json:"total"`
}

// nodeMetrics is one node's entry in metrics.
type nodeMetrics struct {
	Kind     string         `json:"kind"`
	State    string         `json:"state"`
	Restarts int            `json:"restarts"`
	Counters arbor.Counters `json:"counters"`
}

func metricsOf(root *arbor.Node) metrics {
	m := metrics{Nodes: make(map[string]nodeMetrics), Total: root.Total()}
	for n := range root.All() {
		m.Nodes[n.Path] = nodeMetrics{Kind: n.Kind.String(), State: n.State.String(), Restarts: n.Restarts, Counters: n.Counters}
	}
	return m
}
