// Package sdnotify sends service state notifications to systemd (sd_notify(3))
// with the standard library only: one datagram per notification on the unix
// socket named by $NOTIFY_SOCKET, abstract sockets ("@name") included.
//
// Sending never blocks: a notification that the socket cannot take at once,
// because the receiver has stopped reading and its queue is full, is dropped
// and counted, never retried.
package sdnotify

import (
	"errors"
	"math"
	"net"
	"os"
	"strconv"
	"sync/atomic"
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

// ErrDropped is returned by Notify when the socket cannot take the
// notification without waiting: the receiver has stopped reading and its
// queue is full. The notification is lost.
var ErrDropped = errors.New("sdnotify: notification dropped: the receiver's queue is full")

// Notifier sends notifications to one socket. The zero value and a nil
// *Notifier send nothing.
type Notifier struct {
	conn    *net.UnixConn
	dropped atomic.Uint64
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
	if err := supported(); err != nil {
		return nil, err
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
// be joined with newlines in one call. It never waits: if the socket cannot
// take the datagram at once it returns ErrDropped. Every notification that
// is not sent, for that or any other error, is counted by Dropped.
func (n *Notifier) Notify(state string) error {
	if n == nil || n.conn == nil {
		return nil
	}
	err := send(n.conn, []byte(state))
	if err != nil {
		n.dropped.Add(1)
	}
	return err
}

// Dropped returns how many notifications Notify could not send. It may be
// called from any goroutine.
func (n *Notifier) Dropped() uint64 {
	if n == nil {
		return 0
	}
	return n.dropped.Load()
}

// Close closes the connection.
func (n *Notifier) Close() error {
	if n == nil || n.conn == nil {
		return nil
	}
	return n.conn.Close()
}

// Bounds of WatchdogInterval.
//
// sd_watchdog_enabled(3) accepts any WATCHDOG_USEC from 1 to 2^64-2 (0 and
// 2^64-1, USEC_INFINITY, mean off) and recommends a ping every half of it;
// it sets no floor and no ceiling, so both are ours.
//
// The floor: each ping costs a Health walk of the whole tree and a datagram
// that the service manager must process, and systemd's own check of the
// watchdog is a timer on its event loop added with the default accuracy
// (sd_event_add_time's 250 ms slack), so a deadline much below that cannot be
// met reliably whatever the rate of pings. Pinging at most every 10 ms (100
// per second) honours every WatchdogSec= of 20 ms or more exactly, costs
// little, and keeps a tiny value (WATCHDOG_USEC=1) from saturating a core.
//
// The ceiling: WATCHDOG_USEC microseconds must fit a time.Duration (about 292
// years); a larger timeout is taken as that, which pings every 146 years:
// for ever, as systemd would wait. Without it the product overflows and
// wraps, to a ping every few nanoseconds or to a negative interval that turns
// the watchdog off.
const (
	MinWatchdogInterval = 10 * time.Millisecond
	MaxWatchdogInterval = time.Duration(maxWatchdogUsec) * time.Microsecond / 2

	maxWatchdogUsec = math.MaxInt64 / int64(time.Microsecond) // the most microseconds a Duration holds
)

// WatchdogInterval returns how often to send Watchdog: half of
// $WATCHDOG_USEC, as sd_watchdog_enabled(3) recommends, clamped to
// [MinWatchdogInterval, MaxWatchdogInterval]; or 0 when the watchdog is off
// ($WATCHDOG_USEC unset, empty, not a number, 0 or 2^64-1) or meant for
// another process ($WATCHDOG_PID set, non-empty and not this process's id).
func WatchdogInterval() time.Duration {
	return watchdogInterval(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid())
}

// watchdogInterval is WatchdogInterval for the given variables and process
// id.
func watchdogInterval(usecVar, pidVar string, self int) time.Duration {
	if usecVar == "" {
		return 0
	}
	usec, err := strconv.ParseUint(usecVar, 10, 64)
	if err != nil || usec == 0 || usec == math.MaxUint64 {
		return 0
	}
	if pidVar != "" {
		if pid, err := strconv.Atoi(pidVar); err != nil || pid != self {
			return 0
		}
	}
	usec = min(usec, uint64(maxWatchdogUsec))
	return max(time.Duration(usec)*time.Microsecond/2, MinWatchdogInterval)
}
