package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
)

// staticMembers is a members view that does not change (the fast tests; the e2e tests
// in internal/server read the store's).
type staticMembers struct {
	self  string
	mu    sync.Mutex
	nodes map[string]bb.Node
}

func (m *staticMembers) Node(id string) (bb.Node, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.nodes[id]
	return n, ok
}

func (m *staticMembers) Nodes() []bb.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ns []bb.Node
	for _, n := range m.nodes {
		ns = append(ns, n)
	}
	return ns
}

func (m *staticMembers) Self() string { return m.self }

func (m *staticMembers) set(n bb.Node) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nodes[n.ID] = n
}

// mapSessions says which node owns which session.
type mapSessions map[string]string

func (s mapSessions) Session(_ context.Context, id string) (*bb.Session, error) {
	n, ok := s[id]
	if !ok {
		return nil, bb.Errorf(bb.CodeNotFound, "session %q not found", id)
	}
	return &bb.Session{ID: id, NodeID: n}, nil
}

// seen is what a node's own handler got.
type seen struct {
	Node, Method, Path, Host, XFF, Hop, Smuggled, Body, Placed string
}

// testNode is a node: a Forwarder in front of a handler that answers with what it saw.
type testNode struct {
	id      string
	srv     *httptest.Server
	fwd     *Forwarder
	members *staticMembers
	mu      sync.Mutex
	got     []seen
	handler http.HandlerFunc // nil: answer 200 with the seen as JSON
}

func sessionPath(r *http.Request) (string, bool) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/sessions/")
	if !ok {
		return "", false
	}
	id, _, _ := strings.Cut(rest, "/")
	return id, bb.ValidID(id)
}

func newTestNode(t testing.TB, id string, store SettingStore, sessions SessionStore) *testNode {
	t.Helper()
	n := &testNode{id: id, members: &staticMembers{self: id, nodes: map[string]bb.Node{}}}
	keys, err := NewKeyring(t.Context(), store)
	if err != nil {
		t.Fatal(err)
	}
	local := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s := seen{Node: id, Method: r.Method, Path: r.URL.RequestURI(), Host: r.Host, XFF: r.Header.Get("X-Forwarded-For"),
			Hop: r.Header.Get(HopHeader), Smuggled: r.Header.Get("X-Browserd-Evil"), Body: string(body), Placed: r.Header.Get(PlacedHeader)}
		n.mu.Lock()
		n.got = append(n.got, s)
		h := n.handler
		n.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s)
	})
	n.fwd = NewForwarder(ForwarderConfig{Members: n.members, Sessions: sessions, Keys: keys, Routes: []SessionOf{sessionPath}}, local)
	n.srv = httptest.NewServer(n.fwd)
	t.Cleanup(n.srv.Close)
	return n
}

func (n *testNode) setHandler(h http.HandlerFunc) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handler = h
}

// requests returns what the node's own handler got.
func (n *testNode) requests() []seen {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]seen(nil), n.got...)
}

func (n *testNode) node(live, capacity int, warm ...string) bb.Node {
	return bb.Node{ID: n.id, URL: n.srv.URL, State: bb.NodeActive, Live: live, Capacity: capacity, Warm: warm}
}

// cluster2 is two nodes that know each other, A owning session sessA.
const sessA = "1a2b3c4d-0000-4000-8000-00000000000a"

func cluster2(t testing.TB) (a, b *testNode) {
	t.Helper()
	store := newMemSettings()
	sessions := mapSessions{sessA: nodeA}
	a, b = newTestNode(t, nodeA, store, sessions), newTestNode(t, nodeB, store, sessions)
	for _, n := range []*testNode{a, b} {
		n.members.set(a.node(0, 10))
		n.members.set(b.node(0, 10))
	}
	return a, b
}

func get(t *testing.T, base, path string, header http.Header) (*http.Response, seen) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Host = "lb.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s seen
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &s)
	return resp, s
}

// TestForwardToOwner: a request about A's session sent to B is served by A, with the
// client's Host, the client's address in X-Forwarded-For and a verified hop; a client's
// X-Browserd-* headers never arrive; A does not forward it again.
func TestForwardToOwner(t *testing.T) {
	a, b := cluster2(t)
	resp, s := get(t, b.srv.URL, "/v1/sessions/"+sessA+"/logs?x=1", http.Header{
		"X-Browserd-Evil":   {"1"},
		"X-Browserd-Placed": {"1"},
		"X-Forwarded-For":   {"198.51.100.7"},
	})
	if resp.StatusCode != 200 || s.Node != nodeA {
		t.Fatalf("GET via B = %d, served by %q; want 200 by A", resp.StatusCode, s.Node)
	}
	if s.Host != "lb.example" || s.Path != "/v1/sessions/"+sessA+"/logs?x=1" || s.Hop == "" || s.Smuggled != "" || s.Placed != "" {
		t.Errorf("A saw %+v; want the client's Host and path, a hop, no X-Browserd-Evil or Placed", s)
	}
	if s.XFF != "198.51.100.7, 127.0.0.1" {
		t.Errorf("X-Forwarded-For at A = %q; want the client's chain and B's peer appended", s.XFF)
	}
	if len(b.requests()) != 0 {
		t.Errorf("B served it too: %+v", b.requests())
	}
	// At the owner itself: served there, no hop.
	if _, s := get(t, a.srv.URL, "/v1/sessions/"+sessA, nil); s.Node != nodeA || s.Hop != "" {
		t.Errorf("GET at A = %+v; want served by A without a hop", s)
	}
	// Not a session's path, or an unknown session: served where it lands.
	if _, s := get(t, b.srv.URL, "/v1/projects", nil); s.Node != nodeB {
		t.Errorf("GET /v1/projects at B served by %q", s.Node)
	}
	if _, s := get(t, b.srv.URL, "/v1/sessions/2a2b3c4d-0000-4000-8000-00000000000b", nil); s.Node != nodeB {
		t.Errorf("unknown session at B served by %q", s.Node)
	}
}

