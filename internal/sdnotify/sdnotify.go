// Package sdnotify sends service state notifications to systemd (sd_notify(3))
// with the standard library only: one datagram per notification on the unix
// socket named by $NOTIFY_SOCKET, abstract sockets ("@name") included.
package sdnotify

import (
	"errors"
	"net"
	"os"
	"strconv"
	"time"
)

// Notification strings understood by systemd.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
	Watchdog = "WATCHDOG=1"
)

// ErrNoSocket is returned by Dial when $NOTIFY_SOCKET is unset: the process
// does not run under systemd's notify protocol, and notifying is a no-op.
var ErrNoSocket = errors.New("sdnotify: NOTIFY_SOCKET is not set")

// Notifier sends notifications to one socket. The zero value and a nil
// *Notifier send nothing.
type Notifier struct {
	conn *net.UnixConn
}

// Dial connects to the socket named by $NOTIFY_SOCKET. It returns
// ErrNoSocket if the variable is unset or empty.
func Dial() (*Notifier, error) {
	return DialSocket(os.Getenv("NOTIFY_SOCKET"))
}

// DialSocket connects to the named socket: a path, or an abstract socket
// written with a leading '@'.
func DialSocket(name string) (*Notifier, error) {
	if name == "" {
		return nil, ErrNoSocket
	}
	if name[0] == '@' {
		name = "\x00" + name[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	return &Notifier{conn: conn}, nil
}

// Notify sends one notification, such as Ready or "STATUS=...". Several may
// be joined with newlines in one call.
func (n *Notifier) Notify(state string) error {
	if n == nil || n.conn == nil {
		return nil
	}
	_, err := n.conn.Write([]byte(state))
	return err
}

// Close closes the connection.
func (n *Notifier) Close() error {
	if n == nil || n.conn == nil {
		return nil
	}
	return n.conn.Close()
}

// WatchdogInterval returns how often to send Watchdog: half of
// $WATCHDOG_USEC, as sd_watchdog_enabled(3) recommends, or 0 when the
// watchdog is off or meant for another process ($WATCHDOG_PID).
func WatchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}
