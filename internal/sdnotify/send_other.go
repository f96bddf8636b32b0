//go:build !unix

package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"runtime"
)

// supported: systemd runs on unix only, and sending without waiting needs
// the socket's descriptor.
func supported() error {
	return fmt.Errorf("sdnotify: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}

func send(*net.UnixConn, []byte) error { return errors.ErrUnsupported }
