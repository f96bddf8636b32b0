package arbor

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The package's test harness: one fake worker (probe), a supervisor served in
// the background (served), and the helpers the test files share. Every
// supervisor test runs in a synctest bubble with fake time.

// errBoom is the error fake workers fail with.
var errBoom = errors.New("boom")

// ---------------------------------------------------------------------------
// The fake worker.

// forever, as copyPlan.beats, sends heartbeats without end.
const forever = -1

// copyPlan is what one copy of a probe does by itself, without being told.
// The zero copyPlan runs until its context is cancelled and then returns
// ctx.Err().
type copyPlan struct {
	failAtOnce error         // when set, the copy returns it as soon as it starts
	ready      bool          // the copy signals readiness (Ready) ...
	readyAfter time.Duration // ... this long after it started
	beatEvery  time.Duration // when positive, the copy sends a heartbeat this often ...
	beats      int           // ... this many times (forever: without end), then goes silent
	ignore     bool          // the copy ignores cancellation until release is closed, then returns nil
	hang       time.Duration // when positive, the copy runs this long after its cancellation, then returns nil
}

// probe is the package's fake worker. Every copy counts itself (copies
// running now, the most ever running at once), records when it started, its
// context and, once it sees its context cancelled, the context's cause; and
// logs "start", "ready", "stop", "exit" and "panic" events under the probe's
// name to log (which may be nil). What a copy does by itself is its copyPlan;
// the test steers the running copy through channels.
type probe struct {
	name string
	log  *eventLog

	exit    chan error        // a value sent here makes the running copy return it
	panicV  chan any          // a value sent here makes the running copy panic with it
	do      chan func() error // a function sent here runs in the running copy, which returns its result
	release chan struct{}     // closing it makes copies that ignore cancellation return nil

	mu      sync.Mutex
	plan    copyPlan   // what each copy does by itself ...
	first   []copyPlan // ... but copy k < len(first), which follows first[k]
	running int        // copies running now
	max     int        // most copies ever running at once
	started []time.Time
	ctxs    []context.Context
	causes  []error // context.Cause of each copy that saw its context cancelled, in that order
}

// newProbe returns a probe whose copies follow the zero copyPlan.
func newProbe(name string, log *eventLog) *probe {
	return &probe{
		name:    name,
		log:     log,
		exit:    make(chan error),
		panicV:  make(chan any),
		do:      make(chan func() error),
		release: make(chan struct{}),
	}
}

// each makes every copy of p started from now on follow c, but for the copies
// firstCopies gives their own plan. It returns p.
func (p *probe) each(c copyPlan) *probe {
	p.mu.Lock()
	p.plan = c
	p.mu.Unlock()
	return p
}

// firstCopies makes copy k of p, for k < len(cs), follow cs[k] instead of the
// plan of each. It returns p.
func (p *probe) firstCopies(cs ...copyPlan) *probe {
	p.mu.Lock()
	p.first = cs
	p.mu.Unlock()
	return p
}

// slowStarter returns a probe whose copies signal readiness warmup after they
// start; with a zero warmup they never do.
func slowStarter(name string, warmup time.Duration) *probe {
	return newProbe(name, nil).each(copyPlan{ready: warmup > 0, readyAfter: warmup})
}

// setIgnore says whether the copies of p started from now on ignore
// cancellation until release is closed; the running copy keeps its way.
func (p *probe) setIgnore(b bool) {
	p.mu.Lock()
	p.plan.ignore = b
	p.mu.Unlock()
}

