package arbor

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLogRecords: one escalation makes one record at error level, carrying
// the chain; delays are logged as readable text; attribute names are the
// documented ones. (Issue 11, point 4.)
func TestLogRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		lg := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		root := New("root", WithLogger(lg), WithBackoff(ConstantBackoff(1500*time.Millisecond)))
		mid := New("mid", WithIntensity(0, time.Minute))
		w := newProbe("w", nil)
		require.NoError(t, mid.Add("w", w))
		require.NoError(t, root.Add("mid", mid))
		sv := serveBG(t, root)
		w.exit <- errors.New("refused")
		synctest.Wait()
		require.NoError(t, sv.stop())

		var errorRecords []map[string]any
		var delays []any
		documented := map[string]bool{"time": true, "level": true, "msg": true, "supervisor": true, "child": true,
			"restarts": true, "error": true, "delay": true, "stack": true, "dropped": true}
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			var rec map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
			for k := range rec {
				assert.True(t, documented[k], "undocumented attribute %q in %s", k, line)
			}
			if rec["level"] == "ERROR" {
				errorRecords = append(errorRecords, rec)
			}
			if d, ok := rec["delay"]; ok {
				delays = append(delays, d)
			}
		}
		require.Len(t, errorRecords, 1, "one escalation, one error record")
		assert.Equal(t, "arbor: restart intensity exceeded", errorRecords[0]["msg"])
		assert.Equal(t, "root/mid", errorRecords[0]["supervisor"])
		assert.Contains(t, errorRecords[0]["error"], "root/mid (more than 0 restarts in 1m0s); last failure: root/mid/w: refused")
		assert.Equal(t, []any{"1.5s"}, delays, "a duration a person can read")
	})
}

// TestNodeStringQuotesDeceivingNames: Node.String quotes names and errors
// that are not safely printable, so a child cannot fake lines of the tree or
// reverse the text around it. (Issue 11, point 12.)
func TestNodeStringQuotesDeceivingNames(t *testing.T) {
	for _, name := range []string{"a\nb", "a\u2028b", "evil\u202egnp", "a\u0085b", "a\xffb"} {
		n := &Node{Name: name, State: Running}
		out := n.String()
		assert.Equal(t, 1, strings.Count(out, "\n"), "one line for %q", name)
		for _, r := range strings.TrimSuffix(out, "\n") {
			assert.True(t, r >= ' ' && r < 0x7f, "%q rendered as %q", name, out)
		}
	}
}
