package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the benchmark binary if a run leaves a goroutine behind,
// ours or a peer's. The goroutines already running when it starts are not
// leaks: ants starts its default pool (a purge and a clock goroutine) when
// the package is initialised, and never stops it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }
