// Package arborhttp serves a supervision tree of package
// github.com/arborgo/arbor to operators and to the layer of supervision
// above the process:
//
//   - [ProbeHandler] answers Kubernetes liveness and readiness probes
//     (/livez, /readyz) from arbor.Supervisor.Health;
//   - [ViewHandler] serves a live web page of the tree, with the tree as JSON
//     and as text, from arbor.Supervisor.Tree;
//   - [Expvar] publishes the tree's states and counters through expvar.
//
// A typical program mounts them on an internal port:
//
//	mux := http.NewServeMux()
//	mux.Handle("/livez", arborhttp.ProbeHandler(root, arborhttp.Liveness))
//	mux.Handle("/readyz", arborhttp.ProbeHandler(root, arborhttp.Readiness))
//	mux.Handle("/arbor/", http.StripPrefix("/arbor", arborhttp.ViewHandler(root)))
//	expvar.Publish("arbor", arborhttp.Expvar(root))
//	mux.Handle("/debug/vars", expvar.Handler())
//
// The package uses only arbor's exported snapshots and keeps no state: each
// request asks the supervisors in turn, as arbor.Supervisor.Tree and Health
// do, and stops waiting when the request's context ends. It lives apart from arbor so that a program that
// supervises goroutines does not link net/http, and does not import expvar,
// whose init registers /debug/vars on http.DefaultServeMux. Importing this
// package does import expvar, with that effect.
//
// The live view and WithErrors show workers' errors, which may hold whatever
// a worker put in them: serve them to operators only.
package arborhttp
