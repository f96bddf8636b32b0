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
// Helpers. The fake worker (probe) and the shared helpers are in
// harness_test.go; the fuzz tests' own workers are optWorker and apiWorker.

// discardLogger returns a logger that formats every record and throws it away, so
// that fuzzed names and errors go through the logging code.
func discardLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// watchdog crashes the test binary if the input takes a minute of real
// time: a busy loop in zero fake time, which synctest cannot see as a
// deadlock. The fuzzing engine then keeps the input. Call the function it
// returns when the input is done.
func watchdog(input string) (stop func()) {
	t := time.AfterFunc(time.Minute, func() {
		panic("fuzz: input ran for a minute of real time (a busy loop?): " + input)
	})
	return func() { t.Stop() }
}

// validName reports whether checkName's documented rule accepts name:
// non-empty and free of '/'.
func validName(name string) bool { return name != "" && !strings.Contains(name, "/") }

// clamp maps any x into [lo, hi] (lo plus x, as unsigned, modulo the
// range's size), so that every fuzzed value lands somewhere in the range.
func clamp(x, lo, hi int64) int64 {
	span := uint64(hi - lo + 1)
	u := uint64(x)
	if span == 0 {
		return int64(u)
	}
	return lo + int64(u%span)
}

// exitKind is how a fuzzed worker ends a copy by itself.
type exitKind uint8

const (
	exitError exitKind = iota
	exitNil
	exitPanic
	exitGoexit
	exitDoNotRestart
	exitTerminateTree
	exitKinds
)

// do ends the calling copy the way e says: it returns an error or nil,
// panics, or calls runtime.Goexit.
func (e exitKind) do() error {
	switch e {
	case exitNil:
		return nil
	case exitPanic:
		panic(errBoom)
	case exitGoexit:
		runtime.Goexit()
	case exitDoNotRestart:
		return fmt.Errorf("fuzz: done: %w", ErrDoNotRestart)
	case exitTerminateTree:
		return fmt.Errorf("fuzz: stop all: %w", ErrTerminateTree)
	}
	return errBoom
}

// failed reports whether the engine counts the exit as a failure (a non-nil
// error, a panic or Goexit).
func (e exitKind) failed() bool { return e != exitNil }

// matches reports whether err is (or wraps) what an exit of kind e returns.
func (e exitKind) matches(err error) bool {
	var pe *PanicError
	switch e {
	case exitNil:
		return err == nil
	case exitPanic:
		return errors.As(err, &pe) && errors.Is(err, errBoom)
	case exitGoexit:
		return errors.Is(err, ErrGoexit)
	case exitDoNotRestart:
		return errors.Is(err, ErrDoNotRestart)
	case exitTerminateTree:
		return errors.Is(err, ErrTerminateTree)
	}
	return errors.Is(err, errBoom) && !errors.As(err, &pe)
}

// ---------------------------------------------------------------------------
// FuzzOptions.

// optInput is one decoded FuzzOptions input.
type optInput struct {
	maxRestarts int
	period      time.Duration
	strategy    Strategy
	auto        AutoShutdown
	policy      RestartPolicy
	significant bool
	timeout     time.Duration // given to Add with WithShutdownTimeout
	backoffKind backoffChoice // which Backoff WithBackoff is given, if any
	backoffIn   optWhere      // where WithBackoff is given
	constD      time.Duration // ConstantBackoff's and fixedBackoff's delay
	exp         ExponentialBackoff
	resetIn     optWhere // where WithBackoffReset is given
	reset       time.Duration
	runFor      time.Duration // how long each copy runs before it exits
	hang        time.Duration // how long a copy ignores cancellation
	exits       uint64        // 3 bits per copy: its exitKind (see exitsOf)
	count       int           // how many copies exit by themselves
	n           int           // a failure count for Delay
	restartIf   uint8         // WithRestartIf: its mode (bits 0-1) and answers (bits 2-7)
}

// backoffChoice is which Backoff a FuzzOptions input gives WithBackoff (its
// value modulo 8).
type backoffChoice uint8

const (
	backoffNone          backoffChoice = iota // no WithBackoff at all
	backoffZero                               // ConstantBackoff(0)
	backoffConstant                           // ConstantBackoff(constD)
	backoffExp                                // the ExponentialBackoff exp
	backoffExpPointer                         // a pointer to a copy of exp
	backoffNil                                // a nil Backoff
	backoffNilExpPointer                      // a nil *ExponentialBackoff
	backoffCustom                             // fixedBackoff(constD)
)

// optWhere says where an option is given: bit 0, to New; bit 1, to Add.
type optWhere uint8

const (
	inNew optWhere = 1 << iota // the option is given to New
	inAdd                      // the option is given to Add
)

// How an input's restartIf (bits 0-1, its mode) sets WithRestartIf. Bits 2-7
// are predicateByExit's answers, one per exitKind (see restartOn).
const (
	predicateNone   = 0 // no WithRestartIf
	predicateByExit = 1 // a predicate that answers by the kind of exit
	predicatePanics = 2 // a predicate that panics, so that the restart policy decides
	predicateNil    = 3 // WithRestartIf(nil), which Add rejects
)

// exitsOf returns the exits field of an input whose first copies end as
// kinds say, in order (the copies after them: exitError).
func exitsOf(kinds ...exitKind) uint64 {
	var exits uint64
	for k, kind := range kinds {
		exits |= uint64(kind) << (3 * uint(k))
	}
	return exits
}

// restartOn returns the restartIf answer bits of a predicateByExit predicate
// that asks for a restart after the exits of the given kinds only.
func restartOn(kinds ...exitKind) uint8 {
	var bits uint8
	for _, kind := range kinds {
		bits |= 1 << (2 + kind)
	}
	return bits
}

