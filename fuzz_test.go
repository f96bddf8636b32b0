package arbor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// This file holds the native fuzz tests for every input that comes from
// users: option values (FuzzOptions), names (FuzzNames) and sequences of
// calls of the API (FuzzAPISequence). Under a plain `go test` their seeds
// (the f.Add calls and testdata/fuzz/<FuzzName>/) run as unit tests; run
// `go test -run '^$' -fuzz '^FuzzOptions$' -fuzztime 30s .` to fuzz one.
// Every supervisor runs in a synctest bubble with fake time, so that a hang
// is reported as a deadlock and a leaked goroutine as a bubble that does not
// end.

// ---------------------------------------------------------------------------
// Helpers (prefixed fz to keep clear of other test files).

var errFzBoom = errors.New("fz: boom")

// fzLogger returns a logger that formats every record and throws it away, so
// that fuzzed names and errors go through the logging code.
func fzLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fzWatchdog crashes the test binary if the input takes a minute of real
// time: a busy loop in zero fake time, which synctest cannot see as a
// deadlock. The fuzzing engine then keeps the input. Call the function it
// returns when the input is done.
func fzWatchdog(input string) (stop func()) {
	t := time.AfterFunc(time.Minute, func() {
		panic("fz: input ran for a minute of real time (a busy loop?): " + input)
	})
	return func() { t.Stop() }
}

// fzValidName reports whether checkName's documented rule accepts name:
// non-empty and free of '/'.
func fzValidName(name string) bool { return name != "" && !strings.Contains(name, "/") }

// fzClamp maps any x into [lo, hi] (lo plus x, as unsigned, modulo the
// range's size), so that every fuzzed value lands somewhere in the range.
func fzClamp(x, lo, hi int64) int64 {
	span := uint64(hi - lo + 1)
	u := uint64(x)
	if span == 0 {
		return int64(u)
	}
	return lo + int64(u%span)
}

// fzExit is how a fuzzed worker ends a copy by itself.
type fzExit uint8

const (
	fzExitError fzExit = iota
	fzExitNil
	fzExitPanic
	fzExitGoexit
	fzExitDoNotRestart
	fzExitTerminateTree
	fzExitKinds
)

// do ends the calling copy the way e says: it returns an error or nil,
// panics, or calls runtime.Goexit.
func (e fzExit) do() error {
	switch e {
	case fzExitNil:
		return nil
	case fzExitPanic:
		panic(errFzBoom)
	case fzExitGoexit:
		runtime.Goexit()
	case fzExitDoNotRestart:
		return fmt.Errorf("fz: done: %w", ErrDoNotRestart)
	case fzExitTerminateTree:
		return fmt.Errorf("fz: stop all: %w", ErrTerminateTree)
	}
	return errFzBoom
}

// failed reports whether the engine counts the exit as a failure (a non-nil
// error, a panic or Goexit).
func (e fzExit) failed() bool { return e != fzExitNil }

// matches reports whether err is (or wraps) what an exit of kind e returns.
func (e fzExit) matches(err error) bool {
	var pe *PanicError
	switch e {
	case fzExitNil:
		return err == nil
	case fzExitPanic:
		return errors.As(err, &pe) && errors.Is(err, errFzBoom)
	case fzExitGoexit:
		return errors.Is(err, ErrGoexit)
	case fzExitDoNotRestart:
		return errors.Is(err, ErrDoNotRestart)
	case fzExitTerminateTree:
		return errors.Is(err, ErrTerminateTree)
	}
	return errors.Is(err, errFzBoom) && !errors.As(err, &pe)
}

// fzFixed is a custom Backoff that always asks for the same delay, negative
// ones included (the engine must treat them as zero).
type fzFixed time.Duration

func (f fzFixed) Delay(int) time.Duration { return time.Duration(f) }

// ---------------------------------------------------------------------------
// FuzzOptions.

// fzOptInput is one decoded FuzzOptions input.
type fzOptInput struct {
	maxRestarts int
	period      time.Duration
	strategy    Strategy
	auto        AutoShutdown
	policy      RestartPolicy
	significant bool
	timeout     time.Duration // given to Add with WithShutdownTimeout
	boKind      uint8         // which Backoff, see backoff
	boWhere     uint8         // bit 0: WithBackoff in New; bit 1: in Add
	constD      time.Duration // ConstantBackoff's and fzFixed's delay
	exp         ExponentialBackoff
	resetWhere  uint8 // bit 0: WithBackoffReset in New; bit 1: in Add
	reset       time.Duration
	runFor      time.Duration // how long each copy runs before it exits
	hang        time.Duration // how long a copy ignores cancellation
	exits       uint64        // 3 bits per copy: its fzExit
	count       int           // how many copies exit by themselves
	n           int           // a failure count for Delay
	restartIf   uint8         // WithRestartIf: mode (bits 0-1) and answer per fzExit (bits 2-7)
}

// predicate returns the WithRestartIf predicate of the input, or nil: mode 1
// answers by the kind of exit (bit 2+kind of restartIf), mode 2 panics, so
// that the restart policy decides.
func (in *fzOptInput) predicate() func(error) bool {
	switch in.restartIf % 4 {
	case 1:
		return func(err error) bool {
			for k := fzExitError; k < fzExitKinds; k++ {
				if k.matches(err) {
					return in.restartIf>>(2+k)&1 != 0
				}
			}
			panic(fmt.Sprintf("fz: unexpected exit %v", err))
		}
	case 2:
		return func(error) bool { panic("fz: predicate") }
	}
	return nil
}

// backoff builds the fuzzed Backoff and reports whether WithBackoff must
// reject it.
func (in *fzOptInput) backoff() (b Backoff, bad bool) {
	switch in.boKind % 8 {
	case 1:
		return ConstantBackoff(0), false
	case 2:
		return ConstantBackoff(in.constD), in.constD < 0
	case 3:
		return in.exp, !fzExpValid(in.exp)
	case 4:
		e := in.exp
		return &e, !fzExpValid(in.exp)
	case 5:
		return nil, true
	case 6:
		return (*ExponentialBackoff)(nil), true
	case 7:
		return fzFixed(in.constD), false
	}
	return ConstantBackoff(0), false // kind 0 gives no WithBackoff at all
}

// fzExpValid is ExponentialBackoff's documented rule: Initial positive, Max
// at least Initial, Multiplier at least 1 and finite, Jitter in [0, 1].
func fzExpValid(b ExponentialBackoff) bool {
	return b.Initial > 0 && b.Max >= b.Initial &&
		b.Multiplier >= 1 && !math.IsInf(b.Multiplier, 0) && !math.IsNaN(b.Multiplier) &&
		b.Jitter >= 0 && b.Jitter <= 1
}

// fzExpRef is the exact delay(n) = min(Max, Initial × Multiplier^(n−1)) of
// the documentation (shifted by one with ImmediateFirst), computed with
// 256-bit floats, without jitter. It is only called for 0 ≤ n ≤ 2000.
func fzExpRef(b ExponentialBackoff, n int) time.Duration {
	k := n - 1
	if b.ImmediateFirst {
		if k <= 0 {
			return 0
		}
		k--
	}
	k = max(k, 0)
	f := new(big.Float).SetPrec(256).SetInt64(int64(b.Initial))
	m := new(big.Float).SetPrec(256).SetFloat64(b.Multiplier)
	capF := new(big.Float).SetPrec(256).SetInt64(int64(b.Max))
	for i := 0; i < k && f.Cmp(capF) < 0 && b.Multiplier != 1; i++ {
		f.Mul(f, m)
	}
	if f.Cmp(capF) >= 0 {
		return b.Max
	}
	d, _ := f.Int64()
	return time.Duration(d)
}

// fzCheckDelay checks ExponentialBackoff.Delay for b on many failure counts:
// never a panic; for a valid b never negative, never above Max, the exact
// documented value without jitter (within float rounding), within
// [d×(1−Jitter), d] with it, and not decreasing in n.
func fzCheckDelay(t *testing.T, b ExponentialBackoff, n int) {
	ns := []int{-1, 0, 1, 2, 3, 4, 10, 62, 63, 64, 65, 100, 1000, 2000, 1 << 20, math.MaxInt32, math.MaxInt, math.MinInt, n}
	valid := fzExpValid(b)
	exact := b
	exact.Jitter = 0
	prev := time.Duration(-1)
	for i, k := range ns {
		d := b.Delay(k) // must not panic, valid or not
		if !valid {
			continue
		}
		e := exact.Delay(k)
		if d < 0 || d > b.Max || e < 0 || e > b.Max {
			t.Fatalf("%+v: Delay(%d) = %v (exact %v), want within [0, Max]", b, k, d, e)
		}
		if b.Jitter == 0 && d != e {
			t.Fatalf("%+v: Delay(%d) = %v differs from itself %v without jitter", b, k, d, e)
		}
		if lo := e - time.Duration(math.Ceil(float64(e)*b.Jitter)) - 1; d < lo || d > e {
			t.Fatalf("%+v: Delay(%d) = %v, want within [%v, %v]", b, k, d, lo, e)
		}
		if k >= 0 && k <= 2000 {
			ref := fzExpRef(b, k)
			if diff := math.Abs(float64(e) - float64(ref)); diff > float64(ref)*1e-9+2 {
				t.Fatalf("%+v: Delay(%d) = %v, want %v (min(Max, Initial×Multiplier^(n−1)))", b, k, e, ref)
			}
		}
		if i < len(ns)-2 { // ns is sorted but for the last two (MinInt-1 wraps around)
			if e < prev {
				t.Fatalf("%+v: Delay(%d) = %v is below Delay of a smaller count, %v", b, k, e, prev)
			}
			prev = e
		}
	}
}

// fzOptWorker is the fuzzed child: its first count copies run for runFor and
// then end by themselves as exits says; later copies run until cancelled.
// Every copy ignores cancellation for hang. It records when copies start and
// end, in fake time since t0.
type fzOptWorker struct {
	in *fzOptInput
	t0 time.Time

	mu      sync.Mutex
	starts  []time.Duration
	ends    []time.Duration // when the copies that ended by themselves did
	running int
	most    int
}

// kind returns the fzExit of copy k.
func (w *fzOptWorker) kind(k int) fzExit {
	return fzExit(w.in.exits>>(3*uint(k))&7) % fzExitKinds
}

func (w *fzOptWorker) Serve(ctx context.Context) error {
	w.mu.Lock()
	k := len(w.starts)
	w.starts = append(w.starts, time.Since(w.t0))
	w.running++
	w.most = max(w.most, w.running)
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.running--
		w.mu.Unlock()
	}()
	if k < w.in.count {
		timer := time.NewTimer(w.in.runFor)
		defer timer.Stop()
		select {
		case <-timer.C:
			w.mu.Lock()
			w.ends = append(w.ends, time.Since(w.t0))
			w.mu.Unlock()
			return w.kind(k).do()
		case <-ctx.Done():
		}
	} else {
		<-ctx.Done()
	}
	time.Sleep(w.in.hang)
	return ctx.Err()
}

// fzBlocker is a sibling that runs until cancelled and counts its copies.
type fzBlocker struct {
	mu     sync.Mutex
	starts int
}

func (b *fzBlocker) Serve(ctx context.Context) error {
	b.mu.Lock()
	b.starts++
	b.mu.Unlock()
	<-ctx.Done()
	return ctx.Err()
}

// fzOptHorizon is how long a FuzzOptions run lasts in fake time at most: far
// below the ~262 years after which the bubble's clock would overflow.
const fzOptHorizon = 100 * 365 * 24 * time.Hour

// fzOptOutcome is what the model predicts for a FuzzOptions run.
type fzOptOutcome struct {
	starts    []time.Duration // when copies of a start
	restarts  int             // a's Restarts
	failures  int             // a's Failures
	removed   bool            // a (temporary) is gone
	lastErr   fzExit          // kind of a's last failing exit, if any
	anyFailed bool
	ret       time.Duration // when Serve returns by itself, or at the horizon
	byItself  bool          // Serve returns without its context cancelled
	retErr    fzExit        // intensity: the exit that asked for the refused restart
	intensity bool          // Serve returns ErrIntensityExceeded
	tree      bool          // Serve returns ErrTerminateTree
	running   bool          // a runs when the horizon comes
	ambiguous bool          // two events fall on the same instant: no exact check
}

// fzOptModel computes what the documentation says a run of in does: copies
// of a start at 0 and exit after runFor; a restart waits its backoff, counts
// against the intensity when performed (sliding window, boundary included),
// and the failure count starts again after a run of the reset time. delay
// returns the backoff before the restart after copy k's exit with failures
// consecutive failures.
func fzOptModel(in *fzOptInput, backoff Backoff, reset time.Duration, delay func(k, failures int) time.Duration) fzOptOutcome {
	var o fzOptOutcome
	var window []time.Duration
	t := time.Duration(0)
	o.starts = []time.Duration{0}
	for k := 0; ; k++ {
		if k >= in.count {
			o.running, o.ret = true, fzOptHorizon
			return o
		}
		exit := t + in.runFor
		if exit >= fzOptHorizon {
			o.ambiguous = exit == fzOptHorizon
			o.running, o.ret = true, fzOptHorizon
			return o
		}
		kind := fzExit(in.exits>>(3*uint(k))&7) % fzExitKinds
		if kind.failed() {
			o.lastErr, o.anyFailed = kind, true
		}
		settle := func() {
			if in.policy == Temporary {
				o.removed = true
			}
		}
		restart := in.policy == Permanent || (in.policy == Transient && kind.failed())
		if in.restartIf%4 == 1 {
			restart = in.restartIf>>(2+kind)&1 != 0
		}
		switch {
		case kind == fzExitTerminateTree:
			settle()
			o.ret, o.byItself, o.tree = exit, true, true
			return o
		case in.policy == Temporary || kind == fzExitDoNotRestart || !restart:
			settle()
			o.ret = fzOptHorizon
			if in.significant {
				o.ret, o.byItself = exit, true
			}
			return o
		}
		if reset > 0 && in.runFor >= reset {
			o.failures = 0
		}
		o.failures++
		d := time.Duration(0)
		if backoff != nil {
			d = max(delay(k, o.failures), 0)
		}
		r := exit + d
		if d > fzOptHorizon-exit || r >= fzOptHorizon {
			o.ambiguous = r == fzOptHorizon
			o.ret = fzOptHorizon
			return o
		}
		n := 0
		for _, w := range window {
			if w >= r-in.period {
				n++
			}
		}
		if n >= in.maxRestarts {
			o.ret, o.byItself, o.intensity, o.retErr = r, true, true, kind
			return o
		}
		window = append(window, r)
		o.restarts++
		o.starts = append(o.starts, r)
		t = r
	}
}

// FuzzOptions feeds every option value a user can give (intensity, strategy,
// auto shutdown, restart policy, significance, shutdown timeout, backoff
// policies with any field values, backoff reset, in New and in Add, and a
// restart predicate that answers by the exit or panics, or is nil) to a
// supervisor with a child a that exits by itself in fuzzed ways and a
// sibling b. A bad value must give an error matching ErrInvalid (Serve at
// once for New's options, Add for Add's); valid values must give exactly the
// documented behaviour, checked against a model in fake time: when each copy
// starts, when and how Serve returns, Restarts, Failures and LastError. It
// also checks ExponentialBackoff.Delay directly. A panic, a hang (deadlock
// in the bubble) or a goroutine left behind fails it.
func FuzzOptions(f *testing.F) {
	s, ms := int64(time.Second), int64(time.Millisecond)
	type seed struct {
		maxRestarts            int
		period                 int64
		strategy, auto, policy int
		significant            bool
		timeout                int64
		boKind, boWhere        uint8
		constD, initial, maxD  int64
		mult, jitter           float64
		immediate              bool
		resetWhere             uint8
		reset, runFor, hang    int64
		exits                  uint64
		count                  uint8
		n                      int
		restartIf              uint8
	}
	seeds := []seed{
		{3, 5 * s, 0, 0, 0, false, 5 * s, 0, 0, 0, 0, 0, 0, 0, false, 0, 0, 0, 0, 0, 5, 3, 0},                                                          // OTP default: 4th failure escalates
		{3, 5 * s, 1, 0, 0, false, s, 3, 1, 0, s, 30 * s, 2, 0, false, 0, 0, 100 * ms, 2 * s, 0, 12, 5, 0},                                             // exponential in New, stuck at the end
		{3, 10 * s, 2, 0, 1, false, 0, 3, 2, 0, s, time.Minute.Nanoseconds(), 2, 0.2, true, 1, 10 * s, 0, 0, 0o2020, 12, 7, 0},                         // jitter, Kubernetes recipe
		{0, s, 0, 1, 2, true, s, 2, 3, s, 0, 0, 0, 0, false, 2, 0, s, 0, 0, 1, 1, 0},                                                                   // temporary significant
		{1, s, 0, 2, 1, true, s, 0, 0, 0, 0, 0, 0, 0, false, 0, 0, s, 0, 0o1, 3, 1, 0},                                                                 // transient significant normal exit
		{5, s, 0, 0, 0, false, s, 7, 1, -s, 0, 0, 0, 0, false, 0, 0, 0, 0, 0o0543210, 7, 2, 0},                                                         // custom negative delay, every exit kind
		{-1, s, 0, 0, 0, false, s, 0, 0, 0, 0, 0, 0, 0, false, 0, 0, 0, 0, 0, 1, 1, 0},                                                                 // negative maxRestarts
		{1, 0, 0, 0, 0, false, s, 0, 0, 0, 0, 0, 0, 0, false, 0, 0, 0, 0, 0, 1, 1, 0},                                                                  // zero period
		{1, s, 3, 0, 0, false, s, 0, 0, 0, 0, 0, 0, 0, false, 0, 0, 0, 0, 0, 1, 1, 0},                                                                  // unknown strategy
		{1, s, 0, -1, 0, false, s, 0, 0, 0, 0, 0, 0, 0, false, 0, 0, 0, 0, 0, 1, 1, 0},                                                                 // unknown auto shutdown
		{1, s, 0, 0, 9, false, s, 0, 0, 0, 0, 0, 0, 0, false, 0, 0, 0, 0, 0, 1, 1, 0},                                                                  // unknown policy
		{1, s, 0, 0, 0, false, -1, 0, 0, 0, 0, 0, 0, 0, false, 0, 0, 0, 0, 0, 1, 1, 0},                                                                 // negative timeout
		{1, s, 0, 0, 0, true, s, 0, 0, 0, 0, 0, 0, 0, false, 0, 0, 0, 0, 0, 1, 1, 0},                                                                   // significant permanent
		{1, s, 0, 0, 0, false, s, 3, 3, 0, s, s, math.NaN(), 0, false, 0, 0, 0, 0, 0, 1, 1, 0},                                                         // NaN multiplier
		{1, s, 0, 0, 0, false, s, 3, 1, 0, s, s, math.Inf(1), 0, false, 0, 0, 0, 0, 0, 1, 1, 0},                                                        // infinite multiplier
		{1, s, 0, 0, 0, false, s, 4, 2, 0, s, s, 2, math.NaN(), false, 0, 0, 0, 0, 0, 1, 1, 0},                                                         // NaN jitter
		{1, s, 0, 0, 0, false, s, 3, 2, 0, s, s, 2, -0.5, false, 0, 0, 0, 0, 0, 1, 1, 0},                                                               // negative jitter
		{1, s, 0, 0, 0, false, s, 3, 1, 0, 2 * s, s, 2, 0, false, 0, 0, 0, 0, 0, 1, 1, 0},                                                              // Max below Initial
		{1, s, 0, 0, 0, false, s, 5, 1, 0, 0, 0, 0, 0, false, 0, 0, 0, 0, 0, 1, 1, 0},                                                                  // nil Backoff
		{1, s, 0, 0, 0, false, s, 6, 2, 0, 0, 0, 0, 0, false, 0, 0, 0, 0, 0, 1, 1, 0},                                                                  // typed nil *ExponentialBackoff
		{1, s, 0, 0, 0, false, s, 2, 1, -1, 0, 0, 0, 0, false, 0, 0, 0, 0, 0, 1, 1, 0},                                                                 // negative constant
		{1, s, 0, 0, 0, false, s, 0, 0, 0, 0, 0, 0, 0, false, 3, -1, 0, 0, 0, 1, 1, 0},                                                                 // negative reset
		{100, math.MaxInt64, 0, 0, 0, false, math.MaxInt64, 3, 3, 0, 1, math.MaxInt64, 1e300, 1, false, 3, math.MaxInt64, 0, 0, 0, 12, math.MaxInt, 0}, // extremes
		{2, s, 1, 0, 0, false, s, 4, 1, 0, 1, math.MaxInt64, 1 + 1e-15, 0.999999, true, 0, 0, 0, 0, 0, 12, 2000, 0},                                    // tiny multiplier, huge Max
		{2, 3 * s, 0, 0, 0, false, s, 2, 1, s, 0, 0, 0, 0, false, 1, 2 * s, 2 * s, 0, 0, 12, 1, 0},                                                     // backoff reset after each run
		{2, s, 1, 0, 0, false, s, 0, 0, 0, 0, 0, 0, 0, false, 0, 0, s, 0, 0o05, 2, 1, 0},                                                               // ErrTerminateTree
		{3, 5 * s, 0, 0, 1, false, s, 0, 0, 0, 0, 0, 0, 0, false, 0, 0, s, 0, 0o10101, 5, 1, 1 | 1<<(2+fzExitNil)},                                     // predicate: restart a transient child on normal exits only
		{3, 5 * s, 0, 0, 1, false, s, 0, 0, 0, 0, 0, 0, 0, false, 0, 0, s, 0, 0o2, 5, 1, 2},                                                            // predicate panics: the policy decides
		{3, 5 * s, 0, 0, 0, false, s, 0, 0, 0, 0, 0, 0, 0, false, 0, 0, s, 0, 0, 5, 1, 3},                                                              // nil predicate
	}
	for _, x := range seeds {
		f.Add(x.maxRestarts, x.period, x.strategy, x.auto, x.policy, x.significant, x.timeout,
			x.boKind, x.boWhere, x.constD, x.initial, x.maxD, x.mult, x.jitter, x.immediate,
			x.resetWhere, x.reset, x.runFor, x.hang, x.exits, x.count, x.n, x.restartIf)
	}
	f.Fuzz(func(t *testing.T, maxRestarts int, period int64, strategy, auto, policy int, significant bool,
		timeout int64, boKind, boWhere uint8, constD, initial, maxD int64, mult, jitter float64, immediate bool,
		resetWhere uint8, reset, runFor, hang int64, exits uint64, count uint8, n int, restartIf uint8) {
		in := &fzOptInput{
			maxRestarts: maxRestarts, period: time.Duration(period),
			strategy: Strategy(strategy), auto: AutoShutdown(auto), policy: RestartPolicy(policy),
			significant: significant, timeout: time.Duration(timeout),
			boKind: boKind, boWhere: boWhere % 4, constD: time.Duration(constD),
			exp: ExponentialBackoff{
				Initial: time.Duration(initial), Max: time.Duration(maxD),
				Multiplier: mult, Jitter: jitter, ImmediateFirst: immediate,
			},
			resetWhere: resetWhere % 4, reset: time.Duration(reset),
			runFor: time.Duration(fzClamp(runFor, 0, int64(24*time.Hour))),
			hang:   time.Duration(fzClamp(hang, 0, int64(10*time.Minute))),
			exits:  exits, count: int(count % 13), n: n, restartIf: restartIf,
		}
		fzCheckDelay(t, in.exp, n)
		if got := ConstantBackoff(in.constD).Delay(n); got != in.constD {
			t.Fatalf("ConstantBackoff(%v).Delay(%d) = %v", in.constD, n, got)
		}
		if got := ConstantBackoff(0).Delay(n); got != 0 {
			t.Fatalf("ConstantBackoff(0).Delay(%d) = %v", n, got)
		}
		defer fzWatchdog(fmt.Sprintf("%+v", *in))()
		synctest.Test(t, func(t *testing.T) { fzRunOptions(t, in) })
	})
}

