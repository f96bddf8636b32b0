package sdnotify

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// listen opens a unix datagram socket as systemd would.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func receive(t *testing.T, l *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	if err := l.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := l.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotifyPathSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	l := listen(t, path)
	t.Setenv("NOTIFY_SOCKET", path)
	n, err := Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for _, want := range []string{Ready, Watchdog, "STATUS=serving\nREADY=1", Stopping} {
		if err := n.Notify(want); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, l); got != want {
			t.Fatalf("received %q, want %q", got, want)
		}
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	name := "arbor-sdnotify-test-" + strconv.Itoa(os.Getpid())
	l := listen(t, "\x00"+name)
	n, err := DialSocket("@" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Notify(Ready); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, l); got != Ready {
		t.Fatalf("received %q, want %q", got, Ready)
	}
}

func TestNoSocketIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n, err := Dial()
	if !errors.Is(err, ErrNoSocket) {
		t.Fatalf("Dial without NOTIFY_SOCKET: %v", err)
	}
	if err := n.Notify(Ready); err != nil {
		t.Fatalf("Notify on nil Notifier: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	if d := WatchdogInterval(); d != 0 {
		t.Fatalf("unset: %v", d)
	}
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", "")
	if d := WatchdogInterval(); d != 15*time.Second {
		t.Fatalf("30s watchdog: interval %v, want 15s", d)
	}
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	if d := WatchdogInterval(); d != 15*time.Second {
		t.Fatalf("own pid: interval %v, want 15s", d)
	}
	t.Setenv("WATCHDOG_PID", "1")
	if d := WatchdogInterval(); d != 0 {
		t.Fatalf("another pid: interval %v, want 0", d)
	}
	t.Setenv("WATCHDOG_USEC", "junk")
	if d := WatchdogInterval(); d != 0 {
		t.Fatalf("junk: interval %v, want 0", d)
	}
}
