// Package arbor supervises goroutines the way Erlang/OTP supervises
// processes.
//
// A [Supervisor] owns children, each a [Worker] (anything with
// Serve(ctx) error) run in its own goroutine. When a child exits, the
// supervisor decides by the child's [RestartPolicy] whether to restart it,
// restarts it and possibly its siblings by its [Strategy], and gives up when
// restarts come faster than its restart intensity allows. A *Supervisor is
// itself a Worker, so supervisors nest into trees: a failure that one level
// cannot absorb becomes the failure of that level's supervisor in its parent,
// and so on up to the root, whose Serve returns the error. A program then
// exits non-zero and the next layer of supervision (systemd, Kubernetes)
// restarts the process.
//
// The rules below follow OTP's supervisor unless they say otherwise.
//
// # Starting
//
// Serve starts the children in the order they were added, each in its own
// goroutine. Starting a child means starting its goroutine: the children's
// Serve calls then run concurrently, so a child must not assume that an
// earlier sibling is already up when its own Serve begins, unless that
// sibling was added with WithReadiness (see Readiness). A child's context carries the values of Serve's context but not
// its cancellation: the supervisor cancels each child itself, in the order
// given under Shutdown. A child added while the supervisor serves starts at
// once. New never fails; a bad option makes Serve return an error matching
// [ErrInvalid] before any child starts. If Serve's context is already done,
// Serve starts nothing and returns nil.
//
// # Exits
//
// A child that returns after its supervisor cancelled its context has
// stopped: that is never a failure, whatever it returns. Otherwise a nil
// return is a normal exit, and a non-nil error, a panic or a call to
// runtime.Goexit is a failure. Whether the supervisor cancelled a child is
// decided from the supervisor's own record, never from the error: a worker
// that returns context.Canceled from some inner call has failed. A panic is
// recovered in the child's goroutine and recorded as a [*PanicError] with the
// panic value and stack; runtime.Goexit is recorded as [ErrGoexit]. Nothing a
// child does crashes its supervisor.
//
// # Restart policies
//
//   - [Permanent] (the default): restarted after a normal exit or a failure.
//   - [Transient]: restarted after a failure only. After a normal exit it
//     stays, Stopped, and Restart can start it again.
//   - [Temporary]: never restarted. It disappears from Children when it exits
//     or is stopped.
//
// # Strategies
//
//   - [OneForOne] (the default): only the child that exited is restarted.
//   - [OneForAll]: every other running child is stopped, one at a time in
//     reverse start order; then every non-temporary child is started again in
//     start order. Temporary siblings are stopped and removed; non-temporary
//     siblings that were not running (stopped by Terminate, or transient after
//     a normal exit) are started too.
//   - [RestForOne]: as OneForAll, for the child that exited and the children
//     added after it; earlier children are not touched.
//
// A group restart counts as one restart. A sibling that exits by itself while
// a group restart is about to stop it counts as stopped, not as a new failure.
//
// # Restart decisions
//
// Besides its policy, a child's restart is decided by what it returns: an
// error wrapping [ErrDoNotRestart] means "done for good" (never restarted,
// settled as after a normal exit), and an error wrapping [ErrTerminateTree]
// shuts down its supervisor, whose Serve returns an error wrapping it, and so
// every supervisor above it, whatever their policies and intensities.
// [WithRestartIf] replaces a child's policy decision with a predicate of the
// error it returned (nil for a normal exit); Temporary children are still
// never restarted.
//
// # Backoff
//
// A restart may wait: [WithBackoff] sets a delay policy ([NoBackoff], the
// default as in OTP; [ConstantBackoff]; [ExponentialBackoff] with a cap,
// jitter and an optional immediate first restart; or a [Backoff] of your own)
// for all children when given to New, or for one child when given to Add.
// The delay depends on the child's count of consecutive failures (every exit
// that asks for a restart counts, a Permanent child's normal exit included),
// which starts again when the child has run for [WithBackoffReset] without
// failing (default [DefaultBackoffReset], 10 minutes, as Kubernetes; zero
// means never, as systemd), and when Restart starts it. A waiting child is
// Restarting, with ChildInfo.NextStart and ChildInfo.Failures set; it has no
// goroutine: the supervisor's own timer starts it. Terminate or Remove cancel
// the pending start, shutdown never waits for it, and a group restart that
// includes the child takes its place. A group restart (OneForAll,
// RestForOne) stops its children at once and starts them again after the
// delay of the child that triggered it.
//
// # Restart intensity
//
// A supervisor allows at most maxRestarts restarts within any sliding window
// of length period, the window's boundary included ([WithIntensity]; the
// default is 3 restarts in 5 seconds, Elixir's default, where OTP's is 1).
// maxRestarts = 0 means that the first restart needed gives up. A restart
// counts when it is performed: after its backoff delay, and for a group
// restart when its children start again. So a backoff that spaces restarts
// further apart than the window never exceeds the intensity (Kubernetes'
// "never give up"), while no backoff exceeds it fast (OTP's "let it crash,
// then escalate"). When a restart would exceed the intensity, the
// supervisor does not perform it:
// it stops all children in reverse start order and Serve returns an error that
// matches [ErrIntensityExceeded] and wraps the latest failure of the child
// whose restart it refused (for a group restart, of the child that
// triggered it), so that errors.Is and errors.As still reach it (for example the
// [*PanicError] of a worker several levels down). Restarts asked for with
// Restart, and stops with Terminate, are not counted.
//
// # Nesting
//
// A nested supervisor whose Serve returns an error is a failing child of its
// parent, which applies its own policy, strategy and intensity; with
// nested supervisors the number of restarts before the root gives up is the
// product of the intensities on the way. A Supervisor can be served again
// after its Serve returned, which is what a parent's restart does: its
// children's specs persist, their run state (restart counts, last errors)
// resets, and temporary children are gone. A second Serve while one is
// running returns [ErrAlreadyServing] at once.
//
// # Shutdown
//
// When Serve's context is done, when automatic shutdown fires, or when the
// intensity is exceeded, the children are stopped one at a time in reverse
// start order: the supervisor cancels the child's context and waits up to its
// shutdown timeout ([WithShutdownTimeout]; default 5 seconds for a worker,
// no limit for a nested *Supervisor, which bounds its own children; zero means
// no limit). Children that exit by themselves during shutdown are not
// restarted. Serve returns only when every child has returned or has been
// declared stuck. After a shutdown caused by its context or by automatic
// shutdown, Serve returns nil; it joins a [*StuckError] for each child still
// stuck, including those that nested supervisors report while they stop.
//
// # Stuck children
//
// Go cannot kill a goroutine. A child that has not returned when its shutdown
// timeout expires is declared Stuck: Children shows it, it is logged at error
// level with its stack, waiting Terminate and Remove calls return its
// [*StuckError] (which carries the goroutine's stack, taken from a dump of all
// goroutines at that moment), and Serve's error names it if it is still stuck
// when Serve returns. The supervisor never starts a second copy of a child
// while an earlier copy may still run: a restart that finds the child stuck
// waits until the old goroutine returns, then starts it. This holds across
// Serve calls: a supervisor served again while an earlier copy of a child
// still runs keeps that child Stuck until the copy returns, then starts it.
//
// # Readiness
//
// A child started with [WithReadiness] tells its supervisor that it is up by
// calling [Ready] on its context (or one derived from it); until then it is
// [Starting], and the supervisor starts no other child: every start (initial,
// restart, group restart, Add, Restart) waits its turn in start order, like
// OTP's synchronous start and systemd's Type=notify. The supervisor is never
// blocked meanwhile: Children, Terminate, Remove, Health and shutdown work,
// and terminating the child waited for lets the next start go. With a
// positive start timeout, a child not ready in time is cancelled with a cause
// matching [ErrStartTimeout] and, once it returns, fails with that error (so
// its restart policy, backoff and the intensity apply, and its restart comes
// before the children waiting behind it); if it does not return within its
// shutdown timeout it is declared stuck and the waiting starts go on. Other
// children are ready when they start. A nested *Supervisor is Starting until
// all its children are ready, then signals its parent by itself, once per
// Serve; its parent waits for it only if it was added with WithReadiness.
//
// # Heartbeats
//
// A child added with [WithHeartbeat] must call [Heartbeat] on its context at
// least once per period, from the moment it is ready. One that sends none
// for a whole period is hung: its context is cancelled with a cause matching
// [ErrHung] (see context.Cause), the supervisor logs it at error level, and
// when the child returns it is handled as a failure with that error. If it
// does not return within its shutdown timeout it is declared stuck, and its
// failure is handled once it returns. Heartbeats cost an atomic store; the
// supervisor checks them with its one timer, waking at most once per period
// per child.
//
// # Health
//
// [Supervisor.Health] answers, for the whole tree, whether it is live (every
// supervisor serves and has not failed, no child is stuck) and ready (every
// child ready, none starting, restarting, stopping or stuck), with one
// [Check] per supervisor and child, named by its path ("root/db/pool") and
// saying why when it is not. Supervisors answer from their own goroutine,
// which never waits for a child, so Health is prompt even while a child is
// slow to stop. [WithSystemd] sends the answers to systemd (READY=1,
// WATCHDOG=1 while live, STOPPING=1), and package
// github.com/arborgo/arbor/arborhttp serves them to Kubernetes probes: the
// tree is the innermost layer of supervision, the process manager the next.
//
// # Significant children
//
// With WithAutoShutdown([AnySignificant]) the supervisor shuts down, and Serve
// returns nil, when a child marked [Significant] exits by itself and is not
// restarted: a transient child's normal exit or a temporary child's exit.
// With [AllSignificant] it shuts down when the last significant child has
// done so. Terminate and group restarts never trigger it. Add rejects
// Significant on a Permanent child and under auto shutdown [Never].
//
// # Dynamic API
//
// Add, Terminate, Restart, Remove and Children are synchronous, like OTP's,
// and safe to call from any goroutine, including a child's own Serve:
// Terminate and Remove return once the child has returned or been declared
// stuck. A child that calls Terminate or Remove on itself cannot wait for its
// own return: the call cancels its context and returns nil at once, and the
// supervisor records the child as stopped (or deletes it) when it returns,
// declaring it stuck if it does not return within its shutdown timeout. A
// call that waits for an ancestor of the calling child (for example a worker
// that removes its own parent supervisor from the grandparent) waits until
// the caller is declared stuck, so do not do that. Before Serve and after it
// returned the calls edit the specs for the next Serve: Terminate marks a
// child so that Serve leaves it Stopped, Restart clears that mark. While the
// supervisor shuts down, Add and Restart do the same, and Terminate and Remove
// wait for the child to be stopped by the shutdown.
//
// # Events and logging
//
// Every lifecycle transition is an [Event]: a supervisor started or stopped;
// a child started, restarted, ready, exited, failed, stopped, hung or stuck
// (and unstuck); a restart scheduled with its delay; the intensity exceeded.
// Each names the supervisor by its path in the tree ("root/db/pool"), the
// child, the error and the restart count. [WithEventHandler] registers a
// handler for a supervisor and every supervisor nested in it.
//
// Delivery: the root of a tree starts one goroutine, at its first event, that
// calls the handlers (and the loggers) one event at a time, in the order the
// supervisors emitted them: a supervisor's own events in the order they
// happened, and events of different supervisors in the order they reached the
// tree's queue. Every handler sees the same order. Supervisors never call a
// handler themselves, so a slow handler never slows them: events queue, at
// most [EventBuffer] besides the batch being delivered, and beyond that new
// events are dropped and counted in the Dropped field of the next event
// delivered. A supervisor's final EventSupervisorStopped is always queued. A
// handler that panics is recovered and logged, and keeps receiving events.
// The root's Serve returns after its handlers have seen its last event.
//
// Logging is a built-in handler: failures (warning), hung and stuck children
// with their stacks, exceeded intensity and panicking policies (error),
// restarts and scheduled restarts (info), other transitions (debug) go to
// the supervisor's *slog.Logger ([WithLogger]), which nested supervisors
// inherit, slog.Default() for a root without one. Attributes are named like
// the Event fields (supervisor, child, restarts, error, delay, stack).
//
// # Snapshots and metrics
//
// [Supervisor.Tree] returns a snapshot of the whole hierarchy, nested
// supervisors expanded: per node its path, kind, state, restarts, last
// error, the time it entered its state, its next start, and [Counters]
// (starts, failures, restarts, stuck episodes over the supervisor's life).
// Walk it with [Node.All], print it with [Node.String] (like pstree), or
// marshal it to JSON. Package github.com/arborgo/arbor/arborhttp publishes
// the same through expvar and serves a live web page of it.
//
// # Costs
//
// Each supervisor is one goroutine, the one that calls Serve, which owns all
// of its state and sleeps while nothing happens: no polling, and no helper
// goroutine per child. A tree adds one goroutine for its events once it has
// any to deliver, and a root WithSystemd one for its notifications. Each child costs its own goroutine (running its Serve)
// and a small record. Exits reach the supervisor through a mailbox that never
// blocks the child; one timer bounds the stop in progress and another serves
// every delayed restart, start timeout and heartbeat deadline.
package arbor
