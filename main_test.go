package arbor

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"

	"go.uber.org/goleak"
)

// TestMain fails the test binary if any test leaves a goroutine behind, and
// makes every test check each move of a child's lifecycle against the table
// of allowed moves.
func TestMain(m *testing.M) {
	checkPhaseMoves = true
	goleak.VerifyTestMain(m)
}

// served is a supervisor running in its own goroutine, for tests.
type served struct {
	cancel context.CancelFunc
	done   chan error
}

// serveBG starts s.Serve in a goroutine and waits until the bubble is idle.
// Call it inside synctest.Test.
func serveBG(t *testing.T, s *Supervisor) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	sv := &served{cancel: cancel, done: make(chan error, 1)}
	go func() { sv.done <- s.Serve(ctx) }()
	synctest.Wait()
	return sv
}

// stop cancels Serve's context and returns what Serve returned.
func (sv *served) stop() error {
	sv.cancel()
	return <-sv.done
}

// probe is a worker that counts its copies, records the events of its life,
// and is steered by the test through channels.
type probe struct {
	name string
	log  *eventLog

	mu      sync.Mutex
	running int // copies running now
	max     int // most copies ever running at once
	starts  int
	exit    chan error // a value sent here makes the running copy return it
	panicV  chan any   // a value sent here makes the running copy panic
	ignore  bool       // ignore cancellation until release is closed
	release chan struct{}
}

func newProbe(name string, log *eventLog) *probe {
	return &probe{name: name, log: log, exit: make(chan error), panicV: make(chan any), release: make(chan struct{})}
}

func (p *probe) Serve(ctx context.Context) error {
	p.mu.Lock()
	p.running++
	p.starts++
	if p.running > p.max {
		p.max = p.running
	}
	ignore := p.ignore
	p.mu.Unlock()
	p.log.add("start " + p.name)
	defer func() {
		p.mu.Lock()
		p.running--
		p.mu.Unlock()
	}()
	if ignore {
		select {
		case <-p.release:
			p.log.add("stop " + p.name)
			return nil
		case err := <-p.exit:
			p.log.add("exit " + p.name)
			return err
		}
	}
	select {
	case <-ctx.Done():
		p.log.add("stop " + p.name)
		return ctx.Err()
	case err := <-p.exit:
		p.log.add("exit " + p.name)
		return err
	case v := <-p.panicV:
		p.log.add("panic " + p.name)
		panic(v)
	}
}

func (p *probe) setIgnore(b bool) {
	p.mu.Lock()
	p.ignore = b
	p.mu.Unlock()
}

func (p *probe) counts() (running, max, starts int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running, p.max, p.starts
}

// eventLog records events from many goroutines in order.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(e string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

// take returns the events so far and forgets them.
func (l *eventLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.events
	l.events = nil
	return e
}

// states returns the children's names and states as "name:state".
func states(s *Supervisor) []string {
	var out []string
	for _, c := range s.Children() {
		out = append(out, c.Name+":"+c.State.String())
	}
	return out
}
