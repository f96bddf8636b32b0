package pool

import "context"

// Heartbeat tells the pool that the attempt running with ctx (or a context
// derived from it) makes progress (see WithHeartbeat). It costs a clock
// read and an uncontended lock, and never waits for anything else; on another context, or one
// already done (an earlier attempt's), it does nothing. arbor.Heartbeat does not reach the pool: a worker of a pool is
// watched per attempt, not per worker.
func Heartbeat(ctx context.Context) {
	if ctx == nil || ctx.Err() != nil {
		return // an attempt that ended, or was cancelled: its beats count no more
	}
	if tok, ok := ctx.Value(attemptKey{}).(*attemptToken); ok {
		tok.s.beat(tok)
	}
}

// Recycle asks the pool to replace the worker running the attempt of ctx
// once the attempt returns, its state released and set up anew: for a
// handler that finds its connection broken, say. The attempt's result
// counts as usual. On another context, one already done, or outside an
// attempt (in a Setup), it does nothing. (In a pool without time limits or
// heartbeats, attempts share their worker's context: a goroutine that
// outlived its attempt recycles the worker after the attempt it runs.)
func Recycle(ctx context.Context) {
	if ctx == nil || ctx.Err() != nil {
		return
	}
	tok, _ := ctx.Value(attemptKey{}).(*attemptToken)
	if s, ok := ctx.Value(slotKey{}).(interface{ askRecycle(*attemptToken) }); ok {
		s.askRecycle(tok)
	}
}

// Attempt returns the number of the attempt running with ctx (1 for the
// first; for a task from a Source, its delivery count), or 0 on a context
// no attempt of a pool runs with: Celery's request.retries, plus one.
func Attempt(ctx context.Context) int {
	if ctx == nil {
		return 0
	}
	tok, _ := ctx.Value(attemptKey{}).(*attemptToken)
	if s, ok := ctx.Value(slotKey{}).(interface{ attemptNumber(*attemptToken) int }); ok {
		return s.attemptNumber(tok)
	}
	return 0
}
