package arbor

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checks renders a Health's checks as "path live/ready reason" lines.
func checks(h Health) []string {
	var out []string
	for _, c := range h.Checks {
		line := c.Path
		if c.Live {
			line += " live"
		} else {
			line += " dead"
		}
		if c.Ready {
			line += " ready"
		} else {
			line += " unready"
		}
		if c.Reason != "" {
			line += " " + c.Reason
		}
		out = append(out, line)
	}
	return out
}

// TestHealthTree: Health walks the whole tree with paths built from child
// names, and reports a healthy tree live and ready.
func TestHealthTree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := New("root", WithLogger(nil))
		db := New("database", WithLogger(nil))
		require.NoError(t, db.Add("conn", newProbe("conn", nil)))
		require.NoError(t, root.Add("db", db))
		require.NoError(t, root.Add("api", newProbe("api", nil)))
		h := root.Health(t.Context())
		assert.False(t, h.Live, "not serving yet")
		assert.Equal(t, []string{"root dead unready not serving", "root/db dead unready not serving", "root/db/conn dead unready not serving", "root/api dead unready not serving"}, checks(h),
			"before Serve, nothing is live or ready (issue 11, point 7)")
		sv := serveBG(t, root)
		h = root.Health(t.Context())
		assert.True(t, h.Live)
		assert.True(t, h.Ready)
		assert.Equal(t, []string{"root live ready", "root/db live ready", "root/db/conn live ready", "root/api live ready"}, checks(h))
		require.NoError(t, sv.stop())
		assert.False(t, root.Health(t.Context()).Live)
	})
}

// TestHealthDuringRestart: a child waiting in backoff makes the tree not
// ready but still live, with the reason and the error.
func TestHealthDuringRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := New("root", WithLogger(nil))
		mid := New("mid", WithLogger(nil), WithBackoff(ConstantBackoff(time.Second)))
		w := newProbe("w", nil)
		require.NoError(t, mid.Add("w", w))
		require.NoError(t, root.Add("mid", mid))
		sv := serveBG(t, root)
		w.exit <- errors.New("disk full")
		synctest.Wait()
		h := root.Health(t.Context())
		assert.True(t, h.Live)
		assert.False(t, h.Ready)
		assert.Equal(t, []string{"root live ready", "root/mid live ready", "root/mid/w live unready restarting"}, checks(h))
		assert.EqualError(t, h.Checks[2].Err, "disk full")
		time.Sleep(time.Second)
		synctest.Wait()
		assert.True(t, root.Health(t.Context()).Ready)
		require.NoError(t, sv.stop())
	})
}

// TestHealthAnswersWhileStopping: Health answers at once while the
// supervisor waits for a slow child to stop.
func TestHealthAnswersWhileStopping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("s", WithLogger(nil))
		slow := newProbe("slow", nil)
		slow.setIgnore(true)
		require.NoError(t, s.Add("slow", slow, WithShutdownTimeout(time.Minute)))
		sv := serveBG(t, s)
		done := make(chan error, 1)
		go func() { done <- s.Terminate(context.Background(), "slow") }()
		synctest.Wait()
		start := time.Now()
		h := s.Health(t.Context())
		assert.Zero(t, time.Since(start), "no time passes: the loop is not blocked")
		assert.True(t, h.Live)
		assert.Equal(t, []string{"s live ready", "s/slow live unready stopping"}, checks(h))
		close(slow.release)
		require.NoError(t, <-done)
		require.NoError(t, sv.stop())
	})
}

// TestHealthStuckNested: a stuck child deep in the tree makes it not live,
// and the check names it.
func TestHealthStuckNested(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := New("root", WithLogger(nil))
		mid := New("mid", WithLogger(nil))
		w := newProbe("w", nil)
		w.setIgnore(true)
		require.NoError(t, mid.Add("w", w, WithShutdownTimeout(time.Second)))
		require.NoError(t, root.Add("mid", mid))
		sv := serveBG(t, root)
		go func() { _ = mid.Terminate(context.Background(), "w") }()
		time.Sleep(time.Second)
		synctest.Wait()
		h := root.Health(t.Context())
		assert.False(t, h.Live)
		assert.Equal(t, []string{"root live ready", "root/mid live ready", "root/mid/w dead unready stuck"}, checks(h))
		require.ErrorIs(t, h.Checks[2].Err, ErrStuck)
		close(w.release)
		synctest.Wait()
		require.NoError(t, sv.stop())
	})
}

