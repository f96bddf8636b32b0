package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/arborgo/arbor/pool"
)

// A Source leases tasks of type T from a JetStream durable pull consumer to
// a pool: it implements pool.Source[T] (see the package doc for how each
// step maps onto JetStream). Make it with New; its methods are safe for
// concurrent use. Close it once the pools that use it have stopped.
type Source[T any] struct {
	js       jetstream.JetStream
	nc       *nats.Conn
	stream   string
	consumer string
	codec    Codec[T]
	dead     string
	attempts int
	ackWait  time.Duration
	expiry   time.Duration
	timeout  time.Duration
	subjects []string // what the stream captures
	filters  []string // what the consumer delivers of it; none: everything
	next     string   // the subject of pull requests
	request  []byte   // a pull request for one message
	inbox    string   // where every pull request of the source is answered
	sub      *nats.Subscription
	status   chan nats.Status // the connection's changes, read by loop
	checks   chan struct{}    // asks loop to check the consumer still exists
	loopDone chan struct{}
	stale    *time.Timer // drops pull requests the server never answered
	resume   *time.Timer // ends a pause after a failed pull
	release  *time.Timer // gives back messages held too long

	mu         sync.Mutex
	connected  bool
	closed     error // why Lease fails for good: Close, or the connection closed
	broken     error // the consumer is gone: Lease checks it again
	closing    bool  // Close was called
	paused     bool
	pause      time.Duration // the next pause
	staleArmed bool
	heldArmed  bool
	waiters    []*waiter            // Lease calls waiting for a message, oldest first
	held       []held               // messages no Lease waited for, oldest first
	sent       []time.Time          // pull requests not answered yet, oldest first
	running    map[uint64]*lease[T] // leased and not settled, by stream sequence
	changed    chan struct{}
}

// A waiter is one Lease call waiting for a message.
type waiter struct{ ch chan reply }

type reply struct {
	msg  *nats.Msg
	meta *nats.MsgMetadata
	err  error
}

// A held message arrived with no Lease waiting (it answers the pull
// request an Ack sent ahead): it waits for the next Lease until until,
// then goes back to the server.
type held struct {
	reply
	until time.Time
}

// holdFor is how long a message that arrived with no Lease waiting is kept
// for the next one.
const holdFor = 500 * time.Millisecond

// Pauses after a pull request failed (no responders while the server
// starts, too many waiting requests): doubling from the first to the last.
const (
	firstPause = 50 * time.Millisecond
	lastPause  = 2 * time.Second
)

// staleGrace is how long after its expiry an unanswered pull request is
// deemed lost.
const staleGrace = 2 * time.Second

