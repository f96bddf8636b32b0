package jetstream

import (
	"errors"
	"fmt"

	"github.com/arborgo/arbor"
)

// Sentinel errors. Match them with errors.Is; the errors the package returns
// wrap them with detail.
var (
	// ErrClosed is returned by Lease once Close was called.
	ErrClosed = errors.New("arbor: jetstream: source closed")

	// ErrDisconnected is the failure of a Watcher's child while the
	// connection to NATS is down.
	ErrDisconnected = errors.New("arbor: jetstream: not connected to NATS")
)

// invalid builds an error matching arbor.ErrInvalid, and cause if not nil.
func invalid(cause error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if cause != nil {
		return fmt.Errorf("%w: jetstream: %s: %w", arbor.ErrInvalid, msg, cause)
	}
	return fmt.Errorf("%w: jetstream: %s", arbor.ErrInvalid, msg)
}

// safeMessage returns err.Error(), or a placeholder if that panics: a
// handler's error value is not trusted.
func safeMessage(err error) (msg string) {
	defer func() {
		if recover() != nil {
			msg = fmt.Sprintf("(%T whose Error method panicked)", err)
		}
	}()
	return err.Error()
}
