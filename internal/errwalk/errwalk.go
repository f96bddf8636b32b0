// Package errwalk looks into error values that are not trusted: a worker's
// or a handler's error is user code, whose Error, Is, As and Unwrap methods
// may panic, block or return cycles. A walk recovers panics, does not follow
// a cycle, and gives up after Max errors.
package errwalk

import (
	"fmt"
	"reflect"
)

// Max bounds a walk through an error's chain or tree.
const Max = 1000

// Is reports whether target is in err's tree, as errors.Is does, for
// untrusted errors.
func Is(err, target error) bool {
	return err != nil && Walk(err, func(e error) bool { return Matches(e, target) })
}

// A walk through an untrusted error's tree visits it breadth first, so that
// a long chain or a cycle in one branch does not hide another; a method that
// panics counts as no match (or as wrapping nothing) for that error only.

// Matches reports whether e itself is target or says it is, as errors.Is
// asks each error of a tree.
func Matches(e, target error) bool {
	if reflect.TypeOf(e).Comparable() && e == target {
		return true
	}
	x, ok := e.(interface{ Is(error) bool })
	return ok && x.Is(target)
}

// Find returns the first error in err's tree of type E, as errors.As
// does, for untrusted errors.
func Find[E error](err error) (found E, ok bool) {
	ok = Walk(err, func(e error) bool {
		found, ok = e.(E)
		return ok
	})
	return found, ok
}

// Walk visits err and what it wraps, breadth first, until visit returns
// true or Max errors were visited; it queues at most Max
// errors. Errors already visited (by identity, where comparable) are not
// visited again and do not count.
func Walk(err error, visit func(error) bool) bool {
	var buf [4]error
	queue := append(buf[:0], err)
	visited := 0
	for i := 0; i < len(queue) && visited < Max; i++ {
		e := queue[i]
		if e == nil || seenBefore(queue[:i], e) {
			continue
		}
		visited++
		if safeVisit(visit, e) {
			return true
		}
		for _, u := range safeUnwrap(e) {
			if len(queue) >= Max { // the walk ends before it reaches more
				break
			}
			if u != nil && !seenBefore(queue, u) {
				queue = append(queue, u)
			}
		}
	}
	return false
}

// seenBefore reports whether e is one of the errors before it, by identity
// where its type is comparable. A comparison that panics counts as unseen.
func seenBefore(before []error, e error) (seen bool) {
	defer func() {
		if recover() != nil {
			seen = false
		}
	}()
	if !reflect.TypeOf(e).Comparable() {
		return false
	}
	for _, x := range before {
		if x == e {
			return true
		}
	}
	return false
}

// safeVisit calls visit(e), taking a panic for false.
func safeVisit(visit func(error) bool, e error) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return visit(e)
}

// safeUnwrap returns what e wraps, nothing if its Unwrap panics.
func safeUnwrap(e error) (out []error) {
	defer func() {
		if recover() != nil {
			out = nil
		}
	}()
	switch x := e.(type) {
	case interface{ Unwrap() error }:
		return []error{x.Unwrap()}
	case interface{ Unwrap() []error }:
		return x.Unwrap()
	}
	return nil
}

// Message returns err.Error(), or a note saying it panicked.
func Message(err error) (msg string) {
	defer func() {
		if v := recover(); v != nil {
			msg = fmt.Sprintf("%T (Error panicked: %v)", err, v)
		}
	}()
	return err.Error()
}
