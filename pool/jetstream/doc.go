// Package jetstream is a source of tasks for package
// github.com/arborgo/arbor/pool backed by a NATS JetStream durable pull
// consumer: tasks published to a stream are run by pools in any number of
// processes, and a task whose process dies is delivered again.
//
// A [Source] implements pool.Source. Give it to a pool with
// [Source.PoolOptions] (or pool.WithSource and pool.WithLeaseExtension),
// add [Source.Watcher] next to the pool in the tree, and [Source.Close] it
// once the pool stopped:
//
//	src, err := jetstream.New[Email](ctx, js, "TASKS", "mailers", jetstream.WithMaxAttempts(5),
//		jetstream.WithDeadLetterSubject("dead.mail"))
//	p, err := pool.New("mail", send, append(src.PoolOptions(), pool.WithWorkers(8))...)
//	root.Add("nats", src.Watcher())
//	root.Add("mail", p)
//	err = root.Serve(ctx)
//	src.Close(context.Background())
//
// # How the pool maps onto JetStream
//
//	pool                          JetStream
//	----------------------------  ----------------------------------------------------------
//	Lease (a worker is idle)      a pull request for one message (batch 1), held by the
//	                              server until a message comes or it expires (10 s, see
//	                              WithPullExpiry); the lease lasts the consumer's AckWait
//	Lease.Task                    the message's data, decoded by the Codec (JSON); an
//	                              error dead-letters the message without an attempt
//	Lease.Attempt                 the message's NumDelivered
//	Ack (the attempt succeeded)   +ACK as a request: it returns once the server confirmed
//	                              it (AckSync, the double ack); a pull request for the
//	                              worker's next task goes just before it
//	Nack(delay) (a retry)         NakWithDelay(delay), the pool's retry backoff; Nak at
//	                              once for a task not run because the pool shuts down
//	Extend (a long attempt)       InProgress, which restarts AckWait: the pool calls it
//	                              every pool.WithLeaseExtension, LeaseExtension() being a
//	                              third of AckWait
//	DeadLetter (the last attempt  a DeadLetter in JSON published to the dead-letter
//	failed, or Task failed)       subject (WithDeadLetterSubject), confirmed by the stream
//	                              that keeps it, then TermWithReason, confirmed: JetStream
//	                              has no dead-letter queue
//	the process dies              nothing acks: the server delivers the message again
//	                              AckWait after its last delivery or InProgress
//
// # The consumer
//
// New requires a durable pull consumer with explicit acks. AckWait is the
// lease: a process killed during an attempt has its task delivered again
// that long after the attempt's last InProgress; keep it well above the
// lease extension period (LeaseExtension is AckWait/3) and short enough for
// redelivery after a crash to come soon (30 s is JetStream's default).
// Attempts are deliveries, so pool.WithMaxAttempts holds across
// processes: give the source the same number with [WithMaxAttempts] (as
// PoolOptions does), and New requires MaxDeliver to be unlimited (-1, the
// default) or at least that; at least one more lets the pool see a
// delivery past the last attempt, which can only follow an attempt that
// never settled (a task that kills its process), and dead-letter it without
// running it, so that such a task does not loop. The consumer's BackOff,
// if set, spaces redeliveries after AckWait; the pool's retry backoff
// spaces retries after failures.
//
// # One message at a time
//
// Each idle worker has one pull request for one message; the source never
// fetches messages ahead of a worker that will run them, so that no message
// waits in a process, its AckWait running, while the process is busy or
// stopping, and an idle process never holds tasks another could run. The one
// exception is the pull request an Ack sends for the worker's next task: a
// message that answers it, or any message that arrives with no Lease waiting
// (the Lease's context ended), is kept for the next Lease for at most half
// a second, then given back (a Nak): at once, or, while pull requests of
// Leases that left are still open at the server, once they expired, so
// that they do not take it back again and again, a delivery each time.
//
// A graceful shutdown loses nothing and waits for no AckWait: the pool
// naks the tasks it leased and did not start, and those whose attempt it
// cancelled; a message that reaches the source for the pull request of a
// worker that left is kept half a second, as above, or nakked at once by
// Close, which then drains the source's subscription, nakking what still
// comes until the server knows the source no longer listens. A Nak counts
// as a delivery: a shutdown may add one to the NumDelivered of at most one
// task per worker that was idle or acking at that moment.
//
// # Outages of the server
//
// While the connection to NATS is down, Lease waits for it to come back,
// so that an outage does not fail the pool's workers (nor, through their
// restart intensity, the tree); the tree's health shows the outage through
// the [Source.Watcher] supervisor, whose child is ready only while
// connected. Configure the connection to reconnect for ever
// (nats.MaxReconnects(-1)): Lease fails, and so the workers and in time the
// pool, once it is closed for good. After a reconnection the source sends
// its pull requests again. An Ack, Nak, InProgress or Term sent during the
// outage is sent when the connection is back (nats.go buffers it); an Ack
// that gets no confirmation within the timeout (WithTimeout) is an error
// the pool reports (pool.EventSourceError), and the task is delivered and
// run again once AckWait passed. With file storage the server keeps the
// stream, the consumer and its pending messages across a restart; with
// memory storage it loses them, and then Lease fails with an error that says
// so.
//
// # Errors
//
// New checks the stream, the consumer and the dead-letter subject, and
// returns an error matching arbor.ErrInvalid that says what is wrong.
// Lease fails (which fails the pool's worker that called it, restarted by
// the pool's supervisor, whose restart intensity decides when the pool
// fails: pool.Serve then returns the error) when the consumer or its
// stream is gone, saying which (wrapping jetstream.ErrConsumerNotFound or
// jetstream.ErrStreamNotFound); each Lease checks again, so a consumer
// created anew is used again. Publish checks the subject against the
// stream and the consumer's filters.
//
// A message delivered again while an attempt of it still runs in this
// process (after an outage longer than AckWait, the attempt's InProgress
// reached the server too late) is not run twice: the source answers it
// InProgress, and the running attempt settles the new delivery.
//
// # Guarantees
//
// At least once, as the pool's: every task published (and confirmed by the
// stream) is run until an attempt succeeds and its ack is confirmed, or it
// is dead-lettered; a process that dies, a lost ack, or an AckWait shorter
// than an attempt not extended, runs it again, possibly in another process.
// Handlers must be idempotent (see the repository's README: an idempotency
// key, or an upsert); Publish with jetstream.WithMsgID makes the stream
// drop a task published twice within its duplicate window.
package jetstream
