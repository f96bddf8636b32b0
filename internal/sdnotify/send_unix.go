//go:build unix

package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

func supported() error { return nil }

// send writes b as one datagram on c without ever waiting. The net package
// makes every socket non-blocking and would wait in the poller when the
// socket is not writable (for a datagram socket: when the receiver's queue is
// full, for as long as it stays full); writing to the descriptor directly
// takes the EAGAIN instead. A write deadline would not do: one already past
// fails before the write is tried, and any later one waits.
func send(c *net.UnixConn, b []byte) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for {
			_, werr = syscall.Write(int(fd), b)
			if werr != syscall.EINTR {
				return true // done, whatever happened: never wait for the poller
			}
		}
	})
	if err != nil {
		return err
	}
	switch {
	case werr == nil:
		return nil
	case errors.Is(werr, syscall.EAGAIN), errors.Is(werr, syscall.EWOULDBLOCK), errors.Is(werr, syscall.ENOBUFS):
		// ENOBUFS: what BSD and macOS say for a full datagram queue.
		return fmt.Errorf("%w (%w)", ErrDropped, werr)
	default:
		return os.NewSyscallError("write", werr)
	}
}
