package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the benchmark binary if a run leaves a goroutine behind,
// ours or a peer's.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