// fzRunOptions runs one FuzzOptions input in a bubble and checks it against
// fzOptModel.
func fzRunOptions(t *testing.T, in *fzOptInput) {
	backoff, boBad := in.backoff()
	if in.boKind%8 == 0 {
		in.boWhere = 0
	}
	var supOpts []Option
	var childOpts []ChildOption
	supBad := in.maxRestarts < 0 || in.period <= 0 || in.strategy < OneForOne || in.strategy > RestForOne ||
		in.auto < noAutoShutdown || in.auto > AllSignificant
	supOpts = append(supOpts, WithLogger(fzLogger()), WithIntensity(in.maxRestarts, in.period),
		WithStrategy(in.strategy), WithAutoShutdown(in.auto))
	childBad := in.policy < Permanent || in.policy > Temporary || in.timeout < 0
	childOpts = append(childOpts, WithRestart(in.policy), WithShutdownTimeout(in.timeout))
	if p := in.predicate(); p != nil {
		childOpts = append(childOpts, WithRestartIf(p))
	} else if in.restartIf%4 == 3 {
		childOpts = append(childOpts, WithRestartIf(nil))
		childBad = true
	}
	var effBackoff Backoff
	if in.boWhere&1 != 0 {
		supOpts = append(supOpts, WithBackoff(backoff))
		supBad = supBad || boBad
		effBackoff = backoff
	}
	if in.boWhere&2 != 0 {
		childOpts = append(childOpts, WithBackoff(backoff))
		childBad = childBad || boBad
		effBackoff = backoff
	}
	effReset := DefaultBackoffReset
	if in.resetWhere&1 != 0 {
		supOpts = append(supOpts, WithBackoffReset(in.reset))
		supBad = supBad || in.reset < 0
		effReset = in.reset
	}
	if in.resetWhere&2 != 0 {
		childOpts = append(childOpts, WithBackoffReset(in.reset))
		childBad = childBad || in.reset < 0
		effReset = in.reset
	}
	if in.significant {
		childOpts = append(childOpts, WithSignificant())
		auto := in.auto
		if auto < noAutoShutdown || auto > AllSignificant {
			auto = noAutoShutdown // a bad WithAutoShutdown leaves the default
		}
		childBad = childBad || auto == noAutoShutdown || in.policy == Permanent
	}

	s := New("root", supOpts...)
	w := &fzOptWorker{in: in}
	b := &fzBlocker{}
	err := s.Add("a", w, childOpts...)
	if childBad {
		require.ErrorIs(t, err, ErrInvalid, "Add with bad child options")
		require.Empty(t, s.Children(), "a rejected child is not added")
	} else {
		require.NoError(t, err)
	}
	require.NoError(t, s.Add("b", b))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	w.t0 = time.Now()
	go func() { done <- s.Serve(ctx) }()
	if supBad {
		err := <-done
		require.ErrorIs(t, err, ErrInvalid, "Serve with bad options")
		require.Zero(t, time.Since(w.t0), "Serve rejects bad options at once")
		synctest.Wait()
		require.Empty(t, w.starts, "no child started")
		require.Zero(t, b.starts, "no child started")
		return
	}
	if childBad {
		synctest.Wait()
		require.Equal(t, 1, b.starts)
		cancel()
		require.NoError(t, <-done)
		return
	}

	var ret time.Duration
	byItself := true
	select {
	case err = <-done:
	case <-time.After(fzOptHorizon):
		byItself = false
		cancel()
		err = <-done
	}
	ret = time.Since(w.t0)
	time.Sleep(in.hang + 1) // a stuck copy returns
	synctest.Wait()

	w.mu.Lock()
	starts, ends := slices.Clone(w.starts), slices.Clone(w.ends)
	w.mu.Unlock()
	exact := true
	delay := func(k, failures int) time.Duration { return effBackoff.Delay(failures) }
	if e, ok := effBackoff.(ExponentialBackoff); ok && e.Jitter > 0 {
		exact = false
	}
	if e, ok := effBackoff.(*ExponentialBackoff); ok && e.Jitter > 0 {
		exact = false
	}
	if !exact { // jitter: take the delays from what happened, check their range
		delay = func(k, failures int) time.Duration {
			var obs time.Duration
			switch {
			case k+1 < len(starts) && k < len(ends):
				obs = starts[k+1] - ends[k]
			case byItself && k < len(ends):
				obs = ret - ends[k]
			default:
				return fzOptHorizon + 1 // it had not happened at the horizon
			}
			e := in.exp
			e.Jitter = 0
			d := max(e.Delay(failures), 0)
			if lo := d - time.Duration(math.Ceil(float64(d)*in.exp.Jitter)) - 1; obs < lo || obs > d {
				t.Fatalf("restart after copy %d waited %v, want within [%v, %v]", k, obs, lo, d)
			}
			return obs
		}
	}
	o := fzOptModel(in, effBackoff, effReset, delay)
	if in.policy == Temporary {
		o.removed = true // a temporary child also goes when it is stopped
	}
	stuckEnd := o.running && in.timeout > 0 && in.hang > in.timeout
	if o.running && in.timeout > 0 && in.hang == in.timeout {
		o.ambiguous = true // the stop timer and the copy's return coincide
	}
	if o.ambiguous {
		return
	}
	what := fmt.Sprintf("input %+v: model %+v; starts %v ends %v, Serve returned %v at %v", *in, o, starts, ends, err, ret)

	require.Equal(t, o.byItself, byItself, "Serve returns by itself: %s", what)
	require.Equal(t, o.starts, starts, "copies of a start as the model says: %s", what)
	wantRet := o.ret
	if !byItself && o.running {
		stop := in.hang
		if in.timeout > 0 {
			stop = min(stop, in.timeout)
		}
		wantRet += stop
	}
	require.Equal(t, wantRet, ret, "Serve returns when the model says: %s", what)
	switch {
	case o.intensity:
		require.ErrorIs(t, err, ErrIntensityExceeded, what)
		if o.retErr != fzExitNil {
			require.True(t, o.retErr.matches(err), "the intensity error reaches the failure: %s", what)
		}
	case o.tree:
		require.ErrorIs(t, err, ErrTerminateTree, what)
		require.NotErrorIs(t, err, ErrIntensityExceeded, what)
	case stuckEnd:
		require.ErrorIs(t, err, ErrStuck, what)
		require.NotErrorIs(t, err, ErrIntensityExceeded, what)
	default:
		require.NoError(t, err, what)
	}

	infos := s.Children()
	var names []string
	for _, c := range infos {
		names = append(names, c.Name)
		require.Equal(t, Stopped, c.State, "every child is stopped after Serve and its copies returned: %s", what)
	}
	if o.removed {
		require.Equal(t, []string{"b"}, names, "a temporary child is removed when it exits: %s", what)
	} else {
		require.Equal(t, []string{"a", "b"}, names, what)
		a := infos[0]
		require.Equal(t, o.restarts, a.Restarts, "Restarts: %s", what)
		require.Equal(t, o.failures, a.Failures, "Failures: %s", what)
		if o.anyFailed {
			require.True(t, o.lastErr.matches(a.LastError), "LastError %v: %s", a.LastError, what)
		} else {
			require.NoError(t, a.LastError, what)
		}
		require.True(t, a.NextStart.IsZero(), what)
	}
	bInfo := infos[len(infos)-1]
	wantB := 0
	if in.strategy != OneForOne {
		wantB = o.restarts // a group restart restarts b with a
	}
	require.Equal(t, wantB, bInfo.Restarts, "b's Restarts: %s", what)
	require.Equal(t, 1+wantB, b.starts, "b's copies: %s", what)
	require.LessOrEqual(t, w.most, 1, "never two copies of a")
}

