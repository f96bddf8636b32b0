package arbor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDynamicAPI: Add starts at once, Terminate keeps the spec, Restart starts
// it again without counting as a restart, Remove deletes it.
func TestDynamicAPI(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithIntensity(0, time.Minute), WithLogger(nil))
		log := &eventLog{}
		a, b := newProbe("a", log), newProbe("b", log)
		require.NoError(t, s.Add("a", a))
		sv := serveBG(t, s)
		require.NoError(t, s.Add("b", b))
		synctest.Wait()
		assert.Equal(t, []string{"start a", "start b"}, log.take())
		require.ErrorIs(t, s.Add("b", b), ErrAlreadyExists)

		require.NoError(t, s.Terminate(context.Background(), "a"))
		assert.Equal(t, []string{"stop a"}, log.take(), "Terminate returns after the child returned")
		assert.Equal(t, []string{"a:stopped", "b:running"}, states(s))
		require.NoError(t, s.Terminate(context.Background(), "a"), "idempotent")
		require.ErrorIs(t, s.Terminate(context.Background(), "zz"), ErrNotFound)

		require.NoError(t, s.Restart("a")) // intensity 0: a counted restart would escalate
		synctest.Wait()
		assert.Equal(t, []string{"start a"}, log.take())
		require.ErrorIs(t, s.Restart("a"), ErrNotStopped)
		assert.Equal(t, 0, s.Children()[0].Restarts)

		require.NoError(t, s.Remove(context.Background(), "b"))
		assert.Equal(t, []string{"stop b"}, log.take())
		assert.Equal(t, []string{"a:running"}, states(s))
		require.ErrorIs(t, s.Remove(context.Background(), "b"), ErrNotFound)
		require.ErrorIs(t, s.Restart("b"), ErrNotFound)
		require.NoError(t, s.Add("b", b), "the name is free again")
		require.NoError(t, sv.stop())
	})
}

// TestTerminateTemporaryRemovesIt: a temporary child disappears when stopped.
func TestTerminateTemporaryRemovesIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil))
		require.NoError(t, s.Add("t", newProbe("t", nil), WithRestart(Temporary)))
		sv := serveBG(t, s)
		require.NoError(t, s.Terminate(context.Background(), "t"))
		assert.Empty(t, s.Children())
		require.NoError(t, sv.stop())
	})
}

// TestCallsFromInsideChild: every method can be called from a child's own
// Serve without deadlock; Terminate and Remove on oneself return at once.
func TestCallsFromInsideChild(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil))
		log := &eventLog{}
		other := newProbe("other", log)
		require.NoError(t, s.Add("other", other))
		results := make(chan error, 10)
		step := make(chan string)
		manager := WorkerFunc(func(ctx context.Context) error {
			for {
				select {
				case <-ctx.Done():
					return nil
				case what := <-step:
					switch what {
					case "children":
						results <- errors.New(strings.Join(states(s), " "))
					case "add":
						results <- s.Add("added", newProbe("added", log))
					case "terminate other":
						results <- s.Terminate(context.Background(), "other")
					case "terminate self":
						results <- s.Terminate(ctx, "manager") // recognised by its context
						<-ctx.Done()                           // Terminate cancelled our own context
						log.add("manager saw its cancellation")
						return nil
					case "remove self":
						results <- s.Remove(ctx, "manager")
						<-ctx.Done()
						log.add("manager saw its cancellation")
						return errors.New("ignored: the supervisor stopped it")
					}
				}
			}
		})
		require.NoError(t, s.Add("manager", manager, WithRestart(Transient)))
		sv := serveBG(t, s)
		log.take()

		step <- "children"
		assert.Equal(t, "other:running manager:running", (<-results).Error())
		step <- "add"
		require.NoError(t, <-results)
		step <- "terminate other"
		require.NoError(t, <-results)
		synctest.Wait()
		assert.ElementsMatch(t, []string{"start added", "stop other"}, log.take())

		step <- "terminate self"
		require.NoError(t, <-results)
		synctest.Wait()
		assert.Equal(t, []string{"manager saw its cancellation"}, log.take())
		assert.Equal(t, []string{"other:stopped", "manager:stopped", "added:running"}, states(s),
			"a self-terminated child is stopped, not failed or restarted")
		assert.Nil(t, s.Children()[1].LastError)

		require.NoError(t, s.Restart("manager"))
		synctest.Wait()
		step <- "remove self"
		require.NoError(t, <-results)
		synctest.Wait()
		assert.Equal(t, []string{"other:stopped", "added:running"}, states(s))
		require.NoError(t, sv.stop())
	})
}

// TestSelfTerminateStillBounded: a child that terminates itself but then
// ignores its cancellation is declared stuck after its timeout.
func TestSelfTerminateStillBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil))
		release := make(chan struct{})
		require.NoError(t, s.Add("w", WorkerFunc(func(ctx context.Context) error {
			_ = s.Terminate(context.Background(), "w")
			<-release
			return nil
		}), WithShutdownTimeout(time.Second)))
		sv := serveBG(t, s)
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"w:stuck"}, states(s))
		close(release)
		synctest.Wait()
		assert.Equal(t, []string{"w:stopped"}, states(s))
		require.NoError(t, sv.stop())
	})
}

