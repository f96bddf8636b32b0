package arbor

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary if any test leaves a goroutine behind, and
// makes every test check each move of a child's lifecycle against the table
// of allowed moves. The shared test harness (the fake worker probe, served
// supervisors, logs and helpers) is in harness_test.go.
func TestMain(m *testing.M) {
	checkPhaseMoves = true
	goleak.VerifyTestMain(m)
}