// ---------------------------------------------------------------------------
// FuzzNames.

// fzNames returns the names in infos, in order; never nil.
func fzNames(infos []ChildInfo) []string {
	out := []string{}
	for _, c := range infos {
		out = append(out, c.Name)
	}
	return out
}

// fzFailOnce is a worker whose first copy fails at once (so that its name
// goes through the failure log) and whose later copies run until cancelled.
type fzFailOnce struct {
	mu     sync.Mutex
	starts int
}

func (w *fzFailOnce) Serve(ctx context.Context) error {
	w.mu.Lock()
	w.starts++
	first := w.starts == 1
	w.mu.Unlock()
	if first {
		return errFzBoom
	}
	<-ctx.Done()
	return ctx.Err()
}

// fzStubborn is a worker that ignores cancellation for hang, then returns.
type fzStubborn struct{ hang time.Duration }

func (w fzStubborn) Serve(ctx context.Context) error {
	<-ctx.Done()
	time.Sleep(w.hang)
	return nil
}

// FuzzNames feeds names to New and Add: empty, with '/', any bytes, any
// length. A valid name (non-empty, no '/') is accepted, shown by Children
// exactly, usable with Terminate, Restart and Remove, and carried unchanged
// by a *StuckError; a bad one gives an error matching ErrInvalid (from Add,
// or from Serve at once for New's name); a duplicate gives ErrAlreadyExists.
func FuzzNames(f *testing.F) {
	seeds := [][3]string{
		{"root", "a", "b"},
		{"", "a", "a"},
		{"root", "", "x/y"},
		{"a/b", "/", "//"},
		{"根", "ребёнок", "🙂"},
		{"\x00", "\xff\xfe", "a\nb"},
		{"root", "same", "same"},
		{" ", "\t", "a b"},
		{"..", ".", "%s%v%!"},
		{"root", "a/", "/a"},
		{strings.Repeat("r", 1<<16), strings.Repeat("c", 1<<16), strings.Repeat("é", 4096)},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, supName, name1, name2 string) {
		defer fzWatchdog(fmt.Sprintf("%q %q %q", supName, name1, name2))()
		synctest.Test(t, func(t *testing.T) { fzRunNames(t, supName, name1, name2) })
	})
}

