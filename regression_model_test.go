package arbor

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Regression tests for engine bugs found by TestModel, each named after the
// bug it pins down (all fixed).

// newRegCtrl returns a worker steered by commands (see ctrl in model_test.go).
func newRegCtrl(name string) *ctrl { return &ctrl{name: name, cmd: make(chan wcmd)} }

// TestRegressionTerminateMarkLostToLaterGroupRestart: Terminate on a child
// that a queued group restart was going to start cancels that start ("a
// group restart queued before does not start it"). But when a second group
// restart that includes the child is queued before the first one runs, the
// first one starts the child anyway: the second clears the Terminate mark.
// Here the second group restart is then refused by the intensity, so the
// terminated child gets a copy (and a counted restart) it should never have
// had.
func TestRegressionTerminateMarkLostToLaterGroupRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil), WithStrategy(OneForAll), WithIntensity(1, time.Second))
		a, b, c, d := newRegCtrl("a"), newRegCtrl("b"), newRegCtrl("c"), newRegCtrl("d")
		for _, w := range []*ctrl{a, b, c} {
			require.NoError(t, s.Add(w.name, w, WithShutdownTimeout(time.Second)))
		}
		sv := serveBG(t, s)

		a.cmd <- wcmd{kind: cmdHang} // a ignores cancellation
		b.cmd <- wcmd{kind: cmdFail, err: errors.New("b failed")}
		synctest.Wait()
		// Group restart 1 stopped c and waits for a (up to 1s); then it will
		// start a, b and c.
		require.Equal(t, []string{"a:stopping", "b:restarting", "c:restarting"}, states(s))

		require.NoError(t, s.Terminate("b")) // cancels group restart 1's start of b
		assert.Equal(t, []string{"a:stopping", "b:stopped", "c:restarting"}, states(s))

		require.NoError(t, s.Add("d", d, WithShutdownTimeout(time.Second)))
		synctest.Wait()
		d.cmd <- wcmd{kind: cmdFail, err: errors.New("d failed")} // group restart 2, queued
		synctest.Wait()

		// a is declared stuck: group restart 1 starts its children (one
		// restart), then group restart 2 is refused (a second restart in 1s)
		// and the supervisor shuts down.
		time.Sleep(time.Second)
		err := semReturned(t, sv)
		require.ErrorIs(t, err, ErrIntensityExceeded)
		assert.Equal(t, int32(1), b.starts.Load(), "b was terminated before group restart 1 ran: it must not start")
		assert.Equal(t, 0, semInfo(t, s, "b").Restarts)

		a.cmd <- wcmd{kind: cmdRelease}
		synctest.Wait()
	})
}
