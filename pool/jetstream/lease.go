package jetstream

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/arborgo/arbor/pool"
)

// The bodies of JetStream's acknowledgements, sent to a message's reply
// subject.
var (
	ackAck      = []byte("+ACK")
	ackNak      = []byte("-NAK")
	ackProgress = []byte("+WPI")
)

// A lease is one delivery of a message, as pool.Lease.
type lease[T any] struct {
	s    *Source[T]
	msg  *nats.Msg
	meta *nats.MsgMetadata
	task T
	err  error
	ack  atomic.Pointer[string] // the ack subject: see replyTo
}

// lease makes the lease of a delivered message and decodes its task.
func (s *Source[T]) lease(m *nats.Msg, meta *nats.MsgMetadata) *lease[T] {
	l := &lease[T]{s: s, msg: m, meta: meta}
	l.ack.Store(&m.Reply)
	l.task, l.err = s.decode(m.Data)
	s.mu.Lock()
	s.running[meta.Sequence.Stream] = l
	s.mu.Unlock()
	return l
}

// replyTo is where the lease's acks go: the ack subject of the message's
// latest delivery to this process (see Source.receive).
func (l *lease[T]) replyTo() string { return *l.ack.Load() }

// done forgets the lease once the pool settled it: a later delivery of its
// message is a new one.
func (l *lease[T]) done() {
	s := l.s
	s.mu.Lock()
	if s.running[l.meta.Sequence.Stream] == l {
		delete(s.running, l.meta.Sequence.Stream)
	}
	s.mu.Unlock()
}

// decode decodes a task with the codec, a panic of which is an error.
func (s *Source[T]) decode(data []byte) (task T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("arbor: jetstream: codec %T panicked: %v", s.codec, r)
		}
	}()
	task, err = s.codec.Decode(data)
	if err != nil {
		err = fmt.Errorf("arbor: jetstream: decode: %w", err)
	}
	return task, err
}

// String names the message: its stream and stream sequence.
func (l *lease[T]) String() string {
	return fmt.Sprintf("message %s#%d", l.meta.Stream, l.meta.Sequence.Stream)
}

// Task returns the decoded task, or why it could not be.
func (l *lease[T]) Task() (T, error) { return l.task, l.err }

// Attempt is the message's delivery count (NumDelivered).
func (l *lease[T]) Attempt() int { return int(l.meta.NumDelivered) }

// Ack acknowledges the message and waits for the server to confirm it.
// Its pull request for the worker's next task goes first, so that the next
// message travels while the acknowledgement does.
func (l *lease[T]) Ack(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.s.timeout)
	defer cancel()
	defer l.done()
	l.s.pullAhead()
	if _, err := l.s.nc.RequestWithContext(ctx, l.replyTo(), ackAck); err != nil {
		return fmt.Errorf("arbor: jetstream: ack %s: %w", l, err)
	}
	return nil
}

// Nack asks for the message again after delay (NakWithDelay).
func (l *lease[T]) Nack(_ context.Context, delay time.Duration) error {
	body := ackNak
	if delay > 0 {
		body = fmt.Appendf(nil, `-NAK {"delay": %d}`, delay.Nanoseconds())
	}
	defer l.done()
	if err := l.s.nc.Publish(l.replyTo(), body); err != nil {
		return fmt.Errorf("arbor: jetstream: nak %s: %w", l, err)
	}
	return nil
}

// Extend tells the server the attempt still runs (InProgress), which
// restarts the message's AckWait.
func (l *lease[T]) Extend(context.Context) error {
	if err := l.s.nc.Publish(l.replyTo(), ackProgress); err != nil {
		return fmt.Errorf("arbor: jetstream: in progress %s: %w", l, err)
	}
	return nil
}

// A DeadLetter is what a Source publishes to its dead-letter subject (see
// WithDeadLetterSubject), as JSON, for a task that failed for good.
type DeadLetter struct {
	// Stream and Consumer name where the message came from; Subject is
	// the subject it was published to.
	Stream   string `json:"stream"`
	Consumer string `json:"consumer"`
	Subject  string `json:"subject"`
	// Sequence is the message's sequence number in its stream.
	Sequence uint64 `json:"sequence"`
	// Deliveries is how many times it was delivered: the last attempt's
	// number.
	Deliveries int `json:"deliveries"`
	// Errors holds the errors of the attempts that the process that
	// dead-lettered it saw, oldest first, the last being the failure that
	// ended it (a pool that takes its tasks from a source passes only the
	// last: see pool.DeadLetterError).
	Errors []string `json:"errors"`
	// Data is the message's body: the encoded task (base64 in JSON),
	// unless the record would not fit in a message: then DataOmitted is
	// true, Data is empty, and each error is cut to 1 KiB; Stream and
	// Sequence still say which task it was.
	Data        []byte `json:"data,omitempty"`
	DataOmitted bool   `json:"data_omitted,omitempty"`
	// Time is when it was dead-lettered.
	Time time.Time `json:"time"`
}

// DeadLetter publishes the task to the dead-letter subject, if the source
// has one, and waits for the stream that keeps it to confirm; then it
// terminates the message (TermWithReason) and waits for the server to
// confirm that. If the publish fails the message is not terminated: it is
// delivered again after AckWait, and dead-lettered again then (the
// publish carries a message ID, so that a stream's duplicate window drops
// a second copy); New requires an unlimited MaxDeliver with a dead-letter
// subject, so that this retry is never the message's last delivery.
func (l *lease[T]) DeadLetter(ctx context.Context, dl *pool.DeadLetterError) error {
	defer l.done()
	s := l.s
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var errs []string
	attempt := l.Attempt()
	if dl != nil {
		for _, err := range dl.Attempts {
			if err != nil {
				errs = append(errs, safeMessage(err))
			}
		}
		if dl.Attempt > 0 {
			attempt = dl.Attempt
		}
	}
	if s.dead != "" {
		rec := DeadLetter{Stream: l.meta.Stream, Consumer: l.meta.Consumer, Subject: l.msg.Subject,
			Sequence: l.meta.Sequence.Stream, Deliveries: attempt, Errors: errs, Data: l.msg.Data, Time: time.Now()}
		body, err := json.Marshal(rec)
		if err == nil && int64(len(body)) > s.nc.MaxPayload()-1024 {
			// Too big to publish (the task, base64, and the errors): the
			// record keeps where the task is (stream and sequence), and
			// says what it left out.
			rec.Data, rec.DataOmitted = nil, true
			for i, e := range rec.Errors {
				rec.Errors[i] = oneLine(e, 1024)
			}
			body, err = json.Marshal(rec)
		}
		if err != nil {
			return fmt.Errorf("arbor: jetstream: dead letter of %s: %w", l, err)
		}
		id := fmt.Sprintf("arbor-dead-letter.%s.%d", l.meta.Stream, l.meta.Sequence.Stream)
		if _, err := s.js.Publish(ctx, s.dead, body, jetstream.WithMsgID(id)); err != nil {
			return fmt.Errorf("arbor: jetstream: dead letter of %s to %q: %w", l, s.dead, err)
		}
	}
	reason := fmt.Sprintf("arbor: dead-lettered after %d attempts", attempt)
	if len(errs) > 0 {
		reason += ": " + errs[len(errs)-1]
	}
	if _, err := s.nc.RequestWithContext(ctx, l.replyTo(), []byte("+TERM "+oneLine(reason, 256))); err != nil {
		return fmt.Errorf("arbor: jetstream: terminate %s: %w", l, err)
	}
	return nil
}

// oneLine returns s on one line, cut to at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n]
	}
	return s
}
