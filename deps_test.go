package arbor

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestDeps: importing arbor links neither net/http (nor any package under
// it) nor expvar, whose init registers /debug/vars on
// http.DefaultServeMux. The HTTP handlers and the expvar publisher live in
// arborhttp.
func TestDeps(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go tool:", err)
	}
	out, err := exec.Command(gotool, "list", "-deps", "github.com/arborgo/arbor").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list -deps: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list -deps listed nothing")
	}
	for _, d := range deps {
		if d == "net/http" || strings.HasPrefix(d, "net/http/") || d == "expvar" {
			t.Errorf("arbor depends on %s", d)
		}
	}
	if deps[len(deps)-1] != "github.com/arborgo/arbor" {
		t.Errorf("go list -deps did not end with arbor itself: %q", deps[len(deps)-1])
	}
}
