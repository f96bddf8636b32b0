package main

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// transcript runs the program in a synctest bubble (fake time: the limits
// and backoffs take no real time) and returns what it printed. The bubble
// ends only once every goroutine the program started has returned, the hung
// attempt's included.
func transcript(t *testing.T) string {
	t.Helper()
	var out strings.Builder
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		start := time.Now()
		if err := run(ctx, &out); err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
		// The hung attempt is abandoned at 300 ms, retried 50 ms after it
		// returns: the whole run takes well under a second.
		if d := time.Since(start); d > time.Second {
			t.Errorf("run took %v of fake time", d)
		}
	})
	return out.String()
}

// TestRun checks that the transcript shows a retry, a dead letter, a crashed
// worker restarted, an abandoned attempt whose worker is replaced, and a
// clean shutdown.
func TestRun(t *testing.T) {
	out := transcript(t)
	for _, want := range []string{
		// Every job ended: seven succeeded, one was dead-lettered.
		"job 2 send email       ok: done on attempt 2\n",
		"job 4 charge card      ok: done on attempt 2\n",
		"job 5 import feed      dead-lettered: arbor: task dead-lettered after 3 attempts: feed: 404 not found\n",
		"job 6 render report    ok: done on attempt 2\n",
		// A retry after the backoff.
		"job 2 send email:\n    attempt 1 failed: smtp: 421 try again later\n    retry in 50ms\n    attempt 2 succeeded\n",
		// The dead letter, through WithDeadLetter.
		"== dead letters\njob 5 import feed: arbor: task dead-lettered after 3 attempts: feed: 404 not found (errors of its attempts: 3)\n",
		// A panic: the task is retried and the worker restarted.
		"attempt 1 failed: arbor: panic: assignment to entry in nil map\n",
		"crashed and restarted in place: 1 (arbor: panic: assignment to entry in nil map)\n",
		// A hang: abandoned with its stack, retried once it returned, and
		// a fourth worker took its slot.
		"attempt 1 abandoned at the hard limit, still running in (*conn).call\n",
		"attempt 1 failed: arbor: task attempt abandoned, then returned: arbor: task attempt exceeded its soft time limit\n",
		"started: worker-1, worker-2, worker-3, worker-4 (",
		// Every worker's connection was closed: 3 workers, 1 restart, 1
		// replacement.
		"connections opened: 5, closed: 5\n",
		"succeeded 7, failed attempts 6, retries 5, dead-lettered 1, abandoned 1\n",
		// A clean shutdown: Serve returned nil, the pool has no workers left.
		"app returned nil: a clean shutdown\napp [supervisor] stopped\n└─ jobs [supervisor] stopped\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the transcript lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("transcript:\n%s", out)
	}
}

// TestRunDeterministic: the transcript is the same from run to run, whatever
// the scheduling.
func TestRunDeterministic(t *testing.T) {
	first := transcript(t)
	for range 3 {
		if again := transcript(t); again != first {
			t.Fatalf("the transcript changed:\n%s\nthen:\n%s", first, again)
		}
	}
}
