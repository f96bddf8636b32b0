package sdnotify

import (
	"errors"
	"math"
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

// TestWatchdogInterval: WATCHDOG_USEC and WATCHDOG_PID as systemd sets them
// (or mangles them) give a ping every half of the timeout, clamped to
// [MinWatchdogInterval, MaxWatchdogInterval] so that no value floods or
// overflows, or 0 (no pings) when the watchdog is off or not ours.
func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	const unset = "\x00unset" // a marker: the variable is not in the environment
	for _, tc := range []struct {
		name, usec, pid string
		want            time.Duration
	}{
		{"unset", unset, unset, 0},
		{"empty", "", unset, 0},
		{"garbage", "junk", unset, 0},
		{"with unit", "30s", unset, 0},
		{"with space", " 30000000", unset, 0},
		{"fraction", "1.5", unset, 0},
		{"zero", "0", unset, 0},
		{"negative", "-1", unset, 0},
		{"negative normal", "-30000000", unset, 0},
		{"1 us floods without a floor", "1", unset, MinWatchdogInterval},
		{"just under the floor", "19999", unset, MinWatchdogInterval},
		{"at the floor", "20000", unset, 10 * time.Millisecond},
		{"just over the floor", "20002", unset, 10*time.Millisecond + time.Microsecond},
		{"normal 30 s", "30000000", unset, 15 * time.Second},
		{"largest exact", "9223372036854775", unset, 9223372036854775 * time.Microsecond / 2},
		// The values below overflowed time.Duration(usec)*time.Microsecond.
		{"2^63/1000+1 wrapped negative: off", "9223372036854776", unset, MaxWatchdogInterval},
		{"wrapped to a 192 ns interval", "18446744073709552", unset, MaxWatchdogInterval},
		{"MaxInt64", "9223372036854775807", unset, MaxWatchdogInterval},
		{"MaxInt64+1", "9223372036854775808", unset, MaxWatchdogInterval},
		{"2^64-2", "18446744073709551614", unset, MaxWatchdogInterval},
		{"2^64-1 is systemd's infinity: off", "18446744073709551615", unset, 0},
		{"2^64 is out of range", "18446744073709551616", unset, 0},
		{"pid empty", "30000000", "", 15 * time.Second},
		{"pid self", "30000000", self, 15 * time.Second},
		{"pid self, leading zero", "30000000", "0" + self, 15 * time.Second},
		{"pid other", "30000000", "1", 0},
		{"pid other, huge usec", "18446744073709552", "1", 0},
		{"pid zero", "30000000", "0", 0},
		{"pid garbage", "30000000", "self", 0},
		{"pid self, usec off", "0", self, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for name, v := range map[string]string{"WATCHDOG_USEC": tc.usec, "WATCHDOG_PID": tc.pid} {
				t.Setenv(name, "") // restored after the test
				if v == unset {
					os.Unsetenv(name)
				} else {
					os.Setenv(name, v)
				}
			}
			if got := WatchdogInterval(); got != tc.want {
				t.Fatalf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: interval %v (%d ns), want %v", tc.usec, tc.pid, got, int64(got), tc.want)
			}
		})
	}
}

// TestWatchdogIntervalBounds: the bounds are what the documentation says and
// cannot overflow.
func TestWatchdogIntervalBounds(t *testing.T) {
	if MinWatchdogInterval != 10*time.Millisecond {
		t.Fatalf("MinWatchdogInterval = %v", MinWatchdogInterval)
	}
	// The largest whole number of microseconds a Duration holds, halved.
	if want := time.Duration(math.MaxInt64/1000*1000) / 2; MaxWatchdogInterval != want || want <= 0 {
		t.Fatalf("MaxWatchdogInterval = %d, want %d", MaxWatchdogInterval, want)
	}
	if 2*MaxWatchdogInterval < MaxWatchdogInterval {
		t.Fatal("twice MaxWatchdogInterval overflows")
	}
}