// fzRunNames runs one FuzzNames input in a bubble.
func fzRunNames(t *testing.T, supName, name1, name2 string) {
	s := New(supName, WithLogger(fzLogger()), WithIntensity(10, time.Second))
	want := []string{}
	add := func(name string, w Worker, opts ...ChildOption) {
		t.Helper()
		err := s.Add(name, w, opts...)
		switch {
		case !fzValidName(name):
			require.ErrorIs(t, err, ErrInvalid, "Add(%q)", name)
		case slices.Contains(want, name):
			require.ErrorIs(t, err, ErrAlreadyExists, "Add(%q) again", name)
		default:
			require.NoError(t, err, "Add(%q)", name)
			want = append(want, name)
		}
		require.Equal(t, want, fzNames(s.Children()), "Children after Add(%q)", name)
	}
	notFound := func(name string) {
		t.Helper()
		require.ErrorIs(t, s.Terminate(context.Background(), name), ErrNotFound, "Terminate(%q)", name)
		require.ErrorIs(t, s.Restart(name), ErrNotFound, "Restart(%q)", name)
		require.ErrorIs(t, s.Remove(context.Background(), name), ErrNotFound, "Remove(%q)", name)
	}
	w1 := &fzFailOnce{}
	add(name1, w1)
	add(name2, &fzBlocker{})
	for _, name := range []string{supName, name1 + "\x00", name2 + "/", "", "/"} {
		if !slices.Contains(want, name) {
			notFound(name)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Serve(ctx) }()
	if !fzValidName(supName) {
		require.ErrorIs(t, <-done, ErrInvalid, "Serve of New(%q)", supName)
		require.Zero(t, time.Since(start))
		synctest.Wait()
		require.Zero(t, w1.starts, "nothing started")
		return
	}
	synctest.Wait()
	for _, c := range s.Children() {
		require.Equal(t, Running, c.State, "%q runs", c.Name)
		if c.Name == name1 {
			require.Equal(t, 1, c.Restarts, "%q failed once and was restarted", c.Name)
			require.ErrorIs(t, c.LastError, errFzBoom)
		}
	}
	add(name1, &fzBlocker{}) // while serving: invalid or a duplicate
	for _, name := range slices.Clone(want) {
		require.NoError(t, s.Terminate(context.Background(), name), "Terminate(%q)", name)
		require.Equal(t, []string{name + ":stopped"}, fzStates(s, name))
		require.NoError(t, s.Restart(name), "Restart(%q)", name)
		synctest.Wait()
		require.Equal(t, []string{name + ":running"}, fzStates(s, name))
		require.NoError(t, s.Remove(context.Background(), name), "Remove(%q)", name)
		want = slices.DeleteFunc(want, func(n string) bool { return n == name })
		require.Equal(t, want, fzNames(s.Children()), "Children after Remove(%q)", name)
		notFound(name)
		add(name, fzStubborn{hang: 2 * time.Second}, WithShutdownTimeout(time.Second))
	}
	synctest.Wait()
	err := func() error { cancel(); return <-done }()
	stuck := map[string]bool{}
	for _, e := range fzFlatten(err) {
		var se *StuckError
		require.ErrorAs(t, e, &se, "only stuck children in %v", err)
		require.Equal(t, supName, se.Supervisor, "the *StuckError carries the supervisor's name")
		require.NotEmpty(t, se.Stack(), "the stuck goroutine's stack was found")
		stuck[se.Child] = true
	}
	wantStuck := map[string]bool{}
	for _, name := range want {
		wantStuck[name] = true
	}
	require.Equal(t, wantStuck, stuck, "every re-added child is named stuck, by its exact name")
	time.Sleep(2 * time.Second)
	synctest.Wait()
}

// fzStates returns "name:state" for the children of s called name.
func fzStates(s *Supervisor, name string) []string {
	var out []string
	for _, c := range s.Children() {
		if c.Name == name {
			out = append(out, c.Name+":"+c.State.String())
		}
	}
	return out
}

// fzFlatten returns the errors that err joins with errors.Join, or err
// alone, or nothing for nil. (An error of fmt.Errorf with two %w also has
// Unwrap() []error; it is one error, not a list.)
func fzFlatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok && fmt.Sprintf("%T", err) == "*errors.joinError" {
		return j.Unwrap()
	}
	return []error{err}
}

// ---------------------------------------------------------------------------
// FuzzAPISequence.

// fzCmd is a command that the test sends to the running copy of an
// fzAPIWorker.
type fzCmd uint8

const (
	fzCmdSelfTerminate fzCmd = 100 + iota // call Terminate on itself
	fzCmdSelfRemove                       // call Remove on itself
)

// fzAPIWorker is a FuzzAPISequence worker. Each copy waits for a command
// (end as an fzExit, or call its supervisor on itself) or for cancellation,
// which it ignores for hang. It counts its copies and records any broken
// rule of the engine it can see from inside.
type fzAPIWorker struct {
	name string
	sup  *Supervisor // its supervisor, for the calls on itself

	mu       sync.Mutex
	cur      chan fzCmd // the command channel of the copy that waits, or nil
	hang     time.Duration
	running  int
	starts   int
	exits    int
	most     int
	problems []string
}

func (w *fzAPIWorker) Serve(ctx context.Context) error {
	cmds := make(chan fzCmd, 1)
	w.mu.Lock()
	w.running++
	w.starts++
	w.most = max(w.most, w.running)
	w.cur = cmds
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.running--
		w.exits++
		if w.cur == cmds {
			w.cur = nil
		}
		w.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			w.mu.Lock()
			if w.cur == cmds {
				w.cur = nil
			}
			hang := w.hang
			w.mu.Unlock()
			time.Sleep(hang)
			return ctx.Err()
		case c := <-cmds:
			if c != fzCmdSelfTerminate && c != fzCmdSelfRemove {
				return fzExit(c).do()
			}
			start := time.Now()
			var err error
			if c == fzCmdSelfTerminate {
				err = w.sup.Terminate(ctx, w.name)
			} else {
				err = w.sup.Remove(ctx, w.name)
			}
			if err != nil || time.Since(start) != 0 {
				w.problem(fmt.Sprintf("a call on itself (%d) returned %v after %v, want nil at once", c, err, time.Since(start)))
			}
		}
	}
}

// problem records a broken rule seen from inside a copy.
func (w *fzAPIWorker) problem(p string) {
	w.mu.Lock()
	w.problems = append(w.problems, w.name+": "+p)
	w.mu.Unlock()
}

// send hands c to the copy that waits for commands and reports whether one
// did.
func (w *fzAPIWorker) send(c fzCmd) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cur == nil {
		return false
	}
	select {
	case w.cur <- c:
		return true
	default:
		return false
	}
}

// snapshot returns the worker's counters.
func (w *fzAPIWorker) snapshot() (running, starts, exits, most int, problems []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.running, w.starts, w.exits, w.most, slices.Clone(w.problems)
}

// fzAPI is the state of one FuzzAPISequence run: a root supervisor with
// workers a, b, c and a nested supervisor n (which holds worker x), all
// added, removed and steered by the decoded operations.
type fzAPI struct {
	t       *testing.T
	root    *Supervisor
	nested  *Supervisor
	workers map[string]*fzAPIWorker // a, b, c in root; x in nested
	cancel  context.CancelFunc
	done    chan error
	serving bool         // root's Serve has not returned yet
	auto    AutoShutdown // root's automatic shutdown
	log     []string
}

// fzAPINames are the names of root's children; "n" is the nested supervisor.
var fzAPINames = []string{"a", "b", "c", "n"}

