//go:build unix

package arbor

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// silentSystemd listens on a unix datagram socket, as systemd does, and fills
// its receive queue with datagrams that it never reads, so that the socket
// accepts no more: a systemd that has stopped reading its notifications. The
// returned socket reads only when the test says so.
func silentSystemd(t *testing.T) (path string, l *net.UnixConn) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "notify.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	// One sender may run out of its own send buffer before the receiver's
	// queue is full, so fill it from as many senders as it takes, until a
	// fresh sender cannot send at all.
	for range 64 {
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		for sent := 0; ; sent++ {
			if !sendNow(t, c, "filler") {
				if sent == 0 {
					return path, l
				}
				break
			}
		}
	}
	t.Fatal("cannot fill the receive queue of a unix datagram socket")
	return "", nil
}

// sendNow sends one datagram on c without ever waiting, and reports whether
// the socket took it.
func sendNow(t *testing.T, c *net.UnixConn, msg string) bool {
	t.Helper()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	var serr error
	require.NoError(t, rc.Write(func(fd uintptr) bool {
		_, serr = syscall.Write(int(fd), []byte(msg)) // the fd is non-blocking
		return true                                   // never wait
	}))
	if errors.Is(serr, syscall.EAGAIN) || errors.Is(serr, syscall.ENOBUFS) {
		return false
	}
	require.NoError(t, serr)
	return true
}

// chanHandler is a slog.Handler that passes each record's message to a
// channel, dropping it when the channel is full.
type chanHandler chan string

func (h chanHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h chanHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h chanHandler) WithGroup(string) slog.Handler            { return h }
func (h chanHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h <- r.Message:
	default:
	}
	return nil
}

// TestSystemdSilentReceiverShutdown (D8): when systemd stops reading its
// notifications and the socket's queue is full, notifications are dropped
// (and reported) instead of blocking, and Serve returns promptly after its
// context is cancelled. It runs in real time, as the blocking write it guards
// against is invisible to synctest (a goroutine waiting on the network is not
// durably blocked, so a bubble would hang rather than fail); the waits are
// bounded by generous timeouts and ordered by events, never by sleeping.
func TestSystemdSilentReceiverShutdown(t *testing.T) {
	path, l := silentSystemd(t)
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "20000") // pings every 10 ms
	t.Setenv("WATCHDOG_PID", "")
	logs := make(chanHandler, 100)
	root := New("root", WithSystemd(), WithLogger(slog.New(logs)))
	require.NoError(t, root.Add("a", newProbe("a", nil)))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.Serve(ctx) }()

	// Wait until a notification the full queue refused is reported.
	timeout := time.After(10 * time.Second)
wait:
	for {
		select {
		case msg := <-logs:
			if msg == msgNotifyDropped {
				break wait
			}
		case <-timeout:
			t.Error("no notification reported as not sent in 10 s")
			break wait
		}
	}

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
		return
	case <-time.After(10 * time.Second):
		t.Error("Serve did not return within 10 s of cancellation: a notification blocks shutdown")
	}
	// Unwedge the notifier so that the test leaves no goroutine behind:
	// read what it sends until Serve returns.
	buf := make([]byte, 4096)
	for {
		select {
		case <-done:
			return
		default:
		}
		_ = l.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		_, _ = l.Read(buf)
	}
}

// TestSystemdDroppedNotifications: while systemd does not read, READY=1 and
// every WATCHDOG=1 is dropped once, without retries, and reported in one log
// line; once systemd reads again the pings reach it, and STOPPING=1 too.
func TestSystemdDroppedNotifications(t *testing.T) {
	path, l := silentSystemd(t)
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "2000000") // pings every second
	t.Setenv("WATCHDOG_PID", "")
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		root := New("root", WithSystemd(), WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
		require.NoError(t, root.Add("a", newProbe("a", nil)))
		sv := serveBG(t, root)
		nt := root.loop.notifier
		require.NotNil(t, nt)
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		assert.Equal(t, uint64(11), nt.conn.Dropped(), "READY=1 and 10 pings, each dropped once")
		assert.Equal(t, 1, strings.Count(buf.String(), msgNotifyDropped), "reported once: %s", buf.String())

		filler := recvAll(t, l) // systemd reads again
		assert.NotEmpty(t, filler)
		for _, m := range filler {
			assert.Equal(t, "filler", m, "nothing dropped reached the queue later")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"WATCHDOG=1"}, recvAll(t, l), "pings resume")
		require.NoError(t, sv.stop())
		assert.Equal(t, []string{"STOPPING=1"}, recvAll(t, l))
		assert.Equal(t, uint64(11), nt.conn.Dropped())
		assert.Equal(t, 1, strings.Count(buf.String(), msgNotifyDropped))
	})
}