// TestOfflineEdits: before Serve and after it returned, the dynamic API edits
// the specs for the next Serve.
func TestOfflineEdits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil))
		log := &eventLog{}
		require.NoError(t, s.Add("a", newProbe("a", log)))
		require.NoError(t, s.Add("b", newProbe("b", log)))
		require.NoError(t, s.Add("c", newProbe("c", log)))
		require.NoError(t, s.Terminate(context.Background(), "b"))
		require.NoError(t, s.Remove(context.Background(), "c"))
		require.ErrorIs(t, s.Remove(context.Background(), "c"), ErrNotFound)
		assert.Equal(t, []string{"a:stopped", "b:stopped"}, states(s))

		sv := serveBG(t, s)
		assert.Equal(t, []string{"start a"}, log.take(), "a terminated child stays stopped at Serve")
		require.NoError(t, sv.stop())
		log.take()

		require.NoError(t, s.Restart("b"))
		sv = serveBG(t, s)
		assert.ElementsMatch(t, []string{"start a", "start b"}, log.take(), "started in order, running concurrently")
		require.NoError(t, sv.stop())
	})
}

// TestServeAgain: specs persist, run state resets, temporary children are
// gone; a second concurrent Serve fails at once.
func TestServeAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil))
		log := &eventLog{}
		p := newProbe("p", log)
		require.NoError(t, s.Add("p", p))
		require.NoError(t, s.Add("tmp", newProbe("tmp", log), WithRestart(Temporary)))
		sv := serveBG(t, s)
		require.ErrorIs(t, s.Serve(t.Context()), ErrAlreadyServing)
		p.exit <- errors.New("boom")
		synctest.Wait()
		assert.Equal(t, 1, s.Children()[0].Restarts)
		require.NoError(t, sv.stop())
		assert.Equal(t, []string{"p:stopped"}, states(s), "temporary children are gone after Serve")
		assert.Equal(t, 1, s.Children()[0].Restarts, "run state readable after Serve")

		log.take()
		sv = serveBG(t, s)
		assert.Equal(t, []string{"start p"}, log.take())
		info := s.Children()[0]
		assert.Equal(t, 0, info.Restarts)
		assert.Nil(t, info.LastError)
		require.NoError(t, sv.stop())
	})
}

// TestServeCancelledContext: Serve with a done context starts nothing.
func TestServeCancelledContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("root", WithLogger(nil))
		p := newProbe("p", nil)
		require.NoError(t, s.Add("p", p))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		require.NoError(t, s.Serve(ctx))
		_, _, starts := p.counts()
		assert.Zero(t, starts)
	})
}

// TestEscalationThreeLevels: a failure that no level absorbs climbs from a
// worker to the root, and the root's error still reaches the worker's panic.
func TestEscalationThreeLevels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		leaf := New("leaf", WithIntensity(1, time.Minute), WithLogger(nil))
		mid := New("mid", WithIntensity(1, time.Minute), WithLogger(nil))
		root := New("root", WithIntensity(1, time.Minute), WithLogger(nil))
		starts := 0
		require.NoError(t, leaf.Add("w", WorkerFunc(func(ctx context.Context) error {
			starts++
			panic("worker broke")
		})))
		require.NoError(t, mid.Add("leaf", leaf))
		require.NoError(t, root.Add("mid", mid))

		err := root.Serve(t.Context())
		require.ErrorIs(t, err, ErrIntensityExceeded)
		var pe *PanicError
		require.ErrorAs(t, err, &pe, "the root's error reaches the worker's panic")
		assert.Equal(t, "worker broke", pe.Value)
		// leaf runs w twice per Serve (one restart allowed); mid serves leaf
		// twice per Serve; root serves mid twice.
		assert.Equal(t, 8, starts)
		assert.Equal(t, "arbor: restart intensity exceeded: root/mid/leaf (more than 1 restart in 1m0s), then root/mid (more than 1 restart in 1m0s), then root (more than 1 restart in 1m0s); last failure: root/mid/leaf/w: arbor: panic: worker broke", err.Error(),
			"the chain of escalations is formatted once, each supervisor named by its path")
		assert.Equal(t, []string{"mid:stopped"}, states(root))
	})
}

// TestNestedFailureAbsorbed: a parent with room in its intensity absorbs a
// nested supervisor's escalation by restarting it.
func TestNestedFailureAbsorbed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		leaf := New("leaf", WithIntensity(0, time.Minute), WithLogger(nil))
		root := New("root", WithLogger(nil))
		w := newProbe("w", nil)
		require.NoError(t, leaf.Add("w", w))
		require.NoError(t, root.Add("leaf", leaf))
		sv := serveBG(t, root)
		w.exit <- errors.New("boom")
		synctest.Wait()
		info := root.Children()[0]
		assert.Equal(t, Running, info.State)
		assert.Equal(t, 1, info.Restarts)
		require.ErrorIs(t, info.LastError, ErrIntensityExceeded)
		running, _, starts := w.counts()
		assert.Equal(t, 1, running)
		assert.Equal(t, 2, starts)
		require.NoError(t, sv.stop())
	})
}

// TestZeroSupervisor: a zero Supervisor is not usable, and says so without
// panicking.
func TestZeroSupervisor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s Supervisor
		require.ErrorIs(t, s.Serve(t.Context()), ErrInvalid)
		require.ErrorIs(t, s.Add("p", newProbe("p", nil)), ErrInvalid)
		require.ErrorIs(t, s.Terminate(t.Context(), "p"), ErrInvalid)
		require.ErrorIs(t, s.Remove(t.Context(), "p"), ErrInvalid)
		require.ErrorIs(t, s.Restart("p"), ErrInvalid)
		require.ErrorIs(t, s.WaitReady(t.Context()), ErrInvalid)
		assert.Empty(t, s.Children())
		assert.False(t, s.Health(t.Context()).Live)
		root := New("root")
		require.ErrorIs(t, root.Add("zero", &s), ErrInvalid)
	})
}