// fail stops the run with the operations so far. It first stops root and
// waits for every copy, so that the bubble can end: otherwise synctest would
// add a report of the goroutines left behind to the failure.
func (r *fzAPI) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Errorf("%s\noperations:\n  %s", fmt.Sprintf(format, args...), strings.Join(r.log, "\n  "))
	if r.serving {
		r.cancel()
		<-r.done
	}
	time.Sleep(time.Minute)
	r.t.FailNow()
}

// serve starts root's Serve.
func (r *fzAPI) serve() {
	ctx, cancel := context.WithCancel(r.t.Context())
	r.cancel, r.done, r.serving = cancel, make(chan error, 1), true
	go func(done chan error) { done <- r.root.Serve(ctx) }(r.done)
}

// stop cancels root's Serve and checks what it returns.
func (r *fzAPI) stop() {
	r.t.Helper()
	r.cancel()
	r.returned(<-r.done, false)
}

// returned checks what root's Serve returned: by itself, an escalation or
// ErrTerminateTree; after its context was cancelled, nil or stuck children
// (or an escalation already under way), each possibly with stuck children.
func (r *fzAPI) returned(err error, byItself bool) {
	r.t.Helper()
	r.serving = false
	r.cancel()
	if byItself && !errors.Is(err, ErrIntensityExceeded) && !errors.Is(err, ErrTerminateTree) &&
		(r.auto == noAutoShutdown || (err != nil && !errors.Is(err, ErrStuck))) {
		r.fail("Serve returned by itself with %v, want an escalation, ErrTerminateTree or an automatic shutdown", err)
	}
	for _, e := range fzFlatten(err) {
		if !errors.Is(e, ErrIntensityExceeded) && !errors.Is(e, ErrTerminateTree) && !errors.Is(e, ErrStuck) {
			r.fail("Serve returned %v: unexpected part %v", err, e)
		}
	}
	r.log = append(r.log, fmt.Sprintf("   Serve returned %v", err))
}

// fzInfo returns the named child of s and whether it is there.
func fzInfo(s *Supervisor, name string) (ChildInfo, bool) {
	for _, c := range s.Children() {
		if c.Name == name {
			return c, true
		}
	}
	return ChildInfo{}, false
}

// fzStarted reports whether st is a state a child may be in right after Add
// or Restart started it: Running or (after a quick exit) Stopped; the nested
// supervisor n is Starting until it signals its readiness.
func fzStarted(name string, st State) bool {
	return st == Running || st == Stopped || (name == "n" && st == Starting)
}

// check verifies the invariants once the bubble is idle: root's Serve
// returned only for a reason it may return for; names are unique; the state
// of each worker child matches its copies (Running, Stopping and Stuck: one
// copy; Stopped and Restarting: none; not there: none); after Serve every
// child is Stopped or Stuck; never two copies of a worker at once; calls on
// itself returned nil at once; the nested supervisor was never served twice
// at once.
func (r *fzAPI) check() {
	r.t.Helper()
	synctest.Wait()
	if r.serving {
		select {
		case err := <-r.done:
			r.returned(err, true)
		default:
		}
	}
	for _, sup := range []*Supervisor{r.root, r.nested} {
		infos := sup.Children()
		seen := map[string]bool{}
		for _, c := range infos {
			if seen[c.Name] {
				r.fail("%s: two children named %q: %v", sup.name, c.Name, infos)
			}
			seen[c.Name] = true
			if errors.Is(c.LastError, ErrAlreadyServing) {
				r.fail("%s: child %q was served twice at once: %v", sup.name, c.Name, c.LastError)
			}
			if sup == r.root && !r.serving && c.State != Stopped && c.State != Stuck {
				r.fail("after Serve returned, %q is %v", c.Name, c.State)
			}
		}
		for name, w := range r.workers {
			if w.sup != sup {
				continue
			}
			running, _, _, most, problems := w.snapshot()
			if most > 1 {
				r.fail("%s: %d copies ran at once", name, most)
			}
			if len(problems) > 0 {
				r.fail("%s", strings.Join(problems, "; "))
			}
			want := 0
			if c, ok := fzInfo(sup, name); ok && (c.State == Running || c.State == Stopping || c.State == Stuck) {
				want = 1
			}
			if running != want {
				c, ok := fzInfo(sup, name)
				r.fail("%s: %d copies run while Children says %v (present %v)", name, running, c.State, ok)
			}
		}
	}
}

// call runs one call of the dynamic API on s for the child name and checks
// its result against the child's state just before (the bubble is idle, so
// nothing else changes it meanwhile) and after.
func (r *fzAPI) call(s *Supervisor, kind reqKind, name string, add func() error) {
	r.t.Helper()
	before, present := fzInfo(s, name)
	var err error
	switch kind {
	case reqAdd:
		err = add()
	case reqTerminate:
		err = s.Terminate(context.Background(), name)
	case reqRestart:
		err = s.Restart(name)
	case reqRemove:
		err = s.Remove(context.Background(), name)
	}
	synctest.Wait()
	after, there := fzInfo(s, name)
	r.log = append(r.log, fmt.Sprintf("   -> %v; before %v %v, after %v %v", err, present, before.State, there, after.State))
	if kind != reqAdd && !present {
		if !errors.Is(err, ErrNotFound) {
			r.fail("call %d on absent %q returned %v, want ErrNotFound", kind, name, err)
		}
		return
	}
	switch kind {
	case reqAdd:
		switch {
		case present && !errors.Is(err, ErrAlreadyExists):
			r.fail("Add(%q) of a present child returned %v", name, err)
		case !present && err != nil:
			r.fail("Add(%q) returned %v", name, err)
		case !present && (!there || !fzStarted(name, after.State)):
			r.fail("after Add(%q): present %v, state %v", name, there, after.State)
		}
	case reqTerminate, reqRemove:
		var se *StuckError
		switch {
		case err == nil && kind == reqTerminate && there && after.State != Stopped &&
			!(s == r.nested && before.State == Stopping):
			// (A Terminate that waited for n's shutdown to stop x leaves no mark:
			// n, served again by root, starts x again, as OTP's init would.)
			r.fail("Terminate(%q) returned nil but it is %v", name, after.State)
		case err == nil && kind == reqRemove && there:
			r.fail("Remove(%q) returned nil but it is still there, %v", name, after.State)
		case err != nil && !errors.As(err, &se):
			r.fail("call %d on %q returned %v, want nil or a *StuckError", kind, name, err)
		case err != nil && s == r.root && name == "n" && strings.HasPrefix(se.Supervisor, "root/n"):
			// The nested supervisor stopped and left a stuck child of its
			// own, which Terminate and Remove report.
		case err != nil && (!there || after.State != Stuck || se.Child != name):
			r.fail("call %d on %q returned %v but it is %v (present %v)", kind, name, err, after.State, there)
		}
	case reqRestart:
		switch {
		case before.State == Stopped && err != nil:
			r.fail("Restart(%q) of a stopped child returned %v", name, err)
		case before.State == Stopped && (!there || !fzStarted(name, after.State)):
			r.fail("after Restart(%q): present %v, state %v", name, there, after.State)
		case before.State != Stopped && !errors.Is(err, ErrNotStopped):
			r.fail("Restart(%q) of a %v child returned %v, want ErrNotStopped", name, before.State, err)
		}
	}
}

