package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
)

func TestPlainCreate(t *testing.T) {
	for body, want := range map[string]bool{
		``: true, `{}`: true, ` {"keepAlive":true,"timeout":60,"userMetadata":{"a":1}} `: true,
		`{"projectId":"x","region":"us-west-2"}`:         true,
		`{"browserSettings":{"viewport":{"width":800}}}`: false, `{"extensionId":"x"}`: false,
		`{"proxies":true}`: false, `[1]`: false, `{`: false,
	} {
		if got := plainCreate([]byte(body)); got != want {
			t.Errorf("plainCreate(%s) = %v; want %v", body, got, want)
		}
	}
}

func TestCandidates(t *testing.T) {
	const nodeC = "9c9c9c9c-0000-4000-8000-00000000000c"
	m := &staticMembers{self: nodeB, nodes: map[string]bb.Node{}}
	f := NewForwarder(ForwarderConfig{Members: m}, nil)
	ids := func(plain bool) []string {
		var out []string
		for _, c := range f.candidates(plain) {
			out = append(out, c.id[:2])
		}
		return out
	}
	m.set(bb.Node{ID: nodeA, URL: "http://10.0.0.1:8080", State: bb.NodeActive, Live: 1, Capacity: 4})
	m.set(bb.Node{ID: nodeB, URL: "http://10.0.0.2:8080", State: bb.NodeActive, Live: 1, Capacity: 4})
	m.set(bb.Node{ID: nodeC, URL: "http://10.0.0.3:8080", State: bb.NodeActive, Live: 2, Capacity: 4, Warm: []string{""}})
	if got := ids(false); !slices.Equal(got, []string{"5f", "0b", "9c"}) {
		t.Errorf("not plain: %v; want least loaded, self winning the tie with A", got)
	}
	if got := ids(true); !slices.Equal(got, []string{"9c", "5f", "0b"}) {
		t.Errorf("plain: %v; want the warm node first", got)
	}
	m.set(bb.Node{ID: nodeC, URL: "http://10.0.0.3:8080", State: bb.NodeDraining, Live: 0, Capacity: 4, Warm: []string{""}})
	m.set(bb.Node{ID: nodeA, URL: "http://10.0.0.1:8080", State: bb.NodeActive, Live: 4, Capacity: 4})
	if got := ids(true); !slices.Equal(got, []string{"5f"}) {
		t.Errorf("draining C, full A: %v; want B only", got)
	}
	m.set(bb.Node{ID: nodeB, URL: "http://10.0.0.2:8080", State: bb.NodeActive, Live: 4, Capacity: 4})
	if got := ids(true); len(got) != 0 {
		t.Errorf("every node full: %v; want none (this node answers its 429)", got)
	}
	m.set(bb.Node{ID: nodeA, URL: "http://10.0.0.1:8080", State: bb.NodeActive, Live: 0, Capacity: 4})
	m.set(bb.Node{ID: nodeB, URL: "http://10.0.0.2:8080", State: bb.NodeActive, Live: 0, Capacity: 4})
	f.cfg.Members = unplaceable{m}
	if got := ids(true); !slices.Equal(got, []string{"0b"}) {
		t.Errorf("this node not placeable (fenced or draining): %v; want A only", got)
	}
	m = &staticMembers{self: nodeB, nodes: map[string]bb.Node{}}
	f = NewForwarder(ForwarderConfig{Members: m}, nil)
	if got := ids(true); !slices.Equal(got, []string{"5f"}) {
		t.Errorf("not joined yet: %v; want this node", got)
	}
}

// TestCandidatesCountPlacements: creates placed since a node's heartbeat count in its
// load and take its warm browser, so that a burst spreads over equally loaded nodes
// instead of going where the 2-second-old view says; a newer heartbeat resets the count.
func TestCandidatesCountPlacements(t *testing.T) {
	const nodeC = "9c9c9c9c-0000-4000-8000-00000000000c"
	hb := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	m := &staticMembers{self: nodeB, nodes: map[string]bb.Node{}}
	for i, id := range []string{nodeA, nodeB, nodeC} {
		m.set(bb.Node{ID: id, URL: fmt.Sprintf("http://10.0.0.%d:8080", i+1), State: bb.NodeActive, Capacity: 4,
			Warm: []string{""}, HeartbeatAt: hb})
	}
	f := NewForwarder(ForwarderConfig{Members: m}, nil)
	var got []string
	for range 6 {
		c := f.candidates(true)[0]
		got = append(got, c.id[:2])
		f.notePlaced(c)
	}
	if want := []string{"5f", "0b", "9c", "5f", "0b", "9c"}; !slices.Equal(got, want) {
		t.Errorf("a burst of 6 on three idle warm nodes went to %v; want %v", got, want)
	}
	n := m.nodes[nodeA]
	n.HeartbeatAt, n.Live = hb.Add(2*time.Second), 2 // A's heartbeat counts its 2
	m.set(n)
	if c := f.candidates(true); c[0].id != nodeA || c[0].live != 2 || !c[0].warm {
		t.Errorf("after A's heartbeat: first %s live %d warm %v; want A (warm again, 2 live, counted once)", c[0].id[:2], c[0].live, c[0].warm)
	}
}

// unplaceable is a members view whose node takes no new sessions.
type unplaceable struct{ *staticMembers }

func (unplaceable) Placeable() bool { return false }