// New returns a source of tasks from the durable pull consumer named
// consumer on stream, through js. It checks, within ctx, that the stream
// and the consumer exist, that the consumer is a pull consumer with
// explicit acks (and a MaxDeliver that WithMaxAttempts allows), and that a
// dead-letter subject is captured by another stream: each mistake returns
// an error matching arbor.ErrInvalid that says what is wrong (and wraps
// jetstream.ErrStreamNotFound or jetstream.ErrConsumerNotFound where one of
// them is missing). Other failures to reach the server return their error.
func New[T any](ctx context.Context, js jetstream.JetStream, stream, consumer string, opts ...Option) (*Source[T], error) {
	if ctx == nil {
		return nil, invalid(nil, "nil context")
	}
	if js == nil || js.Conn() == nil {
		return nil, invalid(nil, "nil JetStream")
	}
	if stream == "" || consumer == "" {
		return nil, invalid(nil, "stream %q, consumer %q: need both names", stream, consumer)
	}
	var cfg config
	for _, o := range opts {
		if o == nil {
			cfg.fail(invalid(nil, "nil Option"))
			continue
		}
		o.apply(&cfg)
	}
	if cfg.err != nil {
		return nil, cfg.err
	}
	s := &Source[T]{js: js, nc: js.Conn(), stream: stream, consumer: consumer, codec: JSON[T]{}, dead: cfg.dead,
		attempts: cfg.attempts, expiry: cfg.expiry, timeout: cfg.timeout, pause: firstPause,
		checks: make(chan struct{}, 1), loopDone: make(chan struct{}), changed: make(chan struct{}),
		running: map[uint64]*lease[T]{}}
	if cfg.codec != nil {
		c, ok := cfg.codec.(Codec[T])
		if !ok {
			return nil, invalid(nil, "codec %T does not encode %T tasks", cfg.codec, *new(T))
		}
		s.codec = c
	}
	if s.timeout == 0 {
		s.timeout = js.Options().DefaultTimeout
	}
	if s.expiry == 0 {
		s.expiry = DefaultPullExpiry
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	s.next = apiPrefix(js.Options()) + "CONSUMER.MSG.NEXT." + stream + "." + consumer
	s.request = fmt.Appendf(nil, `{"batch":1,"expires":%d}`, s.expiry.Nanoseconds())
	s.inbox = s.nc.NewInbox()
	s.stale = time.AfterFunc(time.Hour, s.dropStale)
	s.stale.Stop()
	s.resume = time.AfterFunc(time.Hour, s.endPause)
	s.resume.Stop()
	s.release = time.AfterFunc(time.Hour, s.releaseHeld)
	s.release.Stop()
	sub, err := s.nc.Subscribe(s.inbox, s.receive)
	if err != nil {
		return nil, fmt.Errorf("arbor: jetstream: subscribe: %w", err)
	}
	// Pull requests bound what comes: no need for a second bound, which
	// would drop messages (and leave them to AckWait).
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("arbor: jetstream: subscribe: %w", err)
	}
	s.sub = sub
	s.status = s.nc.StatusChanged()
	s.mu.Lock()
	s.connected = s.nc.Status() == nats.CONNECTED
	s.mu.Unlock()
	go s.loop()
	return s, nil
}

// apiPrefix is the prefix of js's API subjects.
func apiPrefix(o jetstream.JetStreamOptions) string {
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix != "" && !strings.HasSuffix(o.APIPrefix, "."):
		return o.APIPrefix + "."
	case o.APIPrefix != "":
		return o.APIPrefix
	}
	return jetstream.DefaultAPIPrefix
}

// check looks up the stream and the consumer, and checks what New checks.
// Called by New, and by Lease after the consumer was found gone.
func (s *Source[T]) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	st, err := s.js.Stream(ctx, s.stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return invalid(err, "no stream %q", s.stream)
	case errors.Is(err, jetstream.ErrInvalidStreamName):
		return invalid(err, "stream name %q", s.stream)
	case err != nil:
		return fmt.Errorf("arbor: jetstream: stream %q: %w", s.stream, err)
	}
	c, err := st.Consumer(ctx, s.consumer)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return invalid(err, "no consumer %q on stream %q", s.consumer, s.stream)
	case errors.Is(err, jetstream.ErrNotPullConsumer):
		return invalid(err, "consumer %q on stream %q is a push consumer: need a pull consumer", s.consumer, s.stream)
	case errors.Is(err, jetstream.ErrInvalidConsumerName):
		return invalid(err, "consumer name %q", s.consumer)
	case err != nil:
		return fmt.Errorf("arbor: jetstream: consumer %q on stream %q: %w", s.consumer, s.stream, err)
	}
	ci := c.CachedInfo()
	cc := ci.Config
	where := fmt.Sprintf("consumer %q on stream %q", s.consumer, s.stream)
	switch {
	case cc.AckPolicy != jetstream.AckExplicitPolicy:
		return invalid(nil, "%s acks %v: need explicit acks", where, cc.AckPolicy)
	case s.attempts > 0 && cc.MaxDeliver > 0 && cc.MaxDeliver < s.attempts:
		return invalid(nil, "%s delivers a message at most %d times (MaxDeliver), fewer than the %d attempts: set it to -1, or to %d",
			where, cc.MaxDeliver, s.attempts, s.attempts+1)
	}
	filters := cc.FilterSubjects
	if cc.FilterSubject != "" {
		filters = []string{cc.FilterSubject}
	}
	subjects := st.CachedInfo().Config.Subjects
	if len(subjects) == 0 {
		subjects = []string{s.stream} // a stream without subjects captures its name
	}
	if s.dead != "" {
		if matchAny(subjects, s.dead) && (len(filters) == 0 || matchAny(filters, s.dead)) {
			return invalid(nil, "dead-letter subject %q would be delivered by %s as a task", s.dead, where)
		}
		if _, err := s.js.StreamNameBySubject(ctx, s.dead); err != nil {
			return invalid(err, "no stream captures the dead-letter subject %q", s.dead)
		}
		if cc.MaxDeliver > 0 {
			// A dead letter whose publish fails is tried again at the next
			// delivery: a last delivery would lose the task.
			return invalid(nil, "%s delivers a message at most %d times (MaxDeliver): with a dead-letter subject, set it to -1, so that a dead letter that could not be published is not lost",
				where, cc.MaxDeliver)
		}
	}
	s.mu.Lock()
	s.ackWait = cc.AckWait
	s.subjects, s.filters = subjects, filters
	if cc.MaxRequestExpires > 0 && cc.MaxRequestExpires < s.expiry {
		s.expiry = cc.MaxRequestExpires
		s.request = fmt.Appendf(nil, `{"batch":1,"expires":%d}`, s.expiry.Nanoseconds())
	}
	s.mu.Unlock()
	return nil
}

