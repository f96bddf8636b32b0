package arborhttp

import (
	"context"
	"time"

	"golang.org/x/sync/singleflight"
)

// walkTimeout bounds one shared walk of a tree, whichever clients wait for
// it.
const walkTimeout = 10 * time.Second

// walks merges concurrent requests for the same answer into one walk of the
// tree: whatever the number of clients polling a handler, at most one walk
// per kind of answer runs at a time, and its result (the encoded body, for
// the live view) is shared. A client that gives up leaves the walk to the
// others; the walk itself is bounded by walkTimeout, not by the context of
// the client that happened to start it.
type walks struct{ g singleflight.Group }

// do returns fn's result for key, from a walk in flight or a new one, or
// false if ctx ends first.
func (w *walks) do(ctx context.Context, key string, fn func(context.Context) any) (any, bool) {
	ch := w.g.DoChan(key, func() (any, error) {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), walkTimeout)
		defer cancel()
		return fn(wctx), nil
	})
	select {
	case r := <-ch:
		return r.Val, true
	case <-ctx.Done():
		return nil, false
	}
}
