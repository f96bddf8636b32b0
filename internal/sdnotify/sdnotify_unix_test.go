//go:build unix

package sdnotify

import (
	"errors"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// fillQueue fills the receive queue of the datagram socket at path, which
// nobody reads, until it takes no more datagrams from anyone: one sender can
// run out of its own send buffer first, so it uses as many as it takes.
func fillQueue(t *testing.T, path string) {
	t.Helper()
	for range 64 {
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		rc, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		for sent := 0; ; sent++ {
			var werr error
			if err := rc.Write(func(fd uintptr) bool {
				_, werr = syscall.Write(int(fd), []byte("filler")) // the fd is non-blocking
				return true
			}); err != nil {
				t.Fatal(err)
			}
			if errors.Is(werr, syscall.EAGAIN) || errors.Is(werr, syscall.ENOBUFS) {
				if sent == 0 {
					return // full for a fresh sender too
				}
				break
			}
			if werr != nil {
				t.Fatal(werr)
			}
		}
	}
	t.Fatal("cannot fill the receive queue")
}

// TestNotifyFullQueueDoesNotBlock (D8): when the receiver has stopped reading
// and its queue is full, Notify returns ErrDropped at once, every time,
// counting each drop, instead of waiting for room; once the receiver reads
// again, notifications go through. Real time, bounded: a blocked Notify
// waits in the network poller, where synctest cannot see it.
func TestNotifyFullQueueDoesNotBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	l := listen(t, path)
	fillQueue(t, path)
	n, err := DialSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()

	done := make(chan []error, 1)
	go func() {
		var errs []error
		for _, s := range []string{Ready, Watchdog, Watchdog, Stopping} {
			errs = append(errs, n.Notify(s))
		}
		done <- errs
	}()
	var errs []error
	select {
	case errs = <-done:
	case <-time.After(10 * time.Second):
		t.Error("Notify blocked on a full queue for 10 s")
		// Read until the blocked Notify calls are through, so that no
		// goroutine is left behind.
		buf := make([]byte, 64)
		for errs == nil {
			_ = l.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			_, _ = l.Read(buf)
			select {
			case errs = <-done:
			default:
			}
		}
		return
	}
	for i, err := range errs {
		if !errors.Is(err, ErrDropped) || !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.ENOBUFS) {
			t.Errorf("notification %d on a full queue: %v, want ErrDropped", i, err)
		}
	}
	if d := n.Dropped(); d != 4 {
		t.Errorf("Dropped() = %d, want 4", d)
	}

	// The receiver reads again: the queue drains and the next one goes
	// through; nothing dropped was kept to be sent later.
	for {
		if got := receive(t, l); got != "filler" {
			t.Fatalf("received %q, want only the filler", got)
		}
		if err := n.Notify(Watchdog); err == nil {
			break
		} else if !errors.Is(err, ErrDropped) {
			t.Fatal(err)
		}
	}
	for {
		got := receive(t, l)
		if got == Watchdog {
			break
		}
		if got != "filler" {
			t.Fatalf("received %q, want the filler then %q", got, Watchdog)
		}
	}
}

// TestNotifyErrors: a notification that fails for another reason than a full
// queue (the receiver is gone, the connection closed) returns an error at
// once, distinct from ErrDropped, and is counted too.
func TestNotifyErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	l := listen(t, path)
	n, err := DialSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Close() // systemd is gone
	err = n.Notify(Watchdog)
	if err == nil || errors.Is(err, ErrDropped) {
		t.Fatalf("Notify to a closed receiver: %v, want an error other than ErrDropped", err)
	}
	n.Close()
	if err := n.Notify(Watchdog); err == nil {
		t.Fatal("Notify after Close: no error")
	}
	if d := n.Dropped(); d != 2 {
		t.Fatalf("Dropped() = %d, want 2", d)
	}
	var zero Notifier
	if err := zero.Notify(Ready); err != nil || zero.Dropped() != 0 {
		t.Fatalf("zero Notifier: %v, %d dropped", err, zero.Dropped())
	}
}