// LeaseExtension returns a period for pool.WithLeaseExtension: a third of
// the consumer's AckWait, so that a running attempt's message is marked in
// progress (InProgress) well before the server would deliver it again.
func (s *Source[T]) LeaseExtension() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ackWait / 3
}

// PoolOptions returns the options a pool needs to take its tasks from s:
// pool.WithSource(s), pool.WithLeaseExtension(s.LeaseExtension()), and,
// with WithMaxAttempts(n), pool.WithMaxAttempts(n). Options given after
// them override them.
func (s *Source[T]) PoolOptions() []pool.Option {
	opts := []pool.Option{pool.WithSource[T](s), pool.WithLeaseExtension(s.LeaseExtension())}
	if s.attempts > 0 {
		opts = append(opts, pool.WithMaxAttempts(s.attempts))
	}
	return opts
}

// Lease waits for a message from the consumer and leases its task. It
// returns ctx's error once ctx is done. While the connection to NATS is
// down it waits for it to come back, so that an outage does not fail the
// pool's workers (see Watcher for health). It returns an error, which fails
// the worker that called it, once the source is closed (ErrClosed), the
// connection closed for good (wrapping nats.ErrConnectionClosed), or the
// consumer or stream is gone (wrapping jetstream.ErrConsumerNotFound or
// jetstream.ErrStreamNotFound): then each Lease checks the consumer again,
// and goes on if it is back.
func (s *Source[T]) Lease(ctx context.Context) (pool.Lease[T], error) {
	if ctx == nil {
		return nil, invalid(nil, "nil context")
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s.mu.Lock()
		if s.closed != nil {
			err := s.closed
			s.mu.Unlock()
			return nil, err
		}
		if broken := s.broken; broken != nil {
			s.mu.Unlock()
			if err := s.check(ctx); err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, fmt.Errorf("arbor: jetstream: %w (after %w)", err, broken)
			}
			s.mu.Lock()
			if s.broken == broken {
				s.broken, s.sent = nil, nil
			}
			s.mu.Unlock()
			continue
		}
		if len(s.held) > 0 {
			h := s.held[0]
			s.held[0] = held{}
			s.held = s.held[1:]
			s.mu.Unlock()
			return s.lease(h.msg, h.meta), nil
		}
		w := &waiter{ch: make(chan reply, 1)}
		s.waiters = append(s.waiters, w)
		s.fill()
		s.mu.Unlock()
		var r reply
		select {
		case r = <-w.ch:
		case <-ctx.Done():
			s.mu.Lock()
			gone := s.removeWaiter(w)
			s.mu.Unlock()
			if gone {
				return nil, ctx.Err()
			}
			// Answered meanwhile: give the message to another waiter,
			// or back to the server.
			if r = <-w.ch; r.msg != nil {
				s.giveBack(r)
			}
			return nil, ctx.Err()
		}
		if r.err != nil {
			return nil, r.err
		}
		return s.lease(r.msg, r.meta), nil
	}
}

