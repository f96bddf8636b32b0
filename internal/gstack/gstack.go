// Package gstack finds goroutines in the runtime's goroutine dumps by the
// first argument of a marker function on their stacks.
//
// Go has no goroutine identity, and reading another goroutine's stack needs a
// dump of all goroutines. A program runs each goroutine it wants to find in
// a marker function whose first argument identifies it; a traceback prints
// the arguments of a non-inlined function that keeps them live across the
// call below it, so the marker frame in a dump tells which goroutine is
// which.
package gstack

import (
	"bytes"
	"runtime"
	"strconv"
	"sync/atomic"
)

// maxDump bounds the buffer used for a dump of all goroutines.
const maxDump = 64 << 20

var dumps atomic.Int64

// Dumps returns how many dumps of all goroutines FindAll has taken.
func Dumps() int64 { return dumps.Load() }

// FindAll takes one dump of all goroutines (which stops the world briefly)
// and returns the stack of each goroutine that runs function with a first
// argument in want, keyed by that argument. Goroutines not found are
// absent.
func FindAll(function string, want map[uintptr]bool) map[uintptr][]byte {
	dumps.Add(1)
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) || len(buf) >= maxDump {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	found := make(map[uintptr][]byte)
	marker := []byte(function + "(0x")
	for len(buf) > 0 {
		block := buf
		if end := bytes.Index(buf, []byte("\n\n")); end >= 0 {
			block, buf = buf[:end], buf[end+2:]
		} else {
			buf = nil
		}
		i := bytes.Index(block, marker)
		if i < 0 {
			continue
		}
		rest := block[i+len(marker):]
		j := bytes.IndexAny(rest, ",)")
		if j < 0 {
			continue
		}
		v, err := strconv.ParseUint(string(rest[:j]), 16, 64)
		if err != nil || !want[uintptr(v)] {
			continue
		}
		found[uintptr(v)] = bytes.Clone(block)
	}
	return found
}
