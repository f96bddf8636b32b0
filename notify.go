package arbor

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/arborgo/arbor/internal/sdnotify"
)

// WithSystemd makes a root supervisor report to systemd through sd_notify
// when $NOTIFY_SOCKET is set (a unit with Type=notify): READY=1 once the
// supervisor is ready (every child ready, see Health), WATCHDOG=1 every half
// $WATCHDOG_USEC (WatchdogSec=) for as long as the tree is live, so that a
// tree with a stuck child or a failed supervisor stops pinging and systemd
// restarts the process, and STOPPING=1 when the supervisor begins to shut
// down. Without $NOTIFY_SOCKET it does nothing. It has no effect on a
// supervisor served as a child of another.
//
// The ping interval is clamped: never more often than every 10 ms, so a
// WatchdogSec= under 20 ms cannot be honoured (systemd's own check of it is
// coarser than that), and a $WATCHDOG_USEC too large for a time.Duration
// (about 292 years) counts as that. The watchdog is off when $WATCHDOG_USEC
// is unset, empty, not a number, 0 or 2^64-1 (systemd's infinity), or when
// $WATCHDOG_PID names another process.
//
// Notifications never wait: one that systemd's socket cannot take at once,
// because systemd has stopped reading it, is dropped (not retried; the next
// ping is sent on time), and the first drop of each Serve is logged as a
// warning (unless WithLogger(nil)). So a silent systemd cannot delay
// shutdown or wedge the tree.
func WithSystemd() Option {
	return supervisorOption(func(c *config) { c.systemd = true })
}

// notifier sends a root supervisor's notifications to systemd from its own
// goroutine, which Serve starts and waits for, so that the loop never waits
// for a socket or for Health.
type notifier struct {
	readyC, stopC chan struct{} // closed by the loop, once each
	readySent     bool          // loop-owned
	stopSent      bool          // loop-owned
	cancel        context.CancelFunc
	exited        chan struct{}

	conn   *sdnotify.Notifier // owned by run, but for Dropped
	warned bool               // run-owned: a failed notification was logged
}

// startNotifier starts the systemd notifier for a root supervisor with
// WithSystemd, or returns nil.
func (s *Supervisor) startNotifier(ctx context.Context) *notifier {
	if !s.cfg.systemd || copyOf(ctx) != nil {
		return nil
	}
	conn, err := sdnotify.Dial()
	if err != nil {
		if !errors.Is(err, sdnotify.ErrNoSocket) && !s.cfg.quiet {
			// Logged on a goroutine of its own, never the supervisor's; Serve
			// does not wait for it.
			go s.warn("arbor: cannot notify systemd", slog.String("supervisor", s.name), slog.Any("error", err))
		}
		return nil
	}
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n := &notifier{
		readyC: make(chan struct{}),
		stopC:  make(chan struct{}),
		cancel: cancel,
		exited: make(chan struct{}),
		conn:   conn,
	}
	go n.run(hctx, s, sdnotify.WatchdogInterval())
	return n
}

// run sends READY=1 and STOPPING=1 when the loop says so, and WATCHDOG=1 each
// interval while the tree is live. It returns at STOPPING=1 or when Serve
// ends. No notification waits for the socket (see notify), so run returns
// promptly whatever systemd does.
func (n *notifier) run(ctx context.Context, s *Supervisor, interval time.Duration) {
	defer close(n.exited)
	defer n.conn.Close()
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	ready := n.readyC
	for {
		select {
		case <-ready:
			ready = nil
			n.notify(s, sdnotify.Ready)
		case <-tick:
			hctx, cancel := context.WithTimeout(ctx, interval)
			live := s.Health(hctx).Live
			cancel()
			if live {
				n.notify(s, sdnotify.Watchdog)
			}
		case <-n.stopC:
			n.finish(s, ready)
			return
		case <-ctx.Done(): // Serve ends; stopC is closed too
			n.finish(s, ready)
			return
		}
	}
}

// finish sends READY=1 if the loop said so and it is not sent yet, then
// STOPPING=1.
func (n *notifier) finish(s *Supervisor, ready <-chan struct{}) {
	if ready != nil {
		select {
		case <-ready:
			n.notify(s, sdnotify.Ready)
		default:
		}
	}
	n.notify(s, sdnotify.Stopping)
}

// notify sends one notification without waiting. One that is not sent (the
// socket's queue is full because systemd stopped reading, or any other error)
// is dropped, never retried: a lost READY=1 or STOPPING=1 is for systemd's
// timeouts to handle, and a lost ping is followed by the next one. The first
// failure is logged; the rest are only counted (sdnotify.Notifier.Dropped),
// so that a wedged systemd does not flood the log.
func (n *notifier) notify(s *Supervisor, state string) {
	err := n.conn.Notify(state)
	if err == nil || n.warned {
		return
	}
	n.warned = true
	if !s.cfg.quiet {
		go s.warn(msgNotifyDropped, slog.String("supervisor", s.name),
			slog.String("notification", state), slog.Any("error", err))
	}
}

// warn logs a notifier's warning, losing it if the logger panics. It runs
// on a goroutine of its own, which ends when the logger returns: a logger
// that blocks cannot keep the notifier, or Serve, from ending.
func (s *Supervisor) warn(msg string, attrs ...any) {
	defer func() { _ = recover() }()
	s.logger().Warn(msg, attrs...)
}

// msgNotifyDropped is logged at the first notification not sent.
const msgNotifyDropped = "arbor: systemd notification not sent"

// ready and stopping are called by the loop; a nil notifier does nothing.
func (n *notifier) ready() {
	if n != nil && !n.readySent {
		n.readySent = true
		close(n.readyC)
	}
}

func (n *notifier) stopping() {
	if n != nil && !n.stopSent {
		n.stopSent = true
		close(n.stopC)
	}
}

// stopNotifier ends the notifier goroutine and waits for it. The wait is
// short: the goroutine never waits for the socket, and Health, which it may
// be asking, answers at once when its context is cancelled.
func (l *loop) stopNotifier() {
	if n := l.notifier; n != nil {
		n.stopping()
		n.cancel()
		<-n.exited
	}
}

// logger is the root's logger for its systemd notifications: WithLogger's,
// or slog.Default().
func (s *Supervisor) logger() *slog.Logger {
	if s.cfg.logger != nil {
		return s.cfg.logger
	}
	return slog.Default()
}