// removeWaiter removes w and reports whether it was still waiting. Called
// with mu held.
func (s *Source[T]) removeWaiter(w *waiter) bool {
	for i, x := range s.waiters {
		if x == w {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// popWaiter removes and returns the oldest waiter, or nil. Called with mu
// held.
func (s *Source[T]) popWaiter() *waiter {
	if len(s.waiters) == 0 {
		return nil
	}
	w := s.waiters[0]
	s.waiters[0] = nil
	s.waiters = s.waiters[1:]
	return w
}

// failWaiters answers every waiter with err. Called with mu held.
func (s *Source[T]) failWaiters(err error) {
	for _, w := range s.waiters {
		w.ch <- reply{err: err}
	}
	s.waiters = nil
}

// giveBack hands a message nobody leased to the oldest waiter, or naks it
// at once so that the server delivers it again, here or elsewhere.
func (s *Source[T]) giveBack(r reply) {
	s.mu.Lock()
	if s.closed == nil && s.broken == nil {
		if w := s.popWaiter(); w != nil {
			w.ch <- r
			s.mu.Unlock()
			return
		}
	}
	s.mu.Unlock()
	_ = s.nc.Publish(r.msg.Reply, ackNak)
}

// fill sends pull requests until every waiter has one, while the
// connection is up and the source is not paused. Called with mu held.
func (s *Source[T]) fill() {
	if !s.connected || s.closed != nil || s.broken != nil || s.paused {
		return
	}
	for len(s.sent) < len(s.waiters) && s.pull() {
	}
}

// pull sends a pull request for one message and reports whether it could.
// Called with mu held.
func (s *Source[T]) pull() bool {
	if err := s.nc.PublishRequest(s.next, s.inbox, s.request); err != nil {
		// Closed or disconnected: the connection's next change says what
		// to do.
		return false
	}
	s.sent = append(s.sent, time.Now())
	if !s.staleArmed {
		s.staleArmed = true
		s.stale.Reset(time.Until(s.sent[0].Add(s.expiry + staleGrace)))
	}
	return true
}

// pullAhead sends a pull request for the next Lease of a worker whose
// attempt succeeded, so that its next message travels while the Ack does.
func (s *Source[T]) pullAhead() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connected && s.closed == nil && s.broken == nil && !s.paused {
		s.pull()
	}
}

// hold keeps a message that arrived with no Lease waiting. Called with mu
// held.
func (s *Source[T]) hold(r reply) {
	s.held = append(s.held, held{reply: r, until: time.Now().Add(holdFor)})
	if !s.heldArmed {
		s.heldArmed = true
		s.release.Reset(holdFor)
	}
}

// releaseHeld gives back to the server the messages held for longer than
// holdFor. It runs on the release timer's goroutine.
func (s *Source[T]) releaseHeld() {
	s.mu.Lock()
	s.heldArmed = false
	now := time.Now()
	var back []held
	for len(s.held) > 0 && !s.held[0].until.After(now) {
		back = append(back, s.held[0])
		s.held[0] = held{}
		s.held = s.held[1:]
	}
	if len(s.held) > 0 && s.closed == nil {
		s.heldArmed = true
		s.release.Reset(time.Until(s.held[0].until))
	}
	var delay time.Duration
	if len(s.waiters) == 0 && len(s.sent) > 0 && s.closed == nil {
		// Pull requests of Leases that left are still open at the server:
		// a message nakked now would go straight to one of them, and come
		// back here, a delivery each time. Ask for it again once they
		// expired.
		delay = time.Until(s.sent[len(s.sent)-1].Add(s.expiry + staleGrace))
	}
	s.mu.Unlock()
	s.nak(back, delay)
}

// nak gives messages back to the server, for delivery after delay.
func (s *Source[T]) nak(back []held, delay time.Duration) {
	body := ackNak
	if delay > 0 {
		body = fmt.Appendf(nil, `-NAK {"delay": %d}`, delay.Nanoseconds())
	}
	for _, h := range back {
		_ = s.nc.Publish(h.msg.Reply, body)
	}
}

// answered counts the oldest pull request as answered. Called with mu held.
func (s *Source[T]) answered() {
	if len(s.sent) > 0 {
		s.sent = s.sent[1:]
	}
}

// dropStale forgets pull requests that the server should have answered
// long ago (their expiry passed), so that waiters get new ones. It runs on
// the stale timer's goroutine.
func (s *Source[T]) dropStale() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.staleArmed = false
	cutoff := time.Now().Add(-(s.expiry + staleGrace))
	for len(s.sent) > 0 && !s.sent[0].After(cutoff) {
		s.sent = s.sent[1:]
	}
	s.fill()
	if len(s.sent) > 0 && !s.staleArmed && s.closed == nil {
		s.staleArmed = true
		s.stale.Reset(time.Until(s.sent[0].Add(s.expiry + staleGrace)))
	}
}

// pauseAfterFailure stops pulling for a while after a pull request failed.
// Called with mu held.
func (s *Source[T]) pauseAfterFailure() {
	if s.paused || s.closed != nil {
		return
	}
	s.paused = true
	s.resume.Reset(s.pause)
	s.pause = min(2*s.pause, lastPause)
}

// endPause pulls again after a pause. It runs on the resume timer's
// goroutine.
func (s *Source[T]) endPause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = false
	s.fill()
}