// TestHealthFailedSupervisor: a supervisor shutting down after exceeding its
// intensity is not live while it stops its children.
func TestHealthFailedSupervisor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("s", WithIntensity(0, time.Minute), WithLogger(nil))
		a := newProbe("a", nil)
		slow := newProbe("slow", nil)
		slow.setIgnore(true)
		require.NoError(t, s.Add("slow", slow, WithShutdownTimeout(time.Minute)))
		require.NoError(t, s.Add("a", a))
		sv := serveBG(t, s)
		a.exit <- errors.New("boom")
		synctest.Wait()
		h := s.Health(t.Context())
		assert.False(t, h.Live)
		assert.Equal(t, []string{"s dead unready failed, shutting down", "s/slow live unready stopping", "s/a live ready"}, checks(h))
		require.ErrorIs(t, h.Checks[0].Err, ErrIntensityExceeded)
		close(slow.release)
		require.ErrorIs(t, <-sv.done, ErrIntensityExceeded)
	})
}

// TestHealthNoAnswer: a supervisor whose loop is busy in a slow restart
// predicate is reported as not answering when ctx ends.
func TestHealthNoAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		s := New("s", WithLogger(nil))
		a := newProbe("a", nil)
		require.NoError(t, s.Add("a", a, WithRestartIf(func(error) bool { <-block; return true })))
		sv := serveBG(t, s)
		a.exit <- errors.New("boom") // the loop now blocks in the predicate
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		h := s.Health(ctx)
		assert.False(t, h.Live)
		assert.Equal(t, []string{"s dead unready no answer"}, checks(h))
		close(block)
		require.NoError(t, sv.stop())
	})
}

// recvAll reads every datagram waiting on l without blocking.
func recvAll(t *testing.T, l *net.UnixConn) []string {
	t.Helper()
	rc, err := l.SyscallConn()
	require.NoError(t, err)
	var out []string
	buf := make([]byte, 4096)
	for {
		var n int
		var rerr error
		require.NoError(t, rc.Read(func(fd uintptr) bool {
			n, _, rerr = syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT)
			return true // never wait
		}))
		if errors.Is(rerr, syscall.EAGAIN) {
			return out
		}
		require.NoError(t, rerr)
		out = append(out, string(buf[:n]))
	}
}

// TestSystemdNotify: a root with WithSystemd sends READY=1 once ready,
// WATCHDOG=1 every half WATCHDOG_USEC while live and none while a child is
// stuck, and STOPPING=1 on shutdown, as datagrams on a real socket.
func TestSystemdNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	defer l.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "2000000") // pings every second
	t.Setenv("WATCHDOG_PID", "")
	synctest.Test(t, func(t *testing.T) {
		root := New("root", WithSystemd(), WithLogger(nil))
		mid := New("mid", WithSystemd(), WithLogger(nil)) // nested: never notifies
		w := newProbe("w", nil)
		w.setIgnore(true)
		require.NoError(t, mid.Add("w", w, WithShutdownTimeout(time.Second)))
		require.NoError(t, root.Add("db", slowStarter("db", 2500*time.Millisecond), WithReadiness(0)))
		require.NoError(t, root.Add("mid", mid))
		sv := serveBG(t, root)
		assert.Empty(t, recvAll(t, l), "not ready yet")
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"WATCHDOG=1"}, recvAll(t, l), "live while starting")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"WATCHDOG=1", "READY=1", "WATCHDOG=1"}, recvAll(t, l), "pings at 2 s and 3 s, ready at 2.5 s")
		go func() { _ = mid.Terminate(context.Background(), "w") }()
		time.Sleep(time.Second) // w is stuck from here on
		synctest.Wait()
		recvAll(t, l) // the ping at the moment w became stuck may or may not be sent
		time.Sleep(5 * time.Second)
		synctest.Wait()
		assert.Empty(t, recvAll(t, l), "no pings while the tree is not live")
		close(w.release)
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"WATCHDOG=1"}, recvAll(t, l), "pings resume when live again")
		require.NoError(t, sv.stop())
		assert.Equal(t, []string{"STOPPING=1"}, recvAll(t, l))
	})
}

// TestSystemdNotifyUnset: without NOTIFY_SOCKET, WithSystemd does nothing.
func TestSystemdNotifyUnset(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	synctest.Test(t, func(t *testing.T) {
		root := New("root", WithSystemd(), WithLogger(nil))
		require.NoError(t, root.Add("a", newProbe("a", nil)))
		sv := serveBG(t, root)
		assert.Nil(t, root.loop.notifier)
		require.NoError(t, sv.stop())
	})
}