// post sends a create to base and returns the status, headers and body.
func post(t *testing.T, base, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", base+"/v1/sessions", strings.NewReader(body))
	req.Header.Set("X-BB-API-Key", "bb_key")
	req.Header.Set(PlacedHeader, "1") // a client's: dropped
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// full answers as a node at capacity does (httpapi: bb.ErrNodeFull).
func full(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(NodeFullHeader, "1")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTooManyRequests)
	io.WriteString(w, `{"statusCode":429,"code":429,"error":"Too Many Requests","message":"This browserd node is at capacity (1 sessions)."}`)
}

func TestPlace(t *testing.T) {
	body := `{"keepAlive":true,"userMetadata":{"n":"` + strings.Repeat("x", 4000) + `"}}`
	t.Run("on the less loaded peer", func(t *testing.T) {
		a, b := cluster2(t)
		b.members.set(b.node(3, 10))
		resp, out := post(t, b.srv.URL, body)
		var s seen
		json.Unmarshal([]byte(out), &s)
		if resp.StatusCode != 200 || s.Node != nodeA || s.Body != body || s.Placed != "1" || s.Hop == "" {
			t.Fatalf("create via B = %d %+v; want placed on A with the whole body, hop and placed headers", resp.StatusCode, s)
		}
		if len(b.requests()) != 0 {
			t.Errorf("B served it too")
		}
		_ = a
	})
	t.Run("self wins a tie, and a client's placed header is dropped", func(t *testing.T) {
		_, b := cluster2(t)
		_, out := post(t, b.srv.URL, body)
		var s seen
		json.Unmarshal([]byte(out), &s)
		if s.Node != nodeB || s.Placed != "" || s.Hop != "" || s.Body != body {
			t.Errorf("create at B (tie) = %+v; want served by B itself, no cluster headers", s)
		}
	})
	t.Run("a full peer: the next", func(t *testing.T) {
		a, b := cluster2(t)
		b.members.set(b.node(3, 10))
		a.setHandler(full)
		resp, out := post(t, b.srv.URL, body)
		var s seen
		json.Unmarshal([]byte(out), &s)
		if resp.StatusCode != 200 || s.Node != nodeB || s.Body != body {
			t.Errorf("A full: %d %+v; want B", resp.StatusCode, s)
		}
		if len(a.requests()) != 1 {
			t.Errorf("A got %d creates; want 1", len(a.requests()))
		}
	})
	t.Run("self full: the peer", func(t *testing.T) {
		a, b := cluster2(t)
		b.setHandler(full)
		resp, out := post(t, b.srv.URL, body)
		var s seen
		json.Unmarshal([]byte(out), &s)
		if resp.StatusCode != 200 || s.Node != nodeA || resp.Header.Get(NodeFullHeader) != "" {
			t.Errorf("B full: %d %+v %v; want A, and none of B's node-full headers", resp.StatusCode, s, resp.Header)
		}
		_ = a
	})
	t.Run("all full: the single node's 429", func(t *testing.T) {
		a, b := cluster2(t)
		a.setHandler(full)
		b.setHandler(full)
		resp, out := post(t, b.srv.URL, body)
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(out, "at capacity") {
			t.Errorf("all full = %d %s; want 429 at capacity", resp.StatusCode, out)
		}
		if len(a.requests()) != 1 || len(b.requests()) != 1 {
			t.Errorf("tries: A %d, B %d; want one each", len(a.requests()), len(b.requests()))
		}
	})
	t.Run("the project's 429 is final", func(t *testing.T) {
		a, b := cluster2(t)
		b.members.set(b.node(3, 10))
		a.setHandler(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"statusCode":429,"message":"project concurrency"}`)
		})
		resp, out := post(t, b.srv.URL, body)
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(out, "project") || len(b.requests()) != 0 {
			t.Errorf("project limit at A = %d %s, B tried %d; want A's 429 and no other try", resp.StatusCode, out, len(b.requests()))
		}
	})
	t.Run("a peer down: the next", func(t *testing.T) {
		a, b := cluster2(t)
		b.members.set(b.node(3, 10))
		a.srv.Close()
		resp, out := post(t, b.srv.URL, body)
		var s seen
		json.Unmarshal([]byte(out), &s)
		if resp.StatusCode != 200 || s.Node != nodeB {
			t.Errorf("A down: %d %+v; want B", resp.StatusCode, s)
		}
	})
	t.Run("a body over the limit is refused here", func(t *testing.T) {
		_, b := cluster2(t)
		b.fwd.cfg.MaxCreateBody = 100
		b.members.set(b.node(3, 10))
		_, out := post(t, b.srv.URL, body)
		var s seen
		json.Unmarshal([]byte(out), &s)
		if s.Node != nodeB || s.Body != body {
			t.Errorf("large body: served by %q with %d bytes; want B with the whole body", s.Node, len(s.Body))
		}
	})
}

func FuzzPlainCreate(f *testing.F) {
	f.Add([]byte(`{"keepAlive":true}`))
	f.Add([]byte(`{"browserSettings":{}}`))
	f.Add([]byte(`{"keepAlive":true,"keepAlive":true}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if plainCreate(body) {
			var m map[string]any
			if len(bytes.TrimSpace(body)) != 0 && json.Unmarshal(body, &m) != nil {
				t.Fatalf("plainCreate(%q) = true for a body that is no JSON object", body)
			}
		}
	})
}