// receive handles what arrives on the inbox: messages for the waiters, and
// the server's status replies to pull requests. It runs on the
// subscription's goroutine.
func (s *Source[T]) receive(m *nats.Msg) {
	if code := statusOf(m); code != "" {
		s.receiveStatus(m, code)
		return
	}
	meta, err := m.Metadata()
	if err != nil {
		return // not a JetStream delivery: nothing to ack
	}
	r := reply{msg: m, meta: meta}
	s.mu.Lock()
	s.answered()
	s.pause = firstPause
	if l := s.running[meta.Sequence.Stream]; l != nil && s.closed == nil {
		// Delivered again while its attempt still runs here (its
		// InProgress came too late, after an outage longer than AckWait):
		// the attempt keeps it, with the new delivery's ack subject, and
		// no second attempt starts in this process.
		l.ack.Store(&m.Reply)
		s.fill() // the pull request it answered was a waiter's
		s.mu.Unlock()
		_ = s.nc.Publish(m.Reply, ackProgress)
		return
	}
	if s.closed == nil && s.broken == nil {
		if w := s.popWaiter(); w != nil {
			w.ch <- r
		} else {
			s.hold(r) // for the next Lease, such as the one that pulled ahead
		}
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	// The source closed, or the consumer is gone: back to the server at
	// once, not after AckWait.
	_ = s.nc.Publish(m.Reply, ackNak)
}

// statusOf returns the status code of a status reply, or "" for a message.
func statusOf(m *nats.Msg) string {
	// A status reply comes from the server itself, with no reply subject;
	// a delivery always has one (its ack subject), whatever its headers.
	if m.Reply != "" || len(m.Data) > 0 || len(m.Header) == 0 {
		return ""
	}
	return m.Header.Get("Status")
}

// receiveStatus handles the server's reply that ends a pull request
// without a message.
func (s *Source[T]) receiveStatus(m *nats.Msg, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	desc := strings.ToLower(m.Header.Get("Description"))
	switch code {
	case "100": // a heartbeat or flow control: not asked for, not an answer
		return
	case "404", "408": // no message, or the request expired
		s.answered()
		s.pause = firstPause
	case "409":
		s.answered()
		switch {
		case strings.Contains(desc, "consumer deleted"):
			s.breakWith(fmt.Errorf("consumer %q on stream %q: %w", s.consumer, s.stream, jetstream.ErrConsumerDeleted))
			return
		case strings.Contains(desc, "leadership change"), strings.Contains(desc, "server shutdown"):
			// Pull again (a shutdown is followed by a reconnection).
		default: // too many waiting requests, say
			s.pauseAfterFailure()
		}
	case "503": // no responders: the consumer is not there, or not yet
		s.answered()
		s.pauseAfterFailure()
		select {
		case s.checks <- struct{}{}:
		default:
		}
	default: // 400 and the like: a fault of this source, or a new status
		s.answered()
		s.pauseAfterFailure()
	}
	s.fill()
}

// breakWith fails every waiter with err, a sign that the consumer is gone;
// the next Lease checks the consumer again. Called with mu held.
func (s *Source[T]) breakWith(err error) {
	err = fmt.Errorf("arbor: jetstream: %w", err)
	s.broken = err
	s.sent = nil
	s.failWaiters(err)
	s.nak(s.held, 0)
	s.held = nil
}

// loop follows the connection's status, and checks the consumer when asked
// to. It runs on a goroutine of the source's own, from New until Close, or
// until the connection closes.
func (s *Source[T]) loop() {
	defer close(s.loopDone)
	for {
		select {
		case _, ok := <-s.status:
			if !ok || !s.connectionChanged() {
				return
			}
		case <-s.checks:
			s.checkConsumer()
		}
	}
}

// connectionChanged updates the source after the connection's status
// changed (read again: the channel may have dropped an event), and reports
// whether the connection may come back.
func (s *Source[T]) connectionChanged() bool {
	st := s.nc.Status()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case st == nats.CLOSED:
		if s.closed == nil {
			s.closed = fmt.Errorf("arbor: jetstream: %w", nats.ErrConnectionClosed)
			s.failWaiters(s.closed)
		}
		s.held = nil // they cannot be given back: the server takes them back after AckWait
		s.connected = false
		s.broadcast()
		return false
	case st == nats.CONNECTED && !s.connected:
		// Pull requests sent before may have died with the old
		// connection (or the server): send new ones. A message that
		// still answers an old one finds no waiter and goes back.
		s.connected, s.sent = true, nil
		s.fill()
		s.broadcast()
	case st != nats.CONNECTED && s.connected:
		s.connected = false
		s.broadcast()
	}
	return true
}

