package arborhttp

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/arborgo/arbor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// expvarOf decodes what an Expvar shows, rejecting unknown fields.
func expvarOf(t *testing.T, s string) (nodes map[string]json.RawMessage, total arbor.Counters) {
	t.Helper()
	var got struct {
		Nodes map[string]json.RawMessage `json:"nodes"`
		Total arbor.Counters             `json:"total"`
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&got))
	return got.Nodes, got.Total
}

// TestExpvar: the expvar publisher shows every node, with its restarts in
// the current Serve and its lifetime counters apart, and the totals.
func TestExpvar(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := arbor.New("root", arbor.WithLogger(nil))
		db := arbor.New("database", arbor.WithLogger(nil), arbor.WithBackoff(arbor.ConstantBackoff(time.Minute)))
		conn, api := newWorker(), newWorker()
		require.NoError(t, db.Add("conn", conn))
		require.NoError(t, db.Add("cache", newWorker()))
		require.NoError(t, root.Add("db", db))
		require.NoError(t, root.Add("api", api))
		v := Expvar(root)

		nodes, total := expvarOf(t, v.String())
		assert.Len(t, nodes, 5, "not serving: every node, nested supervisors' children included")
		assert.JSONEq(t, `{"kind":"supervisor","state":"stopped","restarts":0,"counters":{"starts":0,"failures":0,"restarts":0,"stuck":0}}`, string(nodes["root"]))
		assert.Zero(t, total)

		sv := serveBG(t, root)
		api.exit <- errors.New("api broke")
		synctest.Wait()
		conn.exit <- errors.New("refused")
		synctest.Wait()
		nodes, total = expvarOf(t, v.String())
		assert.Len(t, nodes, 5)
		assert.JSONEq(t, `{"kind":"worker","state":"running","restarts":1,"counters":{"starts":2,"failures":1,"restarts":1,"stuck":0}}`, string(nodes["root/api"]))
		assert.JSONEq(t, `{"kind":"worker","state":"restarting","restarts":0,"counters":{"starts":1,"failures":1,"restarts":0,"stuck":0}}`, string(nodes["root/db/conn"]))
		assert.JSONEq(t, `{"kind":"supervisor","state":"running","restarts":0,"counters":{"starts":1,"failures":0,"restarts":0,"stuck":0}}`, string(nodes["root/db"]))
		assert.Equal(t, arbor.Counters{Starts: 5, Failures: 2, Restarts: 1}, total)
		require.NoError(t, sv.stop())
	})
}

// TestExpvarRootNamedTotal: a root named "total" and the totals are apart.
func TestExpvarRootNamedTotal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := arbor.New("total", arbor.WithLogger(nil))
		w := newWorker()
		require.NoError(t, root.Add("w", w))
		sv := serveBG(t, root)
		w.exit <- errors.New("boom")
		synctest.Wait()
		nodes, total := expvarOf(t, Expvar(root).String())
		assert.Equal(t, arbor.Counters{Starts: 2, Failures: 1, Restarts: 1}, total)
		require.Contains(t, nodes, "total")
		assert.JSONEq(t, `{"kind":"supervisor","state":"running","restarts":0,"counters":{"starts":0,"failures":0,"restarts":0,"stuck":0}}`, string(nodes["total"]))
		assert.Contains(t, nodes, "total/w")
		require.NoError(t, sv.stop())
	})
}