func (p *probe) Serve(ctx context.Context) error {
	p.mu.Lock()
	plan := p.plan
	if k := len(p.started); k < len(p.first) {
		plan = p.first[k]
	}
	p.started = append(p.started, time.Now())
	p.ctxs = append(p.ctxs, ctx)
	p.running++
	p.max = max(p.max, p.running)
	p.mu.Unlock()
	p.log.add("start " + p.name)
	defer func() {
		p.mu.Lock()
		p.running--
		p.mu.Unlock()
	}()
	if plan.failAtOnce != nil {
		p.log.add("exit " + p.name)
		return plan.failAtOnce
	}

	var ready, beat <-chan time.Time
	if plan.ready {
		if plan.readyAfter <= 0 {
			p.log.add("ready " + p.name)
			Ready(ctx)
		} else {
			t := time.NewTimer(plan.readyAfter)
			defer t.Stop()
			ready = t.C
		}
	}
	beats := plan.beats
	if plan.beatEvery > 0 && beats != 0 {
		t := time.NewTicker(plan.beatEvery)
		defer t.Stop()
		beat = t.C
	}
	var release chan struct{}
	if plan.ignore {
		release = p.release
	}
	done := ctx.Done()
	for {
		select {
		case <-done:
			p.mu.Lock()
			p.causes = append(p.causes, context.Cause(ctx))
			p.mu.Unlock()
			if plan.ignore { // from now on wait for release (or exit) only
				done, ready, beat = nil, nil, nil
				continue
			}
			if plan.hang > 0 {
				time.Sleep(plan.hang)
				p.log.add("stop " + p.name)
				return nil
			}
			p.log.add("stop " + p.name)
			return ctx.Err()
		case <-release:
			p.log.add("stop " + p.name)
			return nil
		case err := <-p.exit:
			p.log.add("exit " + p.name)
			return err
		case v := <-p.panicV:
			p.log.add("panic " + p.name)
			panic(v)
		case f := <-p.do:
			return f()
		case <-ready:
			ready = nil
			p.log.add("ready " + p.name)
			Ready(ctx)
		case <-beat:
			if beats != 0 {
				Heartbeat(ctx)
				if beats > 0 {
					beats--
				}
			}
		}
	}
}

// fail makes the running copy of p return err and waits for the bubble. It
// fails the test if no copy is running.
func (p *probe) fail(t *testing.T, err error) {
	t.Helper()
	synctest.Wait()
	select {
	case p.exit <- err:
	default:
		t.Fatalf("no copy of %s is running", p.name)
	}
	synctest.Wait()
}

// counts returns how many copies of p run now, the most that ever ran at
// once, and how many were started.
func (p *probe) counts() (running, max, starts int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running, p.max, len(p.started)
}

// starts returns how many copies of p were started.
func (p *probe) starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.started)
}

// startTimes returns when each copy of p started.
func (p *probe) startTimes() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.started...)
}

// startsSince returns when each copy of p started, as the time since t0; nil
// if none did.
func (p *probe) startsSince(t0 time.Time) []time.Duration {
	var out []time.Duration
	for _, at := range p.startTimes() {
		out = append(out, at.Sub(t0))
	}
	return out
}

// copyContext returns the context of copy k of p (0 is the first).
func (p *probe) copyContext(t *testing.T, k int) context.Context {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	require.Greater(t, len(p.ctxs), k, "%s: copy %d has not started", p.name, k)
	return p.ctxs[k]
}

// causesSeen returns the causes of cancellation the copies of p saw, in order.
func (p *probe) causesSeen() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]error(nil), p.causes...)
}

// lastCause returns the cause of cancellation the latest cancelled copy of p
// saw, or nil if none was cancelled.
func (p *probe) lastCause() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.causes) == 0 {
		return nil
	}
	return p.causes[len(p.causes)-1]
}

// ---------------------------------------------------------------------------
// Logs.

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

// launchOrder records the events of probes (their eventLog) together with
// the order in which the supervisor launched their copies.
//
// The supervisor starts children one after another, but each in its own
// goroutine, so the order in which the probes' first lines run (and log
// "start x") is up to the Go scheduler: the raw eventLog lists simultaneous
// starts in any order. The order of launch is fixed: the supervisor reports
// each launch as an EventChildStarted or EventChildRestarted, in order, to
// an event handler launchOrder adds. take puts the "start" events of the log
// in launch order, keeping their positions among the other events, which the
// supervisor orders itself (it waits for each stop, and starts a group only
// after its stops).
type launchOrder struct {
	s   *Supervisor
	log *eventLog

	mu       sync.Mutex
	launches []string // since the last take
}

// watchLaunches watches s's launches; call it before s serves.
func watchLaunches(s *Supervisor) *launchOrder {
	o := &launchOrder{s: s, log: &eventLog{}}
	s.cfg.handlers = append(s.cfg.handlers, func(e Event) {
		if e.Supervisor == s.name && (e.Kind == EventChildStarted || e.Kind == EventChildRestarted) {
			o.mu.Lock()
			o.launches = append(o.launches, e.Child)
			o.mu.Unlock()
		}
	})
	return o
}