// broadcast wakes whoever watches the connection. Called with mu held.
func (s *Source[T]) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// checkConsumer asks the server whether the consumer still exists, after a
// pull request found no responder: a consumer or stream gone fails the
// waiters; anything else (the server still starting) is left to the pause.
func (s *Source[T]) checkConsumer() {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	_, err := s.js.Consumer(ctx, s.stream, s.consumer)
	if !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed == nil && s.broken == nil {
		s.breakWith(fmt.Errorf("consumer %q on stream %q: %w", s.consumer, s.stream, err))
	}
}

// Close stops the source: Lease fails with ErrClosed from now on, and a
// message still arriving for a pull request is given back to the server
// at once (nak), until the server knows this source no longer listens.
// Close waits for that, within ctx, and returns ctx's error if it ends
// first. Call it once every pool using s has stopped (their Serve
// returned), before closing the connection. Later calls do nothing.
func (s *Source[T]) Close(ctx context.Context) error {
	if ctx == nil {
		return invalid(nil, "nil context")
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	if s.closed == nil {
		s.closed = ErrClosed
		s.failWaiters(ErrClosed)
	}
	s.stale.Stop()
	s.resume.Stop()
	s.release.Stop()
	back := s.held
	s.held = nil
	s.broadcast()
	s.mu.Unlock()
	s.nak(back, 0)
	s.nc.RemoveStatusListener(s.status)
	select {
	case <-s.loopDone:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Drain: the server stops sending once it has the unsubscription; what
	// it sent before still reaches receive, which naks it.
	drained := s.sub.StatusChanged(nats.SubscriptionClosed)
	if err := s.sub.Drain(); err != nil {
		return nil // the connection is closed: nothing more arrives
	}
	for {
		select {
		case _, ok := <-drained:
			if !ok {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
