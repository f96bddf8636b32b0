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
			lg := s.cfg.logger
			if lg == nil {
				lg = slog.Default()
			}
			lg.Warn("arbor: cannot notify systemd", slog.String("supervisor", s.name), slog.Any("error", err))
		}
		return nil
	}
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n := &notifier{
		readyC: make(chan struct{}),
		stopC:  make(chan struct{}),
		cancel: cancel,
		exited: make(chan struct{}),
	}
	go n.run(hctx, s, conn, sdnotify.WatchdogInterval())
	return n
}

// run sends READY=1 and STOPPING=1 when the loop says so, and WATCHDOG=1 each
// interval while the tree is live. It returns at STOPPING=1 or when Serve
// ends.
func (n *notifier) run(ctx context.Context, s *Supervisor, conn *sdnotify.Notifier, interval time.Duration) {
	defer close(n.exited)
	defer conn.Close()
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
			_ = conn.Notify(sdnotify.Ready)
		case <-tick:
			hctx, cancel := context.WithTimeout(ctx, interval)
			live := s.Health(hctx).Live
			cancel()
			if live {
				_ = conn.Notify(sdnotify.Watchdog)
			}
		case <-n.stopC:
			n.finish(conn, ready)
			return
		case <-ctx.Done(): // Serve ends; stopC is closed too
			n.finish(conn, ready)
			return
		}
	}
}

// finish sends READY=1 if the loop said so and it is not sent yet, then
// STOPPING=1.
func (n *notifier) finish(conn *sdnotify.Notifier, ready <-chan struct{}) {
	if ready != nil {
		select {
		case <-ready:
			_ = conn.Notify(sdnotify.Ready)
		default:
		}
	}
	_ = conn.Notify(sdnotify.Stopping)
}

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

// stopNotifier ends the notifier goroutine and waits for it.
func (l *loop) stopNotifier() {
	if n := l.notifier; n != nil {
		n.stopping()
		n.cancel()
		<-n.exited
	}
}
