package errwalk

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errTarget = errors.New("target")

type cycle struct{}

func (cycle) Error() string   { return "cycle" }
func (e cycle) Unwrap() error { return e }

type panics struct{}

func (panics) Error() string   { panic("Error") }
func (panics) Is(error) bool   { panic("Is") }
func (panics) Unwrap() []error { panic("Unwrap") }

type slice []error // not comparable

func (s slice) Error() string   { return "slice" }
func (s slice) Unwrap() []error { return s }

type chain struct {
	n    int
	last error
}

func (c chain) Error() string { return "chain" }
func (c chain) Unwrap() error {
	if c.n == 0 {
		return c.last
	}
	return chain{c.n - 1, c.last}
}

func TestIs(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"itself", errTarget, true},
		{"wrapped", fmt.Errorf("a: %w", errTarget), true},
		{"joined after a cycle", errors.Join(cycle{}, errTarget), true},
		{"a cycle alone", cycle{}, false},
		{"panicking methods beside it", errors.Join(panics{}, errTarget), true},
		{"in an unhashable error", slice{errors.New("x"), errTarget}, true},
		{"within the bound", chain{Max - 2, errTarget}, true},
		{"beyond the bound", chain{Max + 10, errTarget}, false},
	}
	for _, c := range cases {
		if got := Is(c.err, errTarget); got != c.want {
			t.Errorf("%s: Is = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestFindAndMessage(t *testing.T) {
	var c cycle
	if _, ok := Find[cycle](fmt.Errorf("x: %w", errors.Join(panics{}, c))); !ok {
		t.Error("Find missed a cycle behind a panicking error")
	}
	if m := Message(panics{}); !strings.Contains(m, "Error panicked") {
		t.Errorf("Message of a panicking Error: %q", m)
	}
}
