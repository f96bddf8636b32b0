package arbor

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Counters count what happened to a child over its supervisor's whole life,
// across Serve calls (unlike ChildInfo.Restarts, which counts the current
// Serve only).
type Counters struct {
	// Starts counts copies started, restarts included.
	Starts uint64 `json:"starts"`
	// Failures counts exits that were failures: errors, panics, Goexit,
	// start timeouts and missed heartbeats.
	Failures uint64 `json:"failures"`
	// Restarts counts starts by the supervisor after an exit or in a group
	// restart.
	Restarts uint64 `json:"restarts"`
	// Stuck counts the times the child was declared stuck.
	Stuck uint64 `json:"stuck"`
}

func (c *Counters) add(o Counters) {
	c.Starts += o.Starts
	c.Failures += o.Failures
	c.Restarts += o.Restarts
	c.Stuck += o.Stuck
}

// NodeKind tells a supervisor from a worker in a Tree.
type NodeKind int

const (
	// KindWorker is a child that is not a *Supervisor.
	KindWorker NodeKind = iota
	// KindSupervisor is a supervisor: the root, or a nested *Supervisor.
	KindSupervisor
)

// String returns "worker" or "supervisor".
func (k NodeKind) String() string {
	switch k {
	case KindWorker:
		return "worker"
	case KindSupervisor:
		return "supervisor"
	}
	return "NodeKind(" + strconv.Itoa(int(k)) + ")"
}

// Node is one supervisor or child in a snapshot of a tree (see
// Supervisor.Tree).
type Node struct {
	// Path names the node: the root's name, then child names joined with
	// '/', such as "root/db/pool".
	Path string
	// Name is the last element of Path.
	Name string
	// Kind says whether the node is a supervisor.
	Kind NodeKind
	// State is the node's state. A serving root is Running (Stopping while
	// it shuts down), one that does not serve is Stopped; a nested
	// supervisor has the state its parent sees.
	State State
	// Restarts counts the restarts in the current (or last) Serve, as
	// ChildInfo.Restarts; zero for the root.
	Restarts int
	// LastError is the node's last failure, as ChildInfo.LastError; for a
	// supervisor that shuts down because it failed, why.
	LastError error
	// Since is when the node entered its state: for a running node, when it
	// started running. Zero if it never changed state.
	Since time.Time
	// NextStart is when a node waiting in backoff starts again, or zero.
	NextStart time.Time
	// Counters count the node's starts, failures, restarts and stuck
	// episodes over its supervisor's life; zero for the root. Use Total for
	// a subtree's sums.
	Counters Counters
	// Children are a supervisor's children in start order, also when it
	// does not serve (they are Stopped then, or Stuck); nil for a worker.
	Children []*Node

	sup    *supSnap // a supervisor's own answer; nil for a worker
	exempt bool     // left out of the tree's readiness (WithReadinessExempt)
}

// Tree returns a snapshot of the tree under s: s itself, its children, and
// those of every nested supervisor, each supervisor asked in turn from the
// calling goroutine. If ctx ends before a supervisor answers, that
// supervisor's node has no children and its LastError is ctx's error. Health
// and Children derive from the same snapshots.
func (s *Supervisor) Tree(ctx context.Context) *Node {
	root := &Node{Path: s.name, Name: s.name, Kind: KindSupervisor}
	s.tree(ctx, root, true)
	return root
}

// tree fills in n, the node of s, and its children; the root's own state
// too.
func (s *Supervisor) tree(ctx context.Context, n *Node, root bool) {
	a, err := s.call(ctx, &request{kind: reqSnap, ctx: ctx})
	if err != nil {
		n.sup = &supSnap{noAnswer: err}
		if root {
			n.LastError = err
		}
		return
	}
	sn := a.snap
	n.sup = sn
	if root {
		switch {
		case sn.shutting:
			n.State = Stopping
		case sn.serving:
			n.State = Running
		}
		n.Since = sn.since
		n.LastError = sn.reason
	}
	n.Children = make([]*Node, 0, len(sn.children))
	for _, c := range sn.children {
		ch := &Node{
			Path:      n.Path + "/" + c.info.Name,
			Name:      c.info.Name,
			State:     c.info.State,
			Restarts:  c.info.Restarts,
			LastError: c.info.LastError,
			Since:     c.since,
			NextStart: c.info.NextStart,
			Counters:  c.count,
			exempt:    c.exempt,
		}
		if c.sub != nil {
			ch.Kind = KindSupervisor
			c.sub.tree(ctx, ch, false)
		}
		n.Children = append(n.Children, ch)
	}
}

// supSnap is what one supervisor reports about itself.
type supSnap struct {
	serving  bool
	shutting bool
	reason   error
	since    time.Time // when the current Serve started
	children []childSnap
	orphans  []error // stuck children of nested supervisors removed meanwhile
	noAnswer error   // why it gave no answer: the caller's ctx ended
}

type childSnap struct {
	exempt bool
	info   ChildInfo
	since  time.Time
	count  Counters
	sub    *Supervisor // a nested supervisor, or nil
}

// snapshots counts the snapshots supervisors have taken, for tests.
var snapshots atomic.Int64