// FuzzAPISequence decodes the fuzz bytes into a sequence of operations on a
// small tree (root with workers a, b, c and a nested supervisor n holding
// worker x): Add with fuzzed policies and shutdown timeouts, Terminate,
// Restart, Remove, Serve started and stopped, workers that fail, exit,
// panic, call runtime.Goexit, return ErrDoNotRestart or ErrTerminateTree,
// call Terminate or Remove on themselves, ignore cancellation for a while,
// and time that passes. Bytes 0-2 choose root's strategy, intensity,
// backoff and automatic shutdown; then each pair of bytes is one operation. After every operation
// it checks the invariants of check and call; at the end, that every copy
// returned and the bubble ends with no goroutine left (synctest reports a
// deadlock, a hang, as a failure).
func FuzzAPISequence(f *testing.F) {
	seeds := [][]byte{
		{},
		{0, 3, 0, 0, 1, 5, 0, 5, 0, 4, 0, 4, 0},
		{1, 2, 1, 0, 1, 0, 3, 14, 4, 5, 1, 13, 20, 1, 0, 2, 0, 4, 0, 4, 0},
		{2, 0, 2, 0, 2, 0, 3, 7, 2, 13, 50, 8, 0, 12, 1},
		{0, 1, 0, 14, 4, 0, 0, 1, 0, 10, 0, 11, 0, 9, 0, 5, 3, 15, 1, 15, 0},
		{1, 7, 1, 14, 4, 0, 1, 0, 2, 5, 0, 13, 60, 3, 1, 4, 0, 2, 1, 4, 0, 3, 0},
		{0, 5, 0, 0, 3, 5, 3, 5, 3, 5, 3, 2, 3, 3, 3, 0, 35, 14, 16, 1, 0},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 600 {
			data = data[:600]
		}
		defer fzWatchdog(fmt.Sprintf("%q", data))()
		synctest.Test(t, func(t *testing.T) { fzRunAPI(t, data) })
	})
}

// fzRunAPI runs one FuzzAPISequence input in a bubble.
func fzRunAPI(t *testing.T, data []byte) {
	at := func(i int) byte {
		if i < len(data) {
			return data[i]
		}
		return 0
	}
	opts := []Option{
		WithLogger(fzLogger()),
		WithStrategy(Strategy(at(0) % 3)),
		WithIntensity(int(at(1)%8), time.Duration(1+at(1)/8%4)*time.Second),
	}
	auto := AutoShutdown(at(2) / 3 % 3)
	opts = append(opts, WithAutoShutdown(auto))
	switch at(2) % 3 {
	case 1:
		opts = append(opts, WithBackoff(ConstantBackoff(300*time.Millisecond)))
	case 2:
		opts = append(opts, WithBackoff(ExponentialBackoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Multiplier: 3}))
	}
	r := &fzAPI{
		t:       t,
		root:    New("root", opts...),
		nested:  New("n", WithLogger(fzLogger()), WithIntensity(1, time.Second)),
		workers: map[string]*fzAPIWorker{},
		auto:    auto,
	}
	for _, name := range []string{"a", "b", "c"} {
		r.workers[name] = &fzAPIWorker{name: name, sup: r.root}
	}
	r.workers["x"] = &fzAPIWorker{name: "x", sup: r.nested}
	require.NoError(t, r.nested.Add("x", r.workers["x"], WithShutdownTimeout(500*time.Millisecond)))
	require.NoError(t, r.root.Add("a", r.workers["a"]))
	r.serve()
	r.check()

	workerOf := func(arg byte) *fzAPIWorker { return r.workers[[]string{"a", "b", "c", "x"}[arg%4]] }
	for i := 3; i+1 < len(data); i += 2 {
		op, arg := data[i]%16, data[i+1]
		name := fzAPINames[arg%4]
		r.log = append(r.log, fmt.Sprintf("op %d arg %d (%s)", op, arg, name))
		switch op {
		case 0: // Add with a policy, a shutdown timeout, maybe significant
			var copts []ChildOption
			policy := RestartPolicy(arg >> 2 % 3)
			copts = append(copts, WithRestart(policy))
			if arg&0x40 != 0 && policy != Permanent && r.auto != noAutoShutdown {
				copts = append(copts, WithSignificant())
			}
			switch arg >> 4 % 4 {
			case 1:
				copts = append(copts, WithShutdownTimeout(100*time.Millisecond))
			case 2:
				copts = append(copts, WithShutdownTimeout(time.Second))
			case 3:
				copts = append(copts, WithShutdownTimeout(0))
			}
			var w Worker = r.nested
			if name != "n" {
				w = r.workers[name]
			}
			r.call(r.root, reqAdd, name, func() error { return r.root.Add(name, w, copts...) })
		case 1:
			r.call(r.root, reqTerminate, name, nil)
		case 2:
			r.call(r.root, reqRestart, name, nil)
		case 3:
			r.call(r.root, reqRemove, name, nil)
		case 4: // Serve stops or starts
			if r.serving {
				r.stop()
			} else {
				r.serve()
			}
		case 5, 6, 7, 8, 9:
			workerOf(arg).send(fzCmd(fzExitError + fzExit(op-5))) // error, nil, panic, Goexit, ErrDoNotRestart
		case 10:
			workerOf(arg).send(fzCmdSelfTerminate)
		case 11:
			workerOf(arg).send(fzCmdSelfRemove)
		case 12:
			if arg%4 == 0 { // keep the tree-wide stop rare
				workerOf(arg / 4).send(fzCmd(fzExitTerminateTree))
			}
		case 13:
			time.Sleep(time.Duration(arg+1) * 37 * time.Millisecond)
		case 14:
			w := workerOf(arg)
			w.mu.Lock()
			w.hang = time.Duration(arg>>2%8) * 400 * time.Millisecond
			w.mu.Unlock()
		case 15:
			if arg%2 == 0 {
				r.call(r.nested, reqTerminate, "x", nil)
			} else {
				r.call(r.nested, reqRestart, "x", nil)
			}
		}
		r.check()
	}

	if r.serving {
		r.stop()
	}
	time.Sleep(4 * time.Second) // longer than any hang: every stuck copy returns
	r.check()
	for _, sup := range []*Supervisor{r.root, r.nested} {
		for _, c := range sup.Children() {
			if c.State != Stopped {
				r.fail("%s: %q is %v at the end", sup.name, c.Name, c.State)
			}
		}
	}
	for name, w := range r.workers {
		running, starts, exits, _, _ := w.snapshot()
		if running != 0 || starts != exits {
			r.fail("%s: %d copies still run, %d started, %d returned", name, running, starts, exits)
		}
	}
}
