package arbor

import (
	"encoding/json"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// treeFixture serves root{db{conn, cache}, api} with conn restarting in
// backoff after a failure, one restart of api done, and returns the probes.
func treeFixture(t *testing.T) (*Supervisor, *served, *probe) {
	root := New("root", WithLogger(nil))
	db := New("database", WithLogger(nil), WithBackoff(ConstantBackoff(time.Minute)))
	conn, cache, api := newProbe("conn", nil), newProbe("cache", nil), newProbe("api", nil)
	require.NoError(t, db.Add("conn", conn))
	require.NoError(t, db.Add("cache", cache))
	require.NoError(t, root.Add("db", db))
	require.NoError(t, root.Add("api", api))
	sv := serveBG(t, root)
	time.Sleep(time.Second)
	api.exit <- errors.New("api broke")
	synctest.Wait()
	time.Sleep(time.Second)
	conn.exit <- errors.New("refused")
	synctest.Wait()
	time.Sleep(time.Second)
	return root, sv, api
}

// TestTreeSnapshot: Tree expands nested supervisors with paths, kinds,
// states, restarts, errors, times and counters.
func TestTreeSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		root, sv, _ := treeFixture(t)
		tr := root.Tree(t.Context())
		var paths []string
		for n := range tr.All() {
			paths = append(paths, n.Path+" "+n.Kind.String()+" "+n.State.String())
		}
		assert.Equal(t, []string{
			"root supervisor running",
			"root/db supervisor running",
			"root/db/conn worker restarting",
			"root/db/cache worker running",
			"root/api worker running",
		}, paths)
		assert.Equal(t, t0, tr.Since)
		conn := tr.Children[0].Children[0]
		assert.EqualError(t, conn.LastError, "refused")
		assert.True(t, t0.Add(2*time.Second).Equal(conn.Since), "since %v", conn.Since)
		assert.Equal(t, t0.Add(2*time.Second+time.Minute), conn.NextStart)
		assert.Equal(t, Counters{Starts: 1, Failures: 1}, conn.Counters)
		api := tr.Children[1]
		assert.Equal(t, 1, api.Restarts)
		assert.Equal(t, Counters{Starts: 2, Failures: 1, Restarts: 1}, api.Counters)
		assert.True(t, t0.Add(time.Second).Equal(api.Since), "running since its restart, not %v", api.Since)
		assert.Equal(t, Counters{Starts: 5, Failures: 2, Restarts: 1}, tr.Total())

		// Stop early while walking.
		n := 0
		for range tr.All() {
			n++
			if n == 2 {
				break
			}
		}
		assert.Equal(t, 2, n)
		require.NoError(t, sv.stop())
		tr = root.Tree(t.Context())
		assert.Equal(t, Stopped, tr.State)
		require.Len(t, tr.Children[0].Children, 2, "a nested supervisor that does not run still shows its children")
		for _, c := range tr.Children[0].Children {
			assert.Equal(t, Stopped, c.State)
		}
	})
}

// TestTreeText: the pstree-like rendering.
func TestTreeText(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, sv, _ := treeFixture(t)
		assert.Equal(t, `root [supervisor] running
├─ db [supervisor] running
│  ├─ conn restarting, next start in 59s: refused
│  └─ cache running
└─ api running, 1 restart: api broke
`, root.Tree(t.Context()).String())
		require.NoError(t, sv.stop())
	})
}

// TestTreeJSON: the JSON form.
func TestTreeJSON(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, sv, _ := treeFixture(t)
		b, err := json.Marshal(root.Tree(t.Context()))
		require.NoError(t, err)
		var got struct {
			Path     string `json:"path"`
			Kind     string `json:"kind"`
			State    string `json:"state"`
			Since    string `json:"since"`
			Children []struct {
				Path     string `json:"path"`
				Children []struct {
					Path      string   `json:"path"`
					State     string   `json:"state"`
					LastError string   `json:"last_error"`
					NextStart string   `json:"next_start"`
					Counters  Counters `json:"counters"`
				} `json:"children"`
			} `json:"children"`
		}
		require.NoError(t, json.Unmarshal(b, &got))
		assert.Equal(t, "root", got.Path)
		assert.Equal(t, "supervisor", got.Kind)
		assert.Equal(t, "running", got.State)
		assert.Equal(t, "2000-01-01T00:00:00Z", got.Since)
		conn := got.Children[0].Children[0]
		assert.Equal(t, "root/db/conn", conn.Path)
		assert.Equal(t, "restarting", conn.State)
		assert.Equal(t, "refused", conn.LastError)
		assert.Equal(t, "2000-01-01T00:01:02Z", conn.NextStart)
		assert.Equal(t, uint64(1), conn.Counters.Failures)
		assert.NotContains(t, string(b), `"next_start":"0001`, "zero times are left out")
		require.NoError(t, sv.stop())
	})
}

// TestNodeJSONAsEncodingJSON: the hand-written encoder writes what
// encoding/json writes for the same fields, escapes and times included.
func TestNodeJSONAsEncodingJSON(t *testing.T) {
	type nodeJSON struct {
		Path      string     `json:"path"`
		Name      string     `json:"name"`
		Kind      string     `json:"kind"`
		State     string     `json:"state"`
		Restarts  int        `json:"restarts"`
		LastError string     `json:"last_error,omitempty"`
		Since     *time.Time `json:"since,omitempty"`
		NextStart *time.Time `json:"next_start,omitempty"`
		Counters  Counters   `json:"counters"`
		Children  []nodeJSON `json:"children,omitempty"`
	}
	var conv func(n *Node) nodeJSON
	conv = func(n *Node) nodeJSON {
		j := nodeJSON{Path: n.Path, Name: n.Name, Kind: n.Kind.String(), State: n.State.String(), Restarts: n.Restarts, Counters: n.Counters}
		if n.LastError != nil {
			j.LastError = n.LastError.Error()
		}
		if !n.Since.IsZero() {
			j.Since = &n.Since
		}
		if !n.NextStart.IsZero() {
			j.NextStart = &n.NextStart
		}
		for _, c := range n.Children {
			j.Children = append(j.Children, conv(c))
		}
		return j
	}
	at := time.Date(2026, 12, 2, 13, 4, 5, 123456789, time.FixedZone("x", 3600))
	root := &Node{Path: "root", Name: "root", Kind: KindSupervisor, State: Running, Since: at, Children: []*Node{
		{Path: "root/a", Name: "a", State: Restarting, Restarts: 3, LastError: errors.New(`bad "quote" <tag> & \ back`), NextStart: at.Add(time.Second),
			Counters: Counters{Starts: 4, Failures: 3, Restarts: 3, Stuck: 1}},
		{Path: "root/b\n\u2028é\xff", Name: "b\n\u2028é\xff", State: Stuck, LastError: errors.New("\x00ctl")},
		{Path: "root/sub", Name: "sub", Kind: KindSupervisor, State: Stopped, Children: []*Node{{Path: "root/sub/c", Name: "c"}}},
	}}
	got, err := json.Marshal(root)
	require.NoError(t, err)
	want, err := json.Marshal(conv(root))
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
}
