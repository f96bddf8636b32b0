package arbor

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"
)

// Supervisor runs a set of children and restarts them by its strategy within
// its restart intensity. Create one with New: the zero Supervisor is not
// usable (its methods return an error matching ErrInvalid). Its methods are
// safe to call from any goroutine, including from inside its children. A
// *Supervisor is a Worker, so supervisors nest into trees; a Supervisor
// belongs to at most one tree at a time.
type Supervisor struct {
	name string
	cfg  config

	mu      sync.Mutex
	serving bool          // a Serve owns the children; guarded by mu
	inbox   []message     // exits and requests for the loop; guarded by mu
	wake    chan struct{} // size 1: a doorbell that coalesces posts to inbox

	// The children in start order, indexed by name, and the count of them
	// per State. The loop goroutine owns them while the supervisor serves;
	// mu guards them otherwise.
	head, tail *child
	byName     map[string]*child
	ords       uint64                 // the last child's position in start order
	serves     uint32                 // counts Serve calls that served
	n          [Starting + 1]int      // children per State
	nExempt    [Starting + 1]int      // of those, children exempt from readiness
	specs      map[specKey]*childSpec // specs shared by children added with the same plain options; guarded by mu
	rejected   map[string]error       // Add calls refused as invalid while not serving, by name; guarded by mu

	owner *Supervisor // the supervisor s is a child of, or nil; guarded by treeMu

	loop loop // the serving goroutine's own state, reset by each Serve
}

// treeMu guards every Supervisor's owner: Add and Remove of nested
// supervisors, which are rare, check it for cycles and second parents.
var treeMu sync.Mutex

// New returns a supervisor with the given name and options. It never fails: a
// bad option makes Serve (and Add, for a nested supervisor) return an error
// matching ErrInvalid before any child starts. The name must be non-empty
// and free of '/', so that paths in a tree are unambiguous; any other
// character is allowed (in child names too), and text meant for people
// (Node.String, the probes, the live view) quotes what is not safely
// printable.
func New(name string, opts ...Option) *Supervisor {
	return &Supervisor{
		name:   name,
		cfg:    newConfig(name, opts),
		wake:   make(chan struct{}, 1),
		byName: make(map[string]*child),
		specs:  make(map[specKey]*childSpec),
	}
}

// maxSharedSpecs bounds how many distinct specs a supervisor keeps for
// sharing.
const maxSharedSpecs = 64

// specKey is what tells apart the specs of children whose options are plain
// values: no restart predicate, and the supervisor's own backoff.
type specKey struct {
	restart                                      RestartPolicy
	timeout, resetAfter, startTimeout, heartbeat time.Duration
	significant, readiness, exempt               bool
}

// shared returns a read-only spec equal to spec that other children share,
// so that a pool of children added with the same options costs one spec; a
// spec of its own if it holds a restart predicate or a backoff of its own.
func (s *Supervisor) shared(spec childSpec) *childSpec {
	sp := &spec
	if spec.restartIf != nil || spec.backoffSet {
		return sp
	}
	k := specKey{spec.restart, spec.timeout, spec.resetAfter, spec.startTimeout, spec.heartbeat, spec.significant, spec.readiness, spec.exempt}
	s.mu.Lock()
	defer s.mu.Unlock()
	if x := s.specs[k]; x != nil {
		return x
	}
	if len(s.specs) < maxSharedSpecs { // a bound, since specs outlive children
		s.specs[k] = sp
	}
	return sp
}

// errZero is what the methods of a Supervisor not made by New return.
var errZero = invalidf("Supervisor not created with New")

// Add adds a child named name that runs w. While the supervisor serves, the
// child starts at once, after every child added before it; otherwise it
// starts when Serve does. Add returns an error matching ErrAlreadyExists if
// the name is taken, and one matching ErrInvalid for an empty name, a name
// with '/', a nil worker, a bad option, a *Supervisor whose own options are
// bad, one that already has a parent, or one that would make a cycle.
// Add waits only for the supervisor's own goroutine, never for a child.
//
// An Add refused as invalid while the supervisor does not serve (before
// Serve, say, in code whose errors go unchecked) also makes the next Serve
// fail with that error, unless a later Add of the same name succeeded: a
// mistake in the code that builds a tree is never silently dropped. That
// Serve reports it once; the Serve after it runs.
func (s *Supervisor) Add(name string, w Worker, opts ...ChildOption) error {
	if s.byName == nil {
		return errZero
	}
	err := s.add(name, w, opts)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		delete(s.rejected, name)
	case !s.serving && errors.Is(err, ErrInvalid):
		if s.rejected == nil {
			s.rejected = make(map[string]error)
		}
		if _, seen := s.rejected[name]; !seen {
			s.rejected[name] = err
		}
	}
	return err
}

