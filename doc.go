// Package arbor supervises goroutines the way Erlang/OTP supervises
// processes.
//
// A [Supervisor] owns children, each a [Worker] (anything with
// Serve(ctx) error) run in its own goroutine. When a child exits, the
// supervisor decides by its [RestartPolicy] whether to restart it, restarts
// it and possibly its siblings by its [Strategy], and gives up when restarts
// come faster than its restart intensity allows. A *Supervisor is a Worker,
// so supervisors nest into trees (so does a [Nested] worker, which serves a
// supervisor of its own, such as package pool's Pool): a failure one level
// cannot absorb becomes the failure of that level in its parent, up to the
// root, whose Serve returns it; the process then exits and systemd or
// Kubernetes restarts it.
// The rules follow OTP's supervisor except where they say otherwise.
//
// # Starting and exits
//
// Serve starts the children in the order they were added (start order),
// each in its own goroutine; their Serve calls then run concurrently, unless
// [WithReadiness] orders them. A child's context carries the values of
// Serve's context, not its cancellation: the supervisor cancels each child
// itself. A child added while the supervisor serves starts at once. New never
// fails; a bad option makes Serve return an error matching [ErrInvalid], and
// so does an Add refused as invalid while the supervisor did not serve
// (unless the same name was added since), so that no mistake in the code
// building a tree goes unnoticed. If
// Serve's context is already done, Serve starts nothing and returns nil.
//
// A child that returns after its supervisor cancelled its context has
// stopped, whatever it returns. Otherwise nil is a normal exit, and an error,
// a panic ([*PanicError]) or runtime.Goexit ([ErrGoexit]) is a failure.
// Whether the supervisor cancelled a child is read from its own records,
// never from the error. A worker's error value is not trusted: the
// supervisor never runs its methods on its own goroutine, and a method that
// panics or an Unwrap that cycles is contained: what an error wraps is
// looked at breadth first, up to 1000 distinct errors, so an
// [ErrDoNotRestart] or [ErrTerminateTree] beyond that is not seen.
//
// # Restarts
//
// [Permanent] children (the default) are restarted after any exit,
// [Transient] ones after a failure only (after a normal exit they stay
// Stopped), [Temporary] ones never (they are removed when they exit or
// stop). [WithRestartIf] decides by the error instead of the policy. An error
// wrapping [ErrDoNotRestart] is never restarted; one wrapping
// [ErrTerminateTree] shuts down every supervisor up to the root. A restart
// predicate or backoff policy of the user's that panics or calls
// runtime.Goexit is reported and the child's policy decides, or it restarts
// at once.
//
// Under [OneForOne] (the default) only the exited child restarts. Under
// [OneForAll] the other live children are stopped one at a time in reverse
// start order, then every non-temporary child starts again in start order,
// Stopped ones included. [RestForOne] does the same for the child and those
// added after it. A group restart counts as one restart; a member that exits
// by itself while the group restart is about to stop it has stopped.
//
// A restart may wait: [WithBackoff] takes a [Backoff] ([ConstantBackoff],
// [ExponentialBackoff], or your own), computed from the child's count of
// consecutive failures, which starts again once the child ran
// [WithBackoffReset] (default [DefaultBackoffReset]) or after Restart. A
// waiting child is Restarting and has no goroutine. A group restart waits
// for the delay of the child that triggered it.
//
// # Restart intensity
//
// A supervisor performs at most maxRestarts restarts within any window of
// period, boundaries included ([WithIntensity]; default 3 in 5 seconds;
// maxRestarts 0 gives up at the first restart needed). A restart counts
// when it is performed, so a backoff that spaces restarts wider than the
// window never gives up. When a restart would exceed the intensity, the
// supervisor shuts down and Serve returns an [*IntensityError] that wraps
// the child's last failure. Restart and Terminate are not counted.
//
// # Shutdown and stuck children
//
// When Serve's context is done, automatic shutdown fires or the intensity is
// exceeded, the live children are stopped one at a time in reverse start
// order: the supervisor cancels the child's context and waits up to its
// shutdown timeout ([WithShutdownTimeout]; default
// [DefaultShutdownTimeout] for a worker, no limit for a nested *Supervisor;
// zero means no limit); [WithShutdownDeadline] bounds the whole shutdown,
// for a grace period set outside the process. A shutdown begins with an
// EventSupervisorStopping that carries its reason. Serve then returns nil
// after a shutdown by its context or by automatic shutdown, or the
// intensity error, joined with a [*StuckError] for each child still stuck,
// nested supervisors' included (also those of a nested supervisor removed
// while they were stuck). A root's Serve then waits at most 5 seconds more
// for its event handlers and logger (see Events).
//
// Go cannot kill a goroutine. A child that has not returned when its
// shutdown timeout expires is Stuck: the supervisor stops waiting for it,
// answers waiting Terminate and Remove calls with its *StuckError, logs it
// with its stack, and never starts it again while the copy runs, across
// Serve calls too. A restart due meanwhile happens when the copy returns.
//
// # Readiness, heartbeats and health
//
// A child added with [WithReadiness] is Starting until it calls [Ready] on
// its context, and every later start waits for that, as OTP's synchronous
// start and systemd's Type=notify. A child not ready within its start
// timeout is cancelled with a cause matching [ErrStartTimeout] and fails
// with it once it returns. A nested *Supervisor is Starting until all its
// children are ready. [Supervisor.WaitReady] waits for a whole tree.
//
// A child added with [WithHeartbeat] calls [Heartbeat] at least once per
// period once ready; one that misses a period is hung: it is cancelled with
// a cause matching [ErrHung] and fails with it once it returns.
//
// [Supervisor.Health] says whether the tree is live (every supervisor
// serves and has not failed, no child is stuck) and ready (no child
// starting, restarting, stopping or stuck, except children added
// [WithReadinessExempt]), with a [Check] per node.
// [Supervisor.Tree] is the snapshot it derives from. [WithSystemd] reports
// readiness and liveness to systemd; package arborhttp serves Kubernetes
// probes, a live view and expvar metrics.
//
// # Significant children
//
// Under WithAutoShutdown([AnySignificant]) a supervisor shuts down, and Serve
// returns nil, when a child added [WithSignificant] exits by itself and is
// not restarted; under [AllSignificant], when the last one has. Terminate
// and group restarts never trigger it.
//
// # Dynamic API
//
// Add, Terminate, Restart, Remove, Children, Tree, Health and WaitReady are
// safe from any goroutine, including a child's own Serve, and are answered
// by the supervisor's goroutine while it serves, or directly while it does
// not, by the same rules. Terminate and Remove wait for the child to return
// or be declared stuck, bounded by their context. A child that calls them
// with its own context (or one derived from it), naming itself or a nested
// supervisor it runs under, is recognised: the call cancels that child and
// returns nil at once, since it cannot wait for its own return. With another
// context such a call waits until its caller is declared stuck. Terminate
// keeps a child Stopped, also across Serve calls, until Restart or a group
// restart starts it. Before Serve and after it returned, Add and Restart
// prepare the next Serve. A supervisor can be served again once its Serve
// returned (a parent's restart does that): the children's specs and marks
// persist, their restart counts and errors start afresh, temporary children
// are gone (a stuck one once its copy returns). A second Serve while one
// runs returns [ErrAlreadyServing].
//
// # Events
//
// Every lifecycle transition while a supervisor serves is an [Event], named
// by the supervisor's path ("root/db/pool") and the child (a stuck copy that
// returns after Serve did is settled silently). [WithEventHandler] handlers
// and the [WithLogger] logger of a tree run on one goroutine of the root's,
// one event at a time in the order they happened, never on a supervisor's
// goroutine. Up to [EventBuffer] events queue for a slow handler; beyond,
// they are dropped and counted in the next one's Dropped, except a
// supervisor's last. Handlers and loggers that panic or call
// runtime.Goexit are contained. The root's Serve returns after its handlers
// have seen its last event, or at most 5 seconds after its last child
// stopped if a handler or logger blocks.
//
// # Costs
//
// A supervisor is one goroutine, the one running Serve, which owns its state
// and sleeps while nothing happens; a child is one goroutine and a small
// record. A tree adds one goroutine for events once it has any, and a root
// WithSystemd one for notifications. One timer per supervisor serves every
// delay, start timeout, heartbeat and shutdown timeout. A stuck child's
// stack is found when first asked for: declaring children stuck costs no
// dump of all goroutines.
package arbor
