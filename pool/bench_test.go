package pool

import (
	"context"
	"strconv"
	"testing"
)

// BenchmarkSubmitWait measures the submit-to-result path of a no-op task;
// bench/ compares it with other pools.
func BenchmarkSubmitWait(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) {
			p, err := New("bench", func(_ context.Context, n int) (int, error) { return n, nil },
				WithWorkers(workers), WithQueue(1<<16), WithLogger(nil))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- p.Serve(ctx) }()
			tasks := make([]*Task[int, int], 0, 1024)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t, err := p.Submit(ctx, i)
				if err != nil {
					b.Fatal(err)
				}
				tasks = append(tasks, t)
				if len(tasks) == cap(tasks) {
					for _, t := range tasks {
						if _, err := t.Wait(ctx); err != nil {
							b.Fatal(err)
						}
					}
					tasks = tasks[:0]
				}
			}
			for _, t := range tasks {
				if _, err := t.Wait(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cancel()
			<-done
		})
	}
}
