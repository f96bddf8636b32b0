package arborhttp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/arborgo/arbor"
	"github.com/arborgo/arbor/arborhttp"
)

// ViewHandler serves a live view of the tree: mount it under a path ending
// in a slash, with the path stripped, on a port only operators can reach,
// and open /arbor/ in a browser. /arbor/tree.txt is the same tree as text.
func ExampleViewHandler() {
	idle := arbor.WorkerFunc(func(ctx context.Context) error {
		<-ctx.Done()
		return nil
	})
	root := arbor.New("root", arbor.WithLogger(nil))
	db := arbor.New("db", arbor.WithLogger(nil))
	must(db.Add("conn", idle))
	must(root.Add("db", db))
	must(root.Add("api", idle))

	mux := http.NewServeMux()
	mux.Handle("/arbor/", http.StripPrefix("/arbor", arborhttp.ViewHandler(root)))
	// http.ListenAndServe("127.0.0.1:8081", mux) in a program.

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- root.Serve(ctx) }()
	for !root.Health(ctx).Ready {
		time.Sleep(time.Millisecond)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/arbor/tree.txt", nil))
	fmt.Print(rec.Body)
	cancel()
	<-done
	// Output:
	// root [supervisor] running
	// ├─ db [supervisor] running
	// │  └─ conn running
	// └─ api running
}

// ProbeHandler answers Kubernetes liveness and readiness probes.
func ExampleProbeHandler() {
	root := arbor.New("root", arbor.WithLogger(nil))
	must(root.Add("api", arbor.WorkerFunc(func(ctx context.Context) error {
		<-ctx.Done()
		return nil
	})))
	mux := http.NewServeMux()
	mux.Handle("/livez", arborhttp.ProbeHandler(root, arborhttp.Liveness))
	mux.Handle("/readyz", arborhttp.ProbeHandler(root, arborhttp.Readiness))

	probe := func(target string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		fmt.Printf("GET %s: %d\n%s\n", target, rec.Code, rec.Body)
	}
	probe("/readyz") // before Serve
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- root.Serve(ctx) }()
	for !root.Health(ctx).Ready {
		time.Sleep(time.Millisecond)
	}
	probe("/readyz?verbose")
	cancel()
	<-done
	// Output:
	// GET /readyz: 503
	// [-]root failed: not serving
	// [-]root/api failed: not serving
	// readyz check failed
	//
	// GET /readyz?verbose: 200
	// [+]root ok
	// [+]root/api ok
	// readyz check passed
}

// Expvar shows the tree's states and counters as JSON each time it is read;
// publish it once, under a name of your choice, and /debug/vars shows it.
// Here api failed once and was restarted.
func ExampleExpvar() {
	var copies atomic.Int32
	root := arbor.New("root", arbor.WithLogger(nil))
	must(root.Add("api", arbor.WorkerFunc(func(ctx context.Context) error {
		if copies.Add(1) == 1 {
			return errors.New("bind: address in use")
		}
		<-ctx.Done()
		return nil
	})))
	v := arborhttp.Expvar(root)
	// expvar.Publish("arbor", v) in a program.

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- root.Serve(ctx) }()
	for copies.Load() < 2 || !root.Health(ctx).Ready {
		time.Sleep(time.Millisecond)
	}
	fmt.Println(v)
	cancel()
	<-done
	// Output:
	// {"nodes":{"root":{"kind":"supervisor","state":"running","restarts":0,"counters":{"starts":0,"failures":0,"restarts":0,"stuck":0}},"root/api":{"kind":"worker","state":"running","restarts":1,"counters":{"starts":2,"failures":1,"restarts":1,"stuck":0}}},"total":{"starts":2,"failures":1,"restarts":1,"stuck":0}}
}

// must stops an example at its first error: in an example, a refused Add is
// a bug.
func must(err error) {
	if err != nil {
		panic(err)
	}
}