func (s *Supervisor) add(name string, w Worker, opts []ChildOption) error {
	if err := checkName(name); err != nil {
		return err
	}
	if isNil(w) {
		return invalidf("nil worker for child %q", name)
	}
	var spec childSpec
	for _, o := range opts {
		if o == nil {
			return invalidf("nil ChildOption for child %q", name)
		}
		o.applyChild(&spec)
	}
	if spec.err != nil {
		return within(fmt.Sprintf("child %q", name), spec.err)
	}
	sub, err := nestedOf(name, w)
	if err != nil {
		return err
	}
	nested := sub != nil
	if !spec.timeoutSet {
		spec.timeout = timeoutFor(sub)
	}
	if !spec.backoffSet {
		spec.backoff = s.cfg.backoff
	}
	if !spec.resetSet {
		spec.resetAfter = s.cfg.resetAfter
	}
	if nested && spec.heartbeat > 0 {
		return invalidf("child %q is a supervisor and cannot take a heartbeat", name)
	}
	if spec.significant {
		switch {
		case s.cfg.autoShutdown == noAutoShutdown:
			return invalidf("child %q is significant but supervisor %q has no auto shutdown", name, s.name)
		case spec.restart == Permanent:
			return invalidf("child %q is significant and permanent", name)
		}
	}
	sp := s.shared(spec)
	if nested {
		if sub.byName == nil {
			return within(fmt.Sprintf("child %q", name), errZero)
		}
		if err := sub.cfg.err; err != nil {
			return within(fmt.Sprintf("child %q: supervisor %q", name, sub.name), err)
		}
	}
	c := &child{name: name, worker: w, sub: sub, childSpec: sp, slot: -1, tracks: spec.readiness || nested}
	_, err = s.call(context.Background(), &request{kind: reqAdd, name: name, c: c})
	return err
}

// Nested is implemented by a Worker whose Serve serves a Supervisor of its
// own, with the context Serve was given or one derived from it, such as
// package pool's Pool. A supervisor treats a child whose worker is Nested as
// it treats a child whose worker is a *Supervisor: the nested supervisor is
// part of its tree (Tree, Health, WaitReady, events and stuck children), the
// child takes no heartbeat, its default shutdown timeout is no limit, and
// the nested supervisor can have no other parent. Add calls Supervisor once;
// it must return a supervisor made by New.
type Nested interface {
	Worker
	Supervisor() *Supervisor
}

// nestedOf returns the supervisor w, the worker of the child named name, is
// or serves, or nil. A Supervisor method that panics is bad input.
func nestedOf(name string, w Worker) (sub *Supervisor, err error) {
	switch w := w.(type) {
	case *Supervisor:
		return w, nil
	case Nested:
		defer func() {
			if r := recover(); r != nil {
				sub, err = nil, invalidf("child %q: Supervisor panicked: %v", name, r)
			}
		}()
		sub = w.Supervisor()
		if sub == nil {
			return nil, invalidf("child %q: Supervisor returned nil", name)
		}
		return sub, nil
	}
	return nil, nil
}

// adopt makes s the owner of sub, the worker of a child named name, or says
// why it cannot be: sub already has a parent, or is s or one of its
// ancestors.
func (s *Supervisor) adopt(name string, sub *Supervisor) error {
	treeMu.Lock()
	defer treeMu.Unlock()
	for a := s; a != nil; a = a.owner {
		if a == sub {
			return invalidf("child %q: supervisor %q would supervise itself", name, sub.name)
		}
	}
	if sub.owner != nil {
		return invalidf("child %q: supervisor %q already has a parent, %q", name, sub.name, sub.owner.name)
	}
	sub.owner = s
	return nil
}

// release undoes adopt, once the child running sub is gone.
func (s *Supervisor) release(sub *Supervisor) {
	treeMu.Lock()
	if sub.owner == s {
		sub.owner = nil
	}
	treeMu.Unlock()
}

// Terminate stops the named child and keeps it Stopped, also across Serve
// calls, until Restart or a group restart starts it again (OTP's
// terminate_child). It cancels the child's context and waits until the
// child has returned (then it returns nil, or the stuck errors of a nested
// supervisor's children that outlived it), has been declared stuck (its
// *StuckError), or ctx is done (context.Cause(ctx); the child is stopped all the
// same). A pending restart of the child is cancelled. A temporary child is
// removed when it stops.
//
// A child may pass its own context, or one derived from it: Terminate then
// recognises a call on the caller itself, or on a nested supervisor the
// caller runs under, which could not wait for its own return; it cancels the
// child and returns nil at once, and the child is Stopped when it returns.
// Before Serve and after it returned, Terminate marks the child so that
// Serve leaves it Stopped.
func (s *Supervisor) Terminate(ctx context.Context, name string) error {
	_, err := s.call(ctx, &request{kind: reqTerminate, name: name, self: callerCopy(ctx, s)})
	return err
}

// Restart starts the named child if it is Stopped (OTP's restart_child) and
// clears the mark Terminate left. It returns an error matching
// ErrNotStopped if the child is starting, running, restarting, stopping or
// stuck, and ErrNotFound if there is no such child. Starts by Restart do not
// count against the restart intensity. Before Serve, after it returned or
// while it shuts down, Restart only clears the mark, for the next Serve.
func (s *Supervisor) Restart(name string) error {
	_, err := s.call(context.Background(), &request{kind: reqRestart, name: name})
	return err
}

// Remove stops the named child as Terminate does, then deletes it; its name
// is free again once it is deleted. If the child is stuck, or becomes stuck
// while Remove waits, Remove returns its *StuckError, and the child is
// deleted when its copy returns: until then its name stays taken, so that no
// second copy can run.
func (s *Supervisor) Remove(ctx context.Context, name string) error {
	_, err := s.call(ctx, &request{kind: reqRemove, name: name, self: callerCopy(ctx, s)})
	return err
}

// Children returns a description of every child in start order.
func (s *Supervisor) Children() []ChildInfo {
	a, _ := s.call(context.Background(), &request{kind: reqChildren})
	return a.infos
}

// isNil reports whether w is nil or holds a nil pointer or func.
func isNil(w Worker) bool {
	if w == nil {
		return true
	}
	switch v := reflect.ValueOf(w); v.Kind() {
	case reflect.Pointer, reflect.Func:
		return v.IsNil()
	}
	return false
}