// predicate returns the WithRestartIf predicate of the input, or nil:
// predicateByExit answers by the kind of exit (bit 2+kind of restartIf),
// predicatePanics panics, so that the restart policy decides.
func (in *optInput) predicate() func(error) bool {
	switch in.restartIf % 4 {
	case predicateByExit:
		return func(err error) bool {
			for k := exitError; k < exitKinds; k++ {
				if k.matches(err) {
					return in.restartIf>>(2+k)&1 != 0
				}
			}
			panic(fmt.Sprintf("fuzz: unexpected exit %v", err))
		}
	case predicatePanics:
		return func(error) bool { panic("fuzz: predicate") }
	}
	return nil
}

// backoff builds the fuzzed Backoff and reports whether WithBackoff must
// reject it.
func (in *optInput) backoff() (b Backoff, bad bool) {
	switch in.backoffKind % 8 {
	case backoffZero:
		return ConstantBackoff(0), false
	case backoffConstant:
		return ConstantBackoff(in.constD), in.constD < 0
	case backoffExp:
		return in.exp, !expValid(in.exp)
	case backoffExpPointer:
		e := in.exp
		return &e, !expValid(in.exp)
	case backoffNil:
		return nil, true
	case backoffNilExpPointer:
		return (*ExponentialBackoff)(nil), true
	case backoffCustom:
		return fixedBackoff(in.constD), false
	}
	return ConstantBackoff(0), false // backoffNone gives no WithBackoff at all
}

// expValid is ExponentialBackoff's documented rule: Initial positive, Max
// at least Initial, Multiplier at least 1 and finite, Jitter in [0, 1].
func expValid(b ExponentialBackoff) bool {
	return b.Initial > 0 && b.Max >= b.Initial &&
		b.Multiplier >= 1 && !math.IsInf(b.Multiplier, 0) && !math.IsNaN(b.Multiplier) &&
		b.Jitter >= 0 && b.Jitter <= 1
}

