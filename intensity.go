package arbor

import "time"

// window enforces a restart intensity: at most max restarts within any
// period, the period's boundary included. It keeps only the restarts still
// inside the window, so each check is amortised O(1) and its memory is
// bounded by max.
type window struct {
	max    int
	period time.Duration
	times  []time.Duration // restart times, oldest first from head
	head   int
}

// allow records a restart at now and reports whether it stays within the
// intensity. A refused restart is not recorded. now never decreases.
func (w *window) allow(now time.Duration) bool {
	if w.max == 0 {
		return false
	}
	cut := now - w.period
	for w.head < len(w.times) && w.times[w.head] < cut {
		w.head++
	}
	if len(w.times)-w.head >= w.max {
		return false
	}
	if w.head > 0 && w.head >= len(w.times)/2 {
		n := copy(w.times, w.times[w.head:])
		w.times, w.head = w.times[:n], 0
	}
	w.times = append(w.times, now)
	return true
}
