package gstack

import (
	"reflect"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

//go:noinline
func marker(a, b uintptr, f func()) {
	f()
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
}

var markerName = runtime.FuncForPC(reflect.ValueOf(marker).Pointer()).Name()

func TestFrame(t *testing.T) {
	if got := string(Frame("pkg.f", 0x2a, 0xc0)); got != "pkg.f(0x2a, 0xc0, " {
		t.Fatalf("Frame = %q", got)
	}
}

func TestOwnAndFind(t *testing.T) {
	release := make(chan struct{})
	own := make(chan uint64)
	ok := make(chan bool)
	for _, b := range []uintptr{0x11, 0x12} {
		go marker(0x77, b, func() {
			v, found := Own(Frame(markerName, 0x77))
			own <- v
			ok <- found
			<-release
		})
	}
	seen := map[uint64]bool{}
	for range 2 {
		v := <-own
		if !<-ok {
			t.Fatal("Own did not find the marker frame on its own stack")
		}
		seen[v] = true
	}
	if !seen[0x11] || !seen[0x12] {
		t.Fatalf("Own returned %v, want 0x11 and 0x12", seen)
	}
	st := string(Find(Frame(markerName, 0x77, 0x12)))
	if !strings.HasPrefix(st, "goroutine ") || !strings.Contains(st, markerName+"(0x77, 0x12, ") || strings.Contains(st, "0x11,") {
		t.Fatalf("Find returned the wrong stack:\n%s", st)
	}
	if Find(Frame(markerName, 0x78)) != nil {
		t.Fatal("Find found a frame that no goroutine has")
	}
	if _, found := Own(Frame(markerName, 0x77)); found {
		t.Fatal("Own found the marker on a stack without it")
	}
	close(release)
}
