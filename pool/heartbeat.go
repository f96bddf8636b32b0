package pool

import "context"

// Heartbeat tells the pool that the attempt running with ctx (or a context
// derived from it) makes progress (see WithHeartbeat). It costs a clock
// read and an atomic store, and never blocks; on another context, or one
// already done (an earlier attempt's), it does nothing. arbor.Heartbeat does not reach the pool: a worker of a pool is
// watched per attempt, not per worker.
func Heartbeat(ctx context.Context) {
	if ctx.Err() != nil {
		return // an attempt that ended, or was cancelled: its beats count no more
	}
	if s, ok := ctx.Value(slotKey{}).(interface{ beat() }); ok {
		s.beat()
	}
}

// Recycle asks the pool to replace the worker running the attempt of ctx
// once the attempt returns, its state released and set up anew: for a
// handler that finds its connection broken, say. The attempt's result
// counts as usual. On another context, or outside an attempt (in a Setup),
// it does nothing.
func Recycle(ctx context.Context) {
	if s, ok := ctx.Value(slotKey{}).(interface{ askRecycle() }); ok {
		s.askRecycle()
	}
}
