package arbor

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWaitReady: WaitReady waits until the supervisor serves and every child
// is ready, may be called before Serve, and gives up when its context ends,
// whether or not the supervisor serves.
func TestWaitReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil))
		require.NoError(t, s.Add("slow", WorkerFunc(func(ctx context.Context) error {
			select {
			case <-time.After(3 * time.Second):
				Ready(ctx)
			case <-ctx.Done():
				return nil
			}
			<-ctx.Done()
			return nil
		}), WithReadiness(0)))

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		require.ErrorIs(t, s.WaitReady(ctx), context.DeadlineExceeded, "before Serve, bounded by ctx")

		// Abandoned calls cost nothing lasting.
		for range 100 {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			require.ErrorIs(t, s.WaitReady(ctx), context.Canceled)
		}
		s.mu.Lock()
		assert.LessOrEqual(t, len(s.loop.readyWait), 1, "calls that gave up are dropped")
		s.mu.Unlock()

		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- s.WaitReady(t.Context()) }() // before Serve: waits for it
		synctest.Wait()
		sv := serveBG(t, s)
		require.NoError(t, <-done)
		assert.Equal(t, 3*time.Second, time.Since(start), "ready when the slow child is")
		require.NoError(t, s.WaitReady(t.Context()), "ready now: at once")

		require.NoError(t, sv.stop())

		ctx2, cancel2 := context.WithTimeout(t.Context(), time.Second)
		defer cancel2()
		require.ErrorIs(t, s.WaitReady(ctx2), context.DeadlineExceeded, "after Serve returned, bounded by ctx")
	})
}