// snapNow describes the supervisor, on its loop or under mu. The snapshot is
// read-only once made: requests in one batch share it.
func (s *Supervisor) snapNow() *supSnap {
	snapshots.Add(1)
	h := &supSnap{serving: s.serving}
	if s.serving {
		h.shutting, h.reason, h.since = s.loop.shutting, s.loop.reason, s.loop.started
		h.orphans = s.orphanLeftovers()
	}
	h.children = make([]childSnap, 0, len(s.byName))
	for c := s.head; c != nil; c = c.next {
		ch := childSnap{info: c.info(), count: c.count, exempt: c.exempt}
		if c.since != 0 {
			ch.since = time.Unix(0, c.since)
		}
		ch.sub = c.sub
		h.children = append(h.children, ch)
	}
	return h
}

// All yields n and every node below it, depth first: each node before its
// children, children in start order.
func (n *Node) All() iter.Seq[*Node] {
	return func(yield func(*Node) bool) { n.walk(yield) }
}

func (n *Node) walk(yield func(*Node) bool) bool {
	if !yield(n) {
		return false
	}
	for _, c := range n.Children {
		if !c.walk(yield) {
			return false
		}
	}
	return true
}

// Total returns the sums of the counters of n and every node below it.
func (n *Node) Total() Counters {
	var t Counters
	for x := range n.All() {
		t.add(x.Counters)
	}
	return t
}

// String renders the tree under n as text, one node per line, like pstree:
//
//	root [supervisor] running
//	├─ db [supervisor] running
//	│  ├─ conn restarting, 3 restarts, next start in 2s: connection refused
//	│  └─ cache running
//	└─ api running
//
// Durations are measured from the time String is called.
func (n *Node) String() string {
	var b strings.Builder
	n.render(&b, "", "", time.Now())
	return b.String()
}

func (n *Node) render(b *strings.Builder, first, rest string, now time.Time) {
	b.WriteString(first)
	b.WriteString(printable(n.Name))
	if n.Kind == KindSupervisor {
		b.WriteString(" [supervisor]")
	}
	b.WriteString(" " + n.State.String())
	if n.Restarts > 0 {
		fmt.Fprintf(b, ", %d restart%s", n.Restarts, plural(n.Restarts))
	}
	if !n.NextStart.IsZero() {
		fmt.Fprintf(b, ", next start in %v", n.NextStart.Sub(now).Round(time.Millisecond))
	}
	if n.LastError != nil {
		b.WriteString(": " + printable(safeMessage(n.LastError)))
	}
	b.WriteByte('\n')
	for i, c := range n.Children {
		if i == len(n.Children)-1 {
			c.render(b, rest+"└─ ", rest+"   ", now)
		} else {
			c.render(b, rest+"├─ ", rest+"│  ", now)
		}
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// MarshalJSON renders the node and its children as JSON: kind and state as
// strings ("supervisor", "running"), the last error as its message, times in
// RFC 3339 and left out when zero:
//
//	{"path":"root/db","name":"db","kind":"supervisor","state":"running","restarts":0,
//	 "since":"...","counters":{"starts":1,"failures":0,"restarts":0,"stuck":0},"children":[...]}
//
// The whole tree is written into one buffer, so that its cost stays close to
// the size of the answer.
func (n *Node) MarshalJSON() ([]byte, error) {
	nodes := 0
	for range n.All() {
		nodes++
	}
	return n.appendJSON(make([]byte, 0, 200*nodes)), nil // about a node's size: few regrowths
}

func (n *Node) appendJSON(b []byte) []byte {
	b = append(b, `{"path":`...)
	b = appendJSONString(b, n.Path)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, n.Name)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, n.Kind.String())
	b = append(b, `,"state":`...)
	b = appendJSONString(b, n.State.String())
	b = append(b, `,"restarts":`...)
	b = strconv.AppendInt(b, int64(n.Restarts), 10)
	if n.LastError != nil {
		b = append(b, `,"last_error":`...)
		b = appendJSONString(b, safeMessage(n.LastError))
	}
	if !n.Since.IsZero() {
		b = append(b, `,"since":`...)
		b = appendJSONTime(b, n.Since)
	}
	if !n.NextStart.IsZero() {
		b = append(b, `,"next_start":`...)
		b = appendJSONTime(b, n.NextStart)
	}
	c := n.Counters
	b = append(b, `,"counters":{"starts":`...)
	b = strconv.AppendUint(b, c.Starts, 10)
	b = append(b, `,"failures":`...)
	b = strconv.AppendUint(b, c.Failures, 10)
	b = append(b, `,"restarts":`...)
	b = strconv.AppendUint(b, c.Restarts, 10)
	b = append(b, `,"stuck":`...)
	b = strconv.AppendUint(b, c.Stuck, 10)
	b = append(b, '}')
	if len(n.Children) > 0 {
		b = append(b, `,"children":[`...)
		for i, ch := range n.Children {
			if i > 0 {
				b = append(b, ',')
			}
			b = ch.appendJSON(b)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // the rare string that needs escaping
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONTime appends t as encoding/json writes a time.Time.
func appendJSONTime(b []byte, t time.Time) []byte {
	q, err := t.MarshalJSON()
	if err != nil { // a year outside [0, 9999]
		return append(b, `null`...)
	}
	return append(b, q...)
}
