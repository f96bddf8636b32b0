package arbor

import (
	"reflect"
	"sync"

	"github.com/arborgo/arbor/internal/gstack"
)

// Go cannot read another goroutine's stack except from a dump of all
// goroutines, which stops the world for a time that grows with their
// number. So a stuck copy's stack is found lazily: declaring a child stuck
// registers a stackRef, and the first reader of any pending stack takes one
// dump that fills every pending stackRef at once. The supervisor's loop
// never takes a dump.

// childMainName is the traceback name of childMain, whose argument
// identifies the copy a goroutine runs. (Known at compile time; written
// out so that it does not depend on childMain's own code.)
const childMainName = "github.com/arborgo/arbor.childMain"

// stackRef is the stack of one stuck copy, found when first asked for.
type stackRef struct {
	id    uintptr // the copy's *copyCtx, as childMain's argument prints it
	mu    sync.Mutex
	done  bool
	stack []byte
}

// pending holds the stackRefs not filled yet, by copy; dumpMu makes one
// dump at a time, so that readers who wait for it find their stack filled.
var (
	pendingMu sync.Mutex
	pending   = map[uintptr]*stackRef{}
	dumpMu    sync.Mutex
)

// watchStack registers the stack of cp, a copy just declared stuck, to be
// found when first asked for.
func watchStack(cp *copyCtx) *stackRef {
	r := &stackRef{id: reflect.ValueOf(cp).Pointer()}
	pendingMu.Lock()
	pending[r.id] = r
	pendingMu.Unlock()
	return r
}

// forget is called when the copy returns: its stack can no longer be found.
func (r *stackRef) forget() {
	if r == nil {
		return
	}
	pendingMu.Lock()
	if pending[r.id] == r {
		delete(pending, r.id)
	}
	pendingMu.Unlock()
	r.mu.Lock()
	r.done = true
	r.mu.Unlock()
}

// get returns the stack, taking a dump for it and every other pending one
// if it is not known yet.
func (r *stackRef) get() []byte {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	done, stack := r.done, r.stack
	r.mu.Unlock()
	if done {
		return stack
	}
	fillPending()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stack
}

// fillPending finds the stacks of every pending stackRef with one dump.
func fillPending() {
	dumpMu.Lock()
	defer dumpMu.Unlock()
	pendingMu.Lock()
	refs := pending
	if len(refs) == 0 {
		pendingMu.Unlock()
		return
	}
	pending = map[uintptr]*stackRef{}
	pendingMu.Unlock()
	want := make(map[uintptr]bool, len(refs))
	for id := range refs {
		want[id] = true
	}
	found := gstack.FindAll(childMainName, want)
	for id, r := range refs {
		r.mu.Lock()
		if !r.done {
			r.stack, r.done = found[id], true
		}
		r.mu.Unlock()
	}
}
