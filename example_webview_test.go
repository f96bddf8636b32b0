package arbor_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/arborgo/arbor"
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
	_ = db.Add("conn", idle)
	_ = root.Add("db", db)
	_ = root.Add("api", idle)

	mux := http.NewServeMux()
	mux.Handle("/arbor/", http.StripPrefix("/arbor", arbor.ViewHandler(root)))
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
