package gstack

import (
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

//go:noinline
func marker(id uintptr, f func()) {
	f()
	runtime.KeepAlive(id)
}

var markerName = runtime.FuncForPC(reflect.ValueOf(marker).Pointer()).Name()

func TestFindAll(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	for _, id := range []uintptr{0x11, 0x12, 0x13} {
		go marker(id, func() {
			started <- struct{}{}
			<-release
		})
	}
	for range 3 {
		<-started
	}
	before := Dumps()
	got := FindAll(markerName, map[uintptr]bool{0x11: true, 0x13: true, 0x99: true})
	close(release)
	if Dumps() != before+1 {
		t.Fatalf("FindAll took %d dumps, want 1", Dumps()-before)
	}
	if len(got) != 2 {
		t.Fatalf("FindAll found %d goroutines, want 2 (0x11 and 0x13): %v", len(got), got)
	}
	for _, id := range []uintptr{0x11, 0x13} {
		st := string(got[id])
		if !strings.HasPrefix(st, "goroutine ") || !strings.Contains(st, markerName+"(0x"+strconv.FormatUint(uint64(id), 16)) {
			t.Fatalf("FindAll returned the wrong stack for %#x:\n%s", id, st)
		}
	}
	if strings.Contains(string(got[0x11]), markerName+"(0x13") || strings.Contains(string(got[0x13]), markerName+"(0x11") {
		t.Fatal("FindAll mixed up two goroutines' stacks")
	}
}