// TestForgedHop: a hop header that does not verify is 401 in the API's error shape,
// whatever else the request carries, and reaches no handler.
func TestForgedHop(t *testing.T) {
	a, b := cluster2(t)
	other := &Keyring{now: time.Now, current: make([]byte, 32), readAt: time.Now()} // not the cluster's secret
	apiKey := "bb_live_0123456789abcdefghijklmnopqrstuv"
	for name, hop := range map[string]string{
		"api key":        apiKey,
		"other secret":   other.Sign(nodeB, "GET", "/v1/sessions/"+sessA),
		"other path":     b.fwd.cfg.Keys.Sign(nodeB, "GET", "/v1/sessions"),
		"expired":        nodeB + "." + fmt.Sprint(time.Now().Add(-2*time.Minute).Unix()) + "." + strings.Repeat("A", 43),
		"signing key":    sessA + ".abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ",
		"empty":          "",
		"lowercase name": "x",
	} {
		t.Run(name, func(t *testing.T) {
			h := http.Header{HopHeader: {hop}, "X-Bb-Api-Key": {apiKey}}
			if name == "lowercase name" {
				h = http.Header{"x-browserd-hop": {hop}} // net/http canonicalizes it on the wire
			}
			resp, _ := get(t, a.srv.URL, "/v1/sessions/"+sessA, h)
			body := resp.Header.Get("Content-Type")
			if resp.StatusCode != http.StatusUnauthorized || body != "application/json" {
				t.Errorf("forged hop = %d %s; want 401 JSON", resp.StatusCode, body)
			}
		})
	}
	if len(a.requests()) != 0 {
		t.Errorf("a forged hop reached the handler: %+v", a.requests())
	}
	// The shape of the 401.
	req, _ := http.NewRequest("GET", a.srv.URL+"/v1/sessions/"+sessA, nil)
	req.Header.Set(HopHeader, apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e map[string]any
	json.NewDecoder(resp.Body).Decode(&e)
	if e["statusCode"] != 401.0 || e["code"] != 401.0 || e["error"] != "Unauthorized" || !strings.Contains(fmt.Sprint(e["message"]), HopHeader) {
		t.Errorf("401 body = %v; want the API error shape", e)
	}
}

// TestForwardTargetFromMembersOnly: the peer a request goes to is the owner's URL from
// the members view; nothing in the request (Host, absolute URL, X-Forwarded-Host)
// changes it, and a session whose owner is not a live member is served here.
func TestForwardTargetFromMembersOnly(t *testing.T) {
	a, b := cluster2(t)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the forwarder reached a URL from the request: %s %s", r.Method, r.URL)
	}))
	defer evil.Close()
	evilHost := strings.TrimPrefix(evil.URL, "http://")
	conn, err := net.Dial("tcp", strings.TrimPrefix(b.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET http://%s/v1/sessions/%s HTTP/1.1\r\nHost: %s\r\nX-Forwarded-Host: %s\r\nConnection: close\r\n\r\n", evilHost, sessA, evilHost, evilHost)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	var s seen
	json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	if s.Node != nodeA {
		t.Errorf("absolute-URL request via B served by %q; want A", s.Node)
	}
	// The owner is lost (or left): B answers itself (from the shared stores).
	for _, st := range []bb.NodeState{bb.NodeLost, bb.NodeLeft} {
		n := a.node(0, 10)
		n.State = st
		b.members.set(n)
		if _, s := get(t, b.srv.URL, "/v1/sessions/"+sessA, nil); s.Node != nodeB {
			t.Errorf("owner %s: served by %q; want B", st, s.Node)
		}
	}
}

// TestForwardPeerDown: a peer that refuses connections is a 503 with Retry-After in the
// API error shape.
func TestForwardPeerDown(t *testing.T) {
	a, b := cluster2(t)
	a.srv.Close()
	// A read is answered where it landed, from the shared stores (the owner may be dead
	// and not yet known lost): B's own handler serves it.
	resp, s := get(t, b.srv.URL, "/v1/sessions/"+sessA, nil)
	if resp.StatusCode != http.StatusOK || s.Node != nodeB || s.Hop != "" {
		t.Errorf("GET with the owner down = %d, served by %q (hop %q); want 200 from B itself", resp.StatusCode, s.Node, s.Hop)
	}
	// Anything else needs the owner: 503 with Retry-After.
	req, err := http.NewRequestWithContext(t.Context(), "POST", b.srv.URL+"/v1/sessions/"+sessA, strings.NewReader(`{"status":"REQUEST_RELEASE"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("POST with the owner down = %d, Retry-After %q, %s; want 503 JSON with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"))
	}
}

// TestForwardUpgrade: a websocket-style upgrade is proxied both ways.
func TestForwardUpgrade(t *testing.T) {
	a, b := cluster2(t)
	a.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			t.Errorf("upgrade header lost: %v", r.Header)
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		line, _ := rw.ReadString('\n')
		rw.WriteString("echo " + line)
		rw.Flush()
	})
	conn, err := net.Dial("tcp", strings.TrimPrefix(b.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/sessions/%s/ws HTTP/1.1\r\nHost: lb\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", sessA)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade via B = %v, %v; want 101", resp, err)
	}
	fmt.Fprint(conn, "hello\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := br.ReadString('\n'); line != "echo hello\n" {
		t.Errorf("through the upgraded connection: %q, %v", line, err)
	}
}
