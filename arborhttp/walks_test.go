package arborhttp

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestWalksShared: concurrent requests for one answer share one walk, a
// client that gives up returns at once and leaves the walk to the others,
// and the walk is not cancelled with the client that started it. (Issue 11,
// points 9b and 10: viewers and probes cannot pile work on a supervisor.)
func TestWalksShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w walks
		var runs atomic.Int32
		release := make(chan struct{})
		walk := func(ctx context.Context) any {
			runs.Add(1)
			select {
			case <-release:
				return "answer"
			case <-ctx.Done():
				return "cancelled"
			}
		}
		first, cancelFirst := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() {
			_, ok := w.do(first, "k", walk)
			assert.False(t, ok, "the first client gave up")
		})
		synctest.Wait()
		results := make([]any, 20)
		for i := range results {
			wg.Go(func() { results[i], _ = w.do(t.Context(), "k", walk) })
		}
		synctest.Wait()
		cancelFirst() // the client that started the walk leaves
		synctest.Wait()
		time.Sleep(time.Second)
		close(release)
		wg.Wait()
		assert.EqualValues(t, 1, runs.Load(), "one walk for 21 requests")
		for _, r := range results {
			assert.Equal(t, "answer", r, "the walk went on without its first client")
		}
	})
}