// expRef is the exact delay(n) = min(Max, Initial × Multiplier^(n−1)) of
// the documentation (shifted by one with ImmediateFirst), computed with
// 256-bit floats, without jitter. It is only called for 0 ≤ n ≤ 2000.
func expRef(b ExponentialBackoff, n int) time.Duration {
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

// checkDelay checks ExponentialBackoff.Delay for b on many failure counts:
// never a panic; for a valid b never negative, never above Max, the exact
// documented value without jitter (within float rounding), within
// [d×(1−Jitter), d] with it, and not decreasing in n.
func checkDelay(t *testing.T, b ExponentialBackoff, n int) {
	ns := []int{-1, 0, 1, 2, 3, 4, 10, 62, 63, 64, 65, 100, 1000, 2000, 1 << 20, math.MaxInt32, math.MaxInt, math.MinInt, n}
	valid := expValid(b)
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
			ref := expRef(b, k)
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

// optWorker is the fuzzed child: its first count copies run for runFor and
// then end by themselves as exits says; later copies run until cancelled.
// Every copy ignores cancellation for hang. It records when copies start and
// end, in fake time since t0.
type optWorker struct {
	in *optInput
	t0 time.Time

	mu      sync.Mutex
	starts  []time.Duration
	ends    []time.Duration // when the copies that ended by themselves did
	running int
	most    int
}

// kind returns the exitKind of copy k.
func (w *optWorker) kind(k int) exitKind {
	return exitKind(w.in.exits>>(3*uint(k))&7) % exitKinds
}

func (w *optWorker) Serve(ctx context.Context) error {
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

// optHorizon is how long a FuzzOptions run lasts in fake time at most: far
// below the ~262 years after which the bubble's clock would overflow.
const optHorizon = 100 * 365 * 24 * time.Hour

// optOutcome is what the model predicts for a FuzzOptions run.
type optOutcome struct {
	starts    []time.Duration // when copies of a start
	restarts  int             // a's Restarts
	failures  int             // a's Failures
	removed   bool            // a (temporary) is gone
	lastErr   exitKind        // kind of a's last failing exit, if any
	anyFailed bool
	ret       time.Duration // when Serve returns by itself, or at the horizon
	byItself  bool          // Serve returns without its context cancelled
	retErr    exitKind      // intensity: the exit that asked for the refused restart
	intensity bool          // Serve returns ErrIntensityExceeded
	tree      bool          // Serve returns ErrTerminateTree
	running   bool          // a runs when the horizon comes
	ambiguous bool          // two events fall on the same instant: no exact check
}

// optModel computes what the documentation says a run of in does: copies
// of a start at 0 and exit after runFor; a restart waits its backoff, counts
// against the intensity when performed (sliding window, boundary included),
// and the failure count starts again after a run of the reset time. delay
// returns the backoff before the restart after copy k's exit with failures
// consecutive failures.
func optModel(in *optInput, backoff Backoff, reset time.Duration, delay func(k, failures int) time.Duration) optOutcome {
	var o optOutcome
	var window []time.Duration
	t := time.Duration(0)
	o.starts = []time.Duration{0}
	for k := 0; ; k++ {
		if k >= in.count {
			o.running, o.ret = true, optHorizon
			return o
		}
		exit := t + in.runFor
		if exit >= optHorizon {
			o.ambiguous = exit == optHorizon
			o.running, o.ret = true, optHorizon
			return o
		}
		kind := exitKind(in.exits>>(3*uint(k))&7) % exitKinds
		if kind.failed() {
			o.lastErr, o.anyFailed = kind, true
		}
		settle := func() {
			if in.policy == Temporary {
				o.removed = true
			}
		}
		restart := in.policy == Permanent || (in.policy == Transient && kind.failed())
		if in.restartIf%4 == predicateByExit {
			restart = in.restartIf>>(2+kind)&1 != 0
		}
		switch {
		case kind == exitTerminateTree:
			settle()
			o.ret, o.byItself, o.tree = exit, true, true
			return o
		case in.policy == Temporary || kind == exitDoNotRestart || !restart:
			settle()
			o.ret = optHorizon
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
		if d > optHorizon-exit || r >= optHorizon {
			o.ambiguous = r == optHorizon
			o.ret = optHorizon
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

// optionSeeds are FuzzOptions's seeds, each named by what it exercises. A
// field left out is zero: OneForOne, no automatic shutdown, Permanent, no
// WithBackoff or WithBackoffReset, copies that exit at once with an error.
var optionSeeds = []optInput{
	// OTP default: 4th failure escalates.
	{maxRestarts: 3, period: 5 * time.Second, timeout: 5 * time.Second, count: 5, n: 3},
	// Exponential in New, stuck at the end.
	{
		maxRestarts: 3, period: 5 * time.Second, strategy: OneForAll,
		timeout:     time.Second,
		backoffKind: backoffExp, backoffIn: inNew, exp: ExponentialBackoff{Initial: time.Second, Max: 30 * time.Second, Multiplier: 2},
		runFor: 100 * time.Millisecond, hang: 2 * time.Second, count: 12, n: 5,
	},
	// Jitter, Kubernetes recipe.
	{
		maxRestarts: 3, period: 10 * time.Second, strategy: RestForOne,
		policy:      Transient,
		backoffKind: backoffExp, backoffIn: inAdd, exp: ExponentialBackoff{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: 0.2, ImmediateFirst: true},
		resetIn: inNew, reset: 10 * time.Second,
		exits: exitsOf(exitError, exitPanic, exitError, exitPanic), count: 12, n: 7,
	},
	// Temporary significant.
	{
		period: time.Second, auto: AnySignificant,
		policy: Temporary, significant: true, timeout: time.Second,
		backoffKind: backoffConstant, backoffIn: inNew | inAdd, constD: time.Second,
		resetIn: inAdd,
		runFor:  time.Second, count: 1, n: 1,
	},
	// Transient significant normal exit.
	{
		maxRestarts: 1, period: time.Second, auto: AllSignificant,
		policy: Transient, significant: true, timeout: time.Second,
		runFor: time.Second, exits: exitsOf(exitNil), count: 3, n: 1,
	},
	// Custom negative delay, every exit kind.
	{
		maxRestarts: 5, period: time.Second,
		timeout:     time.Second,
		backoffKind: backoffCustom, backoffIn: inNew, constD: -time.Second,
		exits: exitsOf(exitError, exitNil, exitPanic, exitGoexit, exitDoNotRestart, exitTerminateTree), count: 7, n: 2,
	},
	// Negative maxRestarts.
	{maxRestarts: -1, period: time.Second, timeout: time.Second, count: 1, n: 1},
	// Zero period.
	{maxRestarts: 1, period: 0, timeout: time.Second, count: 1, n: 1},
	// Unknown strategy.
	{maxRestarts: 1, period: time.Second, strategy: Strategy(3), timeout: time.Second, count: 1, n: 1},
	// Unknown auto shutdown.
	{maxRestarts: 1, period: time.Second, auto: AutoShutdown(-1), timeout: time.Second, count: 1, n: 1},
	// Unknown policy.
	{maxRestarts: 1, period: time.Second, policy: RestartPolicy(9), timeout: time.Second, count: 1, n: 1},
	// Negative timeout.
	{maxRestarts: 1, period: time.Second, timeout: -1, count: 1, n: 1},
	// Significant permanent.
	{maxRestarts: 1, period: time.Second, significant: true, timeout: time.Second, count: 1, n: 1},
	// NaN multiplier.
	{
		maxRestarts: 1, period: time.Second,
		timeout:     time.Second,
		backoffKind: backoffExp, backoffIn: inNew | inAdd, exp: ExponentialBackoff{Initial: time.Second, Max: time.Second, Multiplier: math.NaN()},
		count: 1, n: 1,
	},
	// Infinite multiplier.
	{
		maxRestarts: 1, period: time.Second,
		timeout:     time.Second,
		backoffKind: backoffExp, backoffIn: inNew, exp: ExponentialBackoff{Initial: time.Second, Max: time.Second, Multiplier: math.Inf(1)},
		count: 1, n: 1,
	},
	// NaN jitter.
	{
		maxRestarts: 1, period: time.Second,
		timeout:     time.Second,
		backoffKind: backoffExpPointer, backoffIn: inAdd, exp: ExponentialBackoff{Initial: time.Second, Max: time.Second, Multiplier: 2, Jitter: math.NaN()},
		count: 1, n: 1,
	},
	// Negative jitter.
	{
		maxRestarts: 1, period: time.Second,
		timeout:     time.Second,
		backoffKind: backoffExp, backoffIn: inAdd, exp: ExponentialBackoff{Initial: time.Second, Max: time.Second, Multiplier: 2, Jitter: -0.5},
		count: 1, n: 1,
	},
	// Max below Initial.
	{
		maxRestarts: 1, period: time.Second,
		timeout:     time.Second,
		backoffKind: backoffExp, backoffIn: inNew, exp: ExponentialBackoff{Initial: 2 * time.Second, Max: time.Second, Multiplier: 2},
		count: 1, n: 1,
	},
	// Nil Backoff.
	{
		maxRestarts: 1, period: time.Second,
		timeout:     time.Second,
		backoffKind: backoffNil, backoffIn: inNew,
		count: 1, n: 1,
	},
	// Typed nil *ExponentialBackoff.
	{
		maxRestarts: 1, period: time.Second,
		timeout:     time.Second,
		backoffKind: backoffNilExpPointer, backoffIn: inAdd,
		count: 1, n: 1,
	},
	// Negative constant.
	{
		maxRestarts: 1, period: time.Second,
		timeout:     time.Second,
		backoffKind: backoffConstant, backoffIn: inNew, constD: -1,
		count: 1, n: 1,
	},
	// Negative reset.
	{
		maxRestarts: 1, period: time.Second,
		timeout: time.Second,
		resetIn: inNew | inAdd, reset: -1,
		count: 1, n: 1,
	},
	// Extremes.
	{
		maxRestarts: 100, period: math.MaxInt64,
		timeout:     math.MaxInt64,
		backoffKind: backoffExp, backoffIn: inNew | inAdd, exp: ExponentialBackoff{Initial: 1, Max: math.MaxInt64, Multiplier: 1e300, Jitter: 1},
		resetIn: inNew | inAdd, reset: math.MaxInt64,
		count: 12, n: math.MaxInt,
	},
	// Tiny multiplier, huge Max.
	{
		maxRestarts: 2, period: time.Second, strategy: OneForAll,
		timeout:     time.Second,
		backoffKind: backoffExpPointer, backoffIn: inNew, exp: ExponentialBackoff{Initial: 1, Max: math.MaxInt64, Multiplier: 1 + 1e-15, Jitter: 0.999999, ImmediateFirst: true},
		count: 12, n: 2000,
	},
	// Backoff reset after each run.
	{
		maxRestarts: 2, period: 3 * time.Second,
		timeout:     time.Second,
		backoffKind: backoffConstant, backoffIn: inNew, constD: time.Second,
		resetIn: inNew, reset: 2 * time.Second,
		runFor: 2 * time.Second, count: 12, n: 1,
	},
	// ErrTerminateTree.
	{
		maxRestarts: 2, period: time.Second, strategy: OneForAll,
		timeout: time.Second,
		runFor:  time.Second, exits: exitsOf(exitTerminateTree), count: 2, n: 1,
	},
	// Predicate: restart a transient child on normal exits only.
	{
		maxRestarts: 3, period: 5 * time.Second,
		policy: Transient, timeout: time.Second,
		runFor: time.Second, exits: exitsOf(exitNil, exitError, exitNil, exitError, exitNil), count: 5, n: 1, restartIf: predicateByExit | restartOn(exitNil),
	},
	// Predicate panics: the policy decides.
	{
		maxRestarts: 3, period: 5 * time.Second,
		policy: Transient, timeout: time.Second,
		runFor: time.Second, exits: exitsOf(exitPanic), count: 5, n: 1, restartIf: predicatePanics,
	},
	// Nil predicate.
	{
		maxRestarts: 3, period: 5 * time.Second,
		timeout: time.Second,
		runFor:  time.Second, count: 5, n: 1, restartIf: predicateNil,
	},
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
	for _, in := range optionSeeds { // the arguments of the fuzz function below, which decodes them into in
		f.Add(in.maxRestarts, int64(in.period), int(in.strategy), int(in.auto), int(in.policy), in.significant,
			int64(in.timeout), uint8(in.backoffKind), uint8(in.backoffIn), int64(in.constD),
			int64(in.exp.Initial), int64(in.exp.Max), in.exp.Multiplier, in.exp.Jitter, in.exp.ImmediateFirst,
			uint8(in.resetIn), int64(in.reset), int64(in.runFor), int64(in.hang), in.exits, uint8(in.count),
			in.n, in.restartIf)
	}
	f.Fuzz(func(t *testing.T, maxRestarts int, period int64, strategy, auto, policy int, significant bool,
		timeout int64, backoffKind, backoffIn uint8, constD, initial, maxD int64, mult, jitter float64, immediate bool,
		resetIn uint8, reset, runFor, hang int64, exits uint64, count uint8, n int, restartIf uint8) {
		in := &optInput{
			maxRestarts: maxRestarts, period: time.Duration(period),
			strategy: Strategy(strategy), auto: AutoShutdown(auto), policy: RestartPolicy(policy),
			significant: significant, timeout: time.Duration(timeout),
			backoffKind: backoffChoice(backoffKind), backoffIn: optWhere(backoffIn % 4), constD: time.Duration(constD),
			exp: ExponentialBackoff{
				Initial: time.Duration(initial), Max: time.Duration(maxD),
				Multiplier: mult, Jitter: jitter, ImmediateFirst: immediate,
			},
			resetIn: optWhere(resetIn % 4), reset: time.Duration(reset),
			runFor: time.Duration(clamp(runFor, 0, int64(24*time.Hour))),
			hang:   time.Duration(clamp(hang, 0, int64(10*time.Minute))),
			exits:  exits, count: int(count % 13), n: n, restartIf: restartIf,
		}
		checkDelay(t, in.exp, n)
		if got := ConstantBackoff(in.constD).Delay(n); got != in.constD {
			t.Fatalf("ConstantBackoff(%v).Delay(%d) = %v", in.constD, n, got)
		}
		if got := ConstantBackoff(0).Delay(n); got != 0 {
			t.Fatalf("ConstantBackoff(0).Delay(%d) = %v", n, got)
		}
		defer watchdog(fmt.Sprintf("%+v", *in))()
		synctest.Test(t, func(t *testing.T) { runOptions(t, in) })
	})
}

// runOptions runs one FuzzOptions input in a bubble and checks it against
// optModel.
func runOptions(t *testing.T, in *optInput) {
	backoff, backoffBad := in.backoff()
	if in.backoffKind%8 == backoffNone {
		in.backoffIn = 0
	}
	var supOpts []Option
	var childOpts []ChildOption
	supBad := in.maxRestarts < 0 || in.period <= 0 || in.strategy < OneForOne || in.strategy > RestForOne ||
		in.auto < noAutoShutdown || in.auto > AllSignificant
	supOpts = append(supOpts, WithLogger(discardLogger()), WithIntensity(in.maxRestarts, in.period),
		WithStrategy(in.strategy), WithAutoShutdown(in.auto))
	childBad := in.policy < Permanent || in.policy > Temporary || in.timeout < 0
	childOpts = append(childOpts, WithRestart(in.policy), WithShutdownTimeout(in.timeout))
	if p := in.predicate(); p != nil {
		childOpts = append(childOpts, WithRestartIf(p))
	} else if in.restartIf%4 == predicateNil {
		childOpts = append(childOpts, WithRestartIf(nil))
		childBad = true
	}
	var effBackoff Backoff
	if in.backoffIn&inNew != 0 {
		supOpts = append(supOpts, WithBackoff(backoff))
		supBad = supBad || backoffBad
		effBackoff = backoff
	}
	if in.backoffIn&inAdd != 0 {
		childOpts = append(childOpts, WithBackoff(backoff))
		childBad = childBad || backoffBad
		effBackoff = backoff
	}
	effReset := DefaultBackoffReset
	if in.resetIn&inNew != 0 {
		supOpts = append(supOpts, WithBackoffReset(in.reset))
		supBad = supBad || in.reset < 0
		effReset = in.reset
	}
	if in.resetIn&inAdd != 0 {
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
	w := &optWorker{in: in}
	b := newProbe("b", nil)
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
		require.Zero(t, b.starts(), "no child started")
		return
	}
	if childBad {
		require.ErrorIs(t, <-done, ErrInvalid, "the refused Add fails the next Serve")
		synctest.Wait()
		require.Zero(t, b.starts(), "no child started")
		return
	}

	var ret time.Duration
	byItself := true
	select {
	case err = <-done:
	case <-time.After(optHorizon):
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
				return optHorizon + 1 // it had not happened at the horizon
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
	o := optModel(in, effBackoff, effReset, delay)
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
		if o.retErr != exitNil {
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
	require.Equal(t, 1+wantB, b.starts(), "b's copies: %s", what)
	require.LessOrEqual(t, w.most, 1, "never two copies of a")
}

// ---------------------------------------------------------------------------
// FuzzNames.

// nameSeeds are FuzzNames's seeds: the supervisor's name given to New and
// the names of its two children given to Add.
var nameSeeds = []struct{ sup, name1, name2 string }{
	{sup: "root", name1: "a", name2: "b"},
	{sup: "", name1: "a", name2: "a"},
	{sup: "root", name1: "", name2: "x/y"},
	{sup: "a/b", name1: "/", name2: "//"},
	{sup: "根", name1: "ребёнок", name2: "🙂"},
	{sup: "\x00", name1: "\xff\xfe", name2: "a\nb"},
	{sup: "root", name1: "same", name2: "same"},
	{sup: " ", name1: "\t", name2: "a b"},
	{sup: "..", name1: ".", name2: "%s%v%!"},
	{sup: "root", name1: "a/", name2: "/a"},
	{sup: strings.Repeat("r", 1<<16), name1: strings.Repeat("c", 1<<16), name2: strings.Repeat("é", 4096)},
}

// FuzzNames feeds names to New and Add: empty, with '/', any bytes, any
// length. A valid name (non-empty, no '/') is accepted, shown by Children
// exactly, usable with Terminate, Restart and Remove, and carried unchanged
// by a *StuckError; a bad one gives an error matching ErrInvalid (from Add,
// or from Serve at once for New's name); a duplicate gives ErrAlreadyExists.
func FuzzNames(f *testing.F) {
	for _, seed := range nameSeeds {
		f.Add(seed.sup, seed.name1, seed.name2)
	}
	f.Fuzz(func(t *testing.T, supName, name1, name2 string) {
		defer watchdog(fmt.Sprintf("%q %q %q", supName, name1, name2))()
		synctest.Test(t, func(t *testing.T) { runNames(t, supName, name1, name2) })
	})
}

// runNames runs one FuzzNames input in a bubble.
func runNames(t *testing.T, supName, name1, name2 string) {
	s := New(supName, WithLogger(discardLogger()), WithIntensity(10, time.Second))
	want := []string{}
	refused := false // an Add refused as invalid before Serve: Serve fails
	add := func(name string, w Worker, opts ...ChildOption) {
		t.Helper()
		err := s.Add(name, w, opts...)
		switch {
		case !validName(name):
			require.ErrorIs(t, err, ErrInvalid, "Add(%q)", name)
			refused = true
		case slices.Contains(want, name):
			require.ErrorIs(t, err, ErrAlreadyExists, "Add(%q) again", name)
		default:
			require.NoError(t, err, "Add(%q)", name)
			want = append(want, name)
		}
		require.Equal(t, want, childNames(s), "Children after Add(%q)", name)
	}
	notFound := func(name string) {
		t.Helper()
		require.ErrorIs(t, s.Terminate(context.Background(), name), ErrNotFound, "Terminate(%q)", name)
		require.ErrorIs(t, s.Restart(name), ErrNotFound, "Restart(%q)", name)
		require.ErrorIs(t, s.Remove(context.Background(), name), ErrNotFound, "Remove(%q)", name)
	}
	// name1's first copy fails at once (so that its name goes through the
	// failure log); its later copies run until cancelled.
	w1 := newProbe(name1, nil).firstCopies(copyPlan{failAtOnce: errBoom})
	add(name1, w1)
	add(name2, newProbe(name2, nil))
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
	if !validName(supName) || refused {
		require.ErrorIs(t, <-done, ErrInvalid, "Serve of New(%q), or after a refused Add", supName)
		require.Zero(t, time.Since(start))
		synctest.Wait()
		require.Zero(t, w1.starts(), "nothing started")
		return
	}
	synctest.Wait()
	for _, c := range s.Children() {
		require.Equal(t, Running, c.State, "%q runs", c.Name)
		if c.Name == name1 {
			require.Equal(t, 1, c.Restarts, "%q failed once and was restarted", c.Name)
			require.ErrorIs(t, c.LastError, errBoom)
		}
	}
	add(name1, newProbe(name1, nil)) // while serving: invalid or a duplicate
	for _, name := range slices.Clone(want) {
		require.NoError(t, s.Terminate(context.Background(), name), "Terminate(%q)", name)
		require.Equal(t, []string{name + ":stopped"}, statesNamed(s, name))
		require.NoError(t, s.Restart(name), "Restart(%q)", name)
		synctest.Wait()
		require.Equal(t, []string{name + ":running"}, statesNamed(s, name))
		require.NoError(t, s.Remove(context.Background(), name), "Remove(%q)", name)
		want = slices.DeleteFunc(want, func(n string) bool { return n == name })
		require.Equal(t, want, childNames(s), "Children after Remove(%q)", name)
		notFound(name)
		// It ignores its cancellation for 2.5s, past its shutdown timeout,
		// and past the 2s the shutdown of both children takes, so that no
		// copy returns at the instant another is declared stuck.
		add(name, newProbe(name, nil).each(copyPlan{hang: 2500 * time.Millisecond}), WithShutdownTimeout(time.Second))
	}
	synctest.Wait()
	err := func() error { cancel(); return <-done }()
	stuck := map[string]bool{}
	for _, e := range joinedErrors(err) {
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
	time.Sleep(3 * time.Second)
	synctest.Wait()
}

// statesNamed returns "name:state" for the children of s called name.
func statesNamed(s *Supervisor, name string) []string {
	var out []string
	for _, c := range s.Children() {
		if c.Name == name {
			out = append(out, c.Name+":"+c.State.String())
		}
	}
	return out
}

// joinedErrors returns the errors that err joins with errors.Join, or err
// alone, or nothing for nil. (An error of fmt.Errorf with two %w also has
// Unwrap() []error; it is one error, not a list.)
func joinedErrors(err error) []error {
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

// apiCmd is a command that the test sends to the running copy of an
// apiWorker.
type apiCmd uint8

const (
	apiSelfTerminate apiCmd = 100 + iota // call Terminate on itself
	apiSelfRemove                        // call Remove on itself
)

// apiWorker is a FuzzAPISequence worker. Each copy waits for a command
// (end as an exitKind, or call its supervisor on itself) or for cancellation,
// which it ignores for hang. It counts its copies and records any broken
// rule of the engine it can see from inside.
type apiWorker struct {
	name string
	sup  *Supervisor // its supervisor, for the calls on itself

	mu       sync.Mutex
	cur      chan apiCmd // the command channel of the copy that waits, or nil
	hang     time.Duration
	running  int
	starts   int
	exits    int
	most     int
	problems []string
}

func (w *apiWorker) Serve(ctx context.Context) error {
	cmds := make(chan apiCmd, 1)
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
			if c != apiSelfTerminate && c != apiSelfRemove {
				return exitKind(c).do()
			}
			start := time.Now()
			var err error
			if c == apiSelfTerminate {
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
func (w *apiWorker) problem(p string) {
	w.mu.Lock()
	w.problems = append(w.problems, w.name+": "+p)
	w.mu.Unlock()
}

// send hands c to the copy that waits for commands and reports whether one
// did.
func (w *apiWorker) send(c apiCmd) bool {
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
func (w *apiWorker) snapshot() (running, starts, exits, most int, problems []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.running, w.starts, w.exits, w.most, slices.Clone(w.problems)
}

// apiRun is the state of one FuzzAPISequence run: a root supervisor with
// workers a, b, c and a nested supervisor n (which holds worker x), all
// added, removed and steered by the decoded operations.
type apiRun struct {
	t       *testing.T
	root    *Supervisor
	nested  *Supervisor
	workers map[string]*apiWorker // a, b, c in root; x in nested
	cancel  context.CancelFunc
	done    chan error
	serving bool         // root's Serve has not returned yet
	auto    AutoShutdown // root's automatic shutdown
	log     []string
}

// apiNames are the names of root's children; "n" is the nested supervisor.
var apiNames = []string{"a", "b", "c", "n"}

// fail stops the run with the operations so far. It first stops root and
// waits for every copy, so that the bubble can end: otherwise synctest would
// add a report of the goroutines left behind to the failure.
func (r *apiRun) fail(format string, args ...any) {
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
func (r *apiRun) serve() {
	ctx, cancel := context.WithCancel(r.t.Context())
	r.cancel, r.done, r.serving = cancel, make(chan error, 1), true
	go func(done chan error) { done <- r.root.Serve(ctx) }(r.done)
}

// stop cancels root's Serve and checks what it returns.
func (r *apiRun) stop() {
	r.t.Helper()
	r.cancel()
	r.returned(<-r.done, false)
}

// returned checks what root's Serve returned: by itself, an escalation or
// ErrTerminateTree; after its context was cancelled, nil or stuck children
// (or an escalation already under way), each possibly with stuck children.
func (r *apiRun) returned(err error, byItself bool) {
	r.t.Helper()
	r.serving = false
	r.cancel()
	if byItself && !errors.Is(err, ErrIntensityExceeded) && !errors.Is(err, ErrTerminateTree) &&
		(r.auto == noAutoShutdown || (err != nil && !errors.Is(err, ErrStuck))) {
		r.fail("Serve returned by itself with %v, want an escalation, ErrTerminateTree or an automatic shutdown", err)
	}
	for _, e := range joinedErrors(err) {
		if !errors.Is(e, ErrIntensityExceeded) && !errors.Is(e, ErrTerminateTree) && !errors.Is(e, ErrStuck) {
			r.fail("Serve returned %v: unexpected part %v", err, e)
		}
	}
	r.log = append(r.log, fmt.Sprintf("   Serve returned %v", err))
}

// lookupChild returns the named child of s and whether it is there.
func lookupChild(s *Supervisor, name string) (ChildInfo, bool) {
	for _, c := range s.Children() {
		if c.Name == name {
			return c, true
		}
	}
	return ChildInfo{}, false
}

// startedState reports whether st is a state a child may be in right after Add
// or Restart started it: Running or (after a quick exit) Stopped; the nested
// supervisor n is Starting until it signals its readiness.
func startedState(name string, st State) bool {
	return st == Running || st == Stopped || (name == "n" && st == Starting)
}

// check verifies the invariants once the bubble is idle: root's Serve
// returned only for a reason it may return for; names are unique; the state
// of each worker child matches its copies (Running, Stopping and Stuck: one
// copy; Stopped and Restarting: none; not there: none); after Serve every
// child is Stopped or Stuck; never two copies of a worker at once; calls on
// itself returned nil at once; the nested supervisor was never served twice
// at once.
func (r *apiRun) check() {
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
			if c, ok := lookupChild(sup, name); ok && (c.State == Running || c.State == Stopping || c.State == Stuck) {
				want = 1
			}
			if running != want {
				c, ok := lookupChild(sup, name)
				r.fail("%s: %d copies run while Children says %v (present %v)", name, running, c.State, ok)
			}
		}
	}
}

// call runs one call of the dynamic API on s for the child name and checks
// its result against the child's state just before (the bubble is idle, so
// nothing else changes it meanwhile) and after.
func (r *apiRun) call(s *Supervisor, kind reqKind, name string, add func() error) {
	r.t.Helper()
	before, present := lookupChild(s, name)
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
	after, there := lookupChild(s, name)
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
		case !present && (!there || !startedState(name, after.State)):
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
		case before.State == Stopped && (!there || !startedState(name, after.State)):
			r.fail("after Restart(%q): present %v, state %v", name, there, after.State)
		case before.State != Stopped && !errors.Is(err, ErrNotStopped):
			r.fail("Restart(%q) of a %v child returned %v, want ErrNotStopped", name, before.State, err)
		}
	}
}

// apiSeed is a FuzzAPISequence input, for a seed: root's settings (bytes
// 0-2) and the operations that follow, two bytes each.
type apiSeed struct {
	strategy    Strategy     // byte 0
	maxRestarts uint8        // byte 1: root allows maxRestarts (below 8) restarts in 1s
	backoff     apiBackoff   // byte 2, with ...
	auto        AutoShutdown // ... root's automatic shutdown
	ops         []apiOp
}

// apiBackoff is root's backoff in a FuzzAPISequence run.
type apiBackoff uint8

const (
	apiNoBackoff          apiBackoff = iota // no WithBackoff
	apiConstantBackoff                      // ConstantBackoff(300ms)
	apiExponentialBackoff                   // ExponentialBackoff from 100ms, tripling up to 2s
)

// apiOp is one operation of a FuzzAPISequence input: what it does and its
// argument, whose meaning depends on the kind (see apiOpKind).
type apiOp struct {
	kind apiOpKind
	arg  byte
}

// apiOpKind is what an operation does (its first byte, modulo 16). Where
// the argument names a child of root, arg%4 is a, b, c or n; where it names
// a worker, arg%4 is a, b, c or x.
type apiOpKind byte

const (
	opAdd           apiOpKind = iota // Add the child: policy (arg>>2)%3, shutdown timeout (arg>>4)%4 (default, 100ms, 1s, 0), significant if arg&0x40
	opTerminate                      // Terminate the child
	opRestart                        // Restart the child
	opRemove                         // Remove the child
	opServe                          // stop root's Serve if it serves, or serve it
	opFail                           // the worker's running copy returns an error
	opExitNil                        // ... returns nil
	opPanic                          // ... panics
	opGoexit                         // ... calls runtime.Goexit
	opDoNotRestart                   // ... returns an error wrapping ErrDoNotRestart
	opSelfTerminate                  // ... calls Terminate on itself
	opSelfRemove                     // ... calls Remove on itself
	opTerminateTree                  // if arg%4 is 0, the running copy of worker arg/4 returns an error wrapping ErrTerminateTree
	opSleep                          // (arg+1)×37ms pass
	opHang                           // the worker's copies ignore cancellation for (arg>>2)%8 × 400ms
	opNested                         // Terminate x in n (arg even) or Restart it (arg odd)
)

// bytes returns the fuzz input of s.
func (s apiSeed) bytes() []byte {
	out := []byte{byte(s.strategy), s.maxRestarts, byte(s.backoff) + 3*byte(s.auto)}
	for _, op := range s.ops {
		out = append(out, byte(op.kind), op.arg)
	}
	return out
}

// apiSeeds are FuzzAPISequence's seeds (besides the empty input).
var apiSeeds = []apiSeed{
	{strategy: OneForOne, maxRestarts: 3, backoff: apiNoBackoff, ops: []apiOp{
		{opAdd, 1},   // b, permanent
		{opFail, 0},  // a fails
		{opFail, 0},  // a fails again
		{opServe, 0}, // Serve stops
		{opServe, 0}, // Serve starts again
	}},
	{strategy: OneForAll, maxRestarts: 2, backoff: apiConstantBackoff, ops: []apiOp{
		{opAdd, 1},       // b, permanent
		{opAdd, 3},       // n, permanent
		{opHang, 4},      // a ignores cancellation for 400ms
		{opFail, 1},      // b fails: a group restart
		{opSleep, 20},    // 777ms pass
		{opTerminate, 0}, // a
		{opRestart, 0},   // a
		{opServe, 0},     // Serve stops
		{opServe, 0},     // Serve starts again
	}},
	{strategy: RestForOne, maxRestarts: 0, backoff: apiExponentialBackoff, ops: []apiOp{
		{opAdd, 2},           // c, permanent
		{opAdd, 3},           // n, permanent
		{opPanic, 2},         // c panics (root allows no restart)
		{opSleep, 50},        // 1.887s pass
		{opGoexit, 0},        // a calls runtime.Goexit
		{opTerminateTree, 1}, // nothing: arg%4 is not 0
	}},
	{strategy: OneForOne, maxRestarts: 1, backoff: apiNoBackoff, ops: []apiOp{
		{opHang, 4},          // a ignores cancellation for 400ms
		{opAdd, 0},           // a again: ErrAlreadyExists
		{opTerminate, 0},     // a
		{opSelfTerminate, 0}, // a (not running)
		{opSelfRemove, 0},    // a (not running)
		{opDoNotRestart, 0},  // a (not running)
		{opFail, 3},          // x fails
		{opNested, 1},        // Restart x
		{opNested, 0},        // Terminate x
	}},
	{strategy: OneForAll, maxRestarts: 7, backoff: apiConstantBackoff, ops: []apiOp{
		{opHang, 4},    // a ignores cancellation for 400ms
		{opAdd, 1},     // b, permanent
		{opAdd, 2},     // c, permanent
		{opFail, 0},    // a fails: a group restart after 300ms
		{opSleep, 60},  // 2.257s pass
		{opRemove, 1},  // b
		{opServe, 0},   // Serve stops
		{opRestart, 1}, // b, removed: ErrNotFound
		{opServe, 0},   // Serve starts again
		{opRemove, 0},  // a
	}},
	{strategy: OneForOne, maxRestarts: 5, backoff: apiNoBackoff, ops: []apiOp{
		{opAdd, 3},       // n, permanent
		{opFail, 3},      // x fails
		{opFail, 3},      // x fails again
		{opFail, 3},      // x fails a third time
		{opRestart, 3},   // n
		{opRemove, 3},    // n
		{opAdd, 35},      // n again, temporary, shutdown timeout 1s
		{opHang, 16},     // a ignores cancellation for 1.6s
		{opTerminate, 0}, // a
	}},
}

// FuzzAPISequence decodes the fuzz bytes into a sequence of operations on a
// small tree (root with workers a, b, c and a nested supervisor n holding
// worker x): Add with fuzzed policies and shutdown timeouts, Terminate,
// Restart, Remove, Serve started and stopped, workers that fail, exit,
// panic, call runtime.Goexit, return ErrDoNotRestart or ErrTerminateTree,
// call Terminate or Remove on themselves, ignore cancellation for a while,
// and time that passes. Bytes 0-2 choose root's strategy, intensity,
// backoff and automatic shutdown; then each pair of bytes is one operation
// (see apiSeed and apiOpKind). After every operation it checks the
// invariants of check and call; at the end, that every copy
// returned and the bubble ends with no goroutine left (synctest reports a
// deadlock, a hang, as a failure).
func FuzzAPISequence(f *testing.F) {
	f.Add([]byte{}) // no bytes at all: every setting reads as 0, and no operation
	for _, seed := range apiSeeds {
		f.Add(seed.bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 600 {
			data = data[:600]
		}
		defer watchdog(fmt.Sprintf("%q", data))()
		synctest.Test(t, func(t *testing.T) { runAPI(t, data) })
	})
}

// runAPI runs one FuzzAPISequence input in a bubble.
func runAPI(t *testing.T, data []byte) {
	at := func(i int) byte {
		if i < len(data) {
			return data[i]
		}
		return 0
	}
	opts := []Option{
		WithLogger(discardLogger()),
		WithStrategy(Strategy(at(0) % 3)),
		WithIntensity(int(at(1)%8), time.Duration(1+at(1)/8%4)*time.Second),
	}
	auto := AutoShutdown(at(2) / 3 % 3)
	opts = append(opts, WithAutoShutdown(auto))
	switch apiBackoff(at(2) % 3) {
	case apiConstantBackoff:
		opts = append(opts, WithBackoff(ConstantBackoff(300*time.Millisecond)))
	case apiExponentialBackoff:
		opts = append(opts, WithBackoff(ExponentialBackoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Multiplier: 3}))
	}
	r := &apiRun{
		t:       t,
		root:    New("root", opts...),
		nested:  New("n", WithLogger(discardLogger()), WithIntensity(1, time.Second)),
		workers: map[string]*apiWorker{},
		auto:    auto,
	}
	for _, name := range []string{"a", "b", "c"} {
		r.workers[name] = &apiWorker{name: name, sup: r.root}
	}
	r.workers["x"] = &apiWorker{name: "x", sup: r.nested}
	require.NoError(t, r.nested.Add("x", r.workers["x"], WithShutdownTimeout(500*time.Millisecond)))
	require.NoError(t, r.root.Add("a", r.workers["a"]))
	r.serve()
	r.check()

	workerOf := func(arg byte) *apiWorker { return r.workers[[]string{"a", "b", "c", "x"}[arg%4]] }
	for i := 3; i+1 < len(data); i += 2 {
		op, arg := apiOpKind(data[i]%16), data[i+1]
		name := apiNames[arg%4]
		r.log = append(r.log, fmt.Sprintf("op %d arg %d (%s)", op, arg, name))
		switch op {
		case opAdd: // with a policy, a shutdown timeout, maybe significant
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
		case opTerminate:
			r.call(r.root, reqTerminate, name, nil)
		case opRestart:
			r.call(r.root, reqRestart, name, nil)
		case opRemove:
			r.call(r.root, reqRemove, name, nil)
		case opServe:
			if r.serving {
				r.stop()
			} else {
				r.serve()
			}
		case opFail, opExitNil, opPanic, opGoexit, opDoNotRestart:
			workerOf(arg).send(apiCmd(exitError + exitKind(op-opFail))) // error, nil, panic, Goexit, ErrDoNotRestart
		case opSelfTerminate:
			workerOf(arg).send(apiSelfTerminate)
		case opSelfRemove:
			workerOf(arg).send(apiSelfRemove)
		case opTerminateTree:
			if arg%4 == 0 { // keep the tree-wide stop rare
				workerOf(arg / 4).send(apiCmd(exitTerminateTree))
			}
		case opSleep:
			time.Sleep(time.Duration(arg+1) * 37 * time.Millisecond)
		case opHang:
			w := workerOf(arg)
			w.mu.Lock()
			w.hang = time.Duration(arg>>2%8) * 400 * time.Millisecond
			w.mu.Unlock()
		case opNested:
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
