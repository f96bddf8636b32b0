// Package gstack finds goroutines in the runtime's goroutine dumps by the
// arguments of a marker function on their stacks.
//
// Go has no goroutine identity, and reading another goroutine's stack needs a
// dump of all goroutines. A supervisor runs each child copy in a marker
// function whose arguments identify it; a traceback prints the arguments of a
// non-inlined function that keeps them live across the call below it, so the
// marker frame in a dump tells which goroutine runs which copy.
package gstack

import (
	"bytes"
	"runtime"
	"strconv"
)

// maxDump bounds the buffer used for a dump of all goroutines.
const maxDump = 64 << 20

// Frame returns the text that starts the marker function's frame in a
// traceback for the given leading arguments: "name(0xa, 0xb, ".
func Frame(function string, args ...uintptr) []byte {
	b := make([]byte, 0, len(function)+2+len(args)*20)
	b = append(b, function...)
	b = append(b, '(')
	for _, a := range args {
		b = append(b, "0x"...)
		b = strconv.AppendUint(b, uint64(a), 16)
		b = append(b, ", "...)
	}
	return b
}

// Own looks for frame on the calling goroutine's stack and returns the
// hexadecimal argument printed right after it.
func Own(frame []byte) (uint64, bool) {
	buf := make([]byte, 8<<10)
	for {
		n := runtime.Stack(buf, false)
		if n < len(buf) || len(buf) >= maxDump {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	i := bytes.Index(buf, frame)
	if i < 0 {
		return 0, false
	}
	rest := buf[i+len(frame):]
	if !bytes.HasPrefix(rest, []byte("0x")) {
		return 0, false
	}
	rest = rest[2:]
	j := bytes.IndexAny(rest, ",)")
	if j < 0 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(rest[:j]), 16, 64)
	return v, err == nil
}

// Find returns the stack of the goroutine whose stack holds frame, taken from
// a dump of all goroutines (which stops the world briefly), or nil if none
// does or the dump was too large.
func Find(frame []byte) []byte {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		if len(buf) >= maxDump {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	i := bytes.Index(buf, frame)
	if i < 0 {
		return nil
	}
	start := bytes.LastIndex(buf[:i], []byte("\n\n")) + 1 // -1+1 = 0 when first
	if start > 0 {
		start++
	}
	end := bytes.Index(buf[i:], []byte("\n\n"))
	if end < 0 {
		end = len(buf)
	} else {
		end += i
	}
	return bytes.Clone(buf[start:end])
}
