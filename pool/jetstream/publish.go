package jetstream

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Publish encodes task with the source's codec and publishes it to
// subject, waiting for the stream to confirm it (jetstream.Publish, whose
// options it takes: jetstream.WithMsgID(id) makes the stream drop a
// duplicate within its duplicate window). subject must be one the source's
// consumer delivers, as the stream and consumer were when New or Lease last
// checked them; if not, it returns an error matching arbor.ErrInvalid.
func (s *Source[T]) Publish(ctx context.Context, subject string, task T, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if ctx == nil {
		return nil, invalid(nil, "nil context")
	}
	s.mu.Lock()
	subjects, filters := s.subjects, s.filters
	s.mu.Unlock()
	switch {
	case !validSubject(subject, false):
		return nil, invalid(nil, "publish to %q: not a subject (wildcards are not allowed)", subject)
	case !matchAny(subjects, subject):
		return nil, invalid(nil, "publish to %q: stream %q does not capture it (its subjects: %q)", subject, s.stream, subjects)
	case len(filters) > 0 && !matchAny(filters, subject):
		return nil, invalid(nil, "publish to %q: consumer %q does not deliver it (its filters: %q)", subject, s.consumer, filters)
	}
	data, err := s.encode(task)
	if err != nil {
		return nil, err
	}
	ack, err := s.js.Publish(ctx, subject, data, opts...)
	if err != nil {
		return nil, fmt.Errorf("arbor: jetstream: publish to %q: %w", subject, err)
	}
	return ack, nil
}

// encode encodes a task with the codec, a panic of which is an error.
func (s *Source[T]) encode(task T) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("arbor: jetstream: codec %T panicked: %v", s.codec, r)
		}
	}()
	data, err = s.codec.Encode(task)
	if err != nil {
		err = fmt.Errorf("arbor: jetstream: encode: %w", err)
	}
	return data, err
}