// probe returns a probe that logs into o.
func (o *launchOrder) probe(name string) *probe { return newProbe(name, o.log) }

// add adds p to the supervisor under its name.
func (o *launchOrder) add(t *testing.T, p *probe, opts ...ChildOption) {
	t.Helper()
	require.NoError(t, o.s.Add(p.name, p, opts...))
}

// take returns the events since the last take, "start" events in launch
// order, and forgets them. Call it when the bubble is idle.
func (o *launchOrder) take(t *testing.T) []string {
	t.Helper()
	events := o.log.take()
	o.mu.Lock()
	ls := o.launches
	o.launches = nil
	o.mu.Unlock()
	var launched, logged []string
	for _, name := range ls {
		launched = append(launched, "start "+name)
	}
	for _, e := range events {
		if strings.HasPrefix(e, "start ") {
			logged = append(logged, e)
		}
	}
	require.ElementsMatch(t, launched, logged, "every launched copy logged its start")
	i := 0
	for k, e := range events {
		if strings.HasPrefix(e, "start ") {
			events[k] = launched[i]
			i++
		}
	}
	return events
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for a logger's
// output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ---------------------------------------------------------------------------
// Serving.

// newQuiet returns a supervisor that logs nothing.
func newQuiet(name string, opts ...Option) *Supervisor {
	return New(name, append([]Option{WithLogger(nil)}, opts...)...)
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

// stillServing fails the test if Serve has returned.
func (sv *served) stillServing(t *testing.T) {
	t.Helper()
	select {
	case err := <-sv.done:
		sv.done <- err // keep it for whoever waits
		t.Fatalf("Serve returned %v; it should still serve", err)
	default:
	}
}

// returned waits for Serve to return by itself (without cancelling its
// context) and returns its result. It fails the test if Serve is still
// running once the bubble is idle.
func (sv *served) returned(t *testing.T) error {
	t.Helper()
	synctest.Wait()
	select {
	case err := <-sv.done:
		sv.cancel()
		return err
	default:
	}
	t.Fatalf("Serve is still running; it should have returned by itself")
	return nil
}

// serveNow runs s.Serve and requires it to return without any time passing
// and without the bubble having to wait: a bad configuration must be
// reported at once.
func serveNow(t *testing.T, s *Supervisor) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Serve(ctx) }()
	select {
	case err := <-done:
		assert.Zero(t, time.Since(start), "Serve returned at once")
		return err
	case <-time.After(time.Hour):
		cancel()
		<-done
		t.Fatalf("Serve did not return at once")
		return nil
	}
}

// ---------------------------------------------------------------------------
// Children.

// states returns the children's names and states as "name:state".
func states(s *Supervisor) []string {
	var out []string
	for _, c := range s.Children() {
		out = append(out, c.Name+":"+c.State.String())
	}
	return out
}

// childInfo returns the ChildInfo of the named child, failing if it is
// absent.
func childInfo(t *testing.T, s *Supervisor, name string) ChildInfo {
	t.Helper()
	for _, c := range s.Children() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no child %q in %v", name, states(s))
	return ChildInfo{}
}

// childNames returns the children's names in the order Children lists them;
// never nil.
func childNames(s *Supervisor) []string {
	out := []string{}
	for _, c := range s.Children() {
		out = append(out, c.Name)
	}
	return out
}

// restartCounts returns the Restarts counter of every child, by name.
func restartCounts(s *Supervisor) map[string]int {
	out := map[string]int{}
	for _, c := range s.Children() {
		out[c.Name] = c.Restarts
	}
	return out
}

// semInfo is childInfo under its former name, still used by
// regression_model_test.go and soak_test.go.
func semInfo(t *testing.T, s *Supervisor, name string) ChildInfo {
	t.Helper()
	return childInfo(t, s, name)
}

// semReturned is served.returned under its former name, still used by
// regression_model_test.go.
func semReturned(t *testing.T, sv *served) error {
	t.Helper()
	return sv.returned(t)
}

// ---------------------------------------------------------------------------
// Backoff.

// fixedBackoff is a custom Backoff that always asks for the same delay,
// negative ones included (the engine must treat them as zero). Its value
// receiver lets a test hand WithBackoff a typed nil *fixedBackoff.
type fixedBackoff time.Duration

func (f fixedBackoff) Delay(int) time.Duration { return time.Duration(f) }
