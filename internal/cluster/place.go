package cluster

import (
	"bytes"
	"cmp"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	bb "github.com/browserd/browserd"
)

// plainCreateFields are the create fields that do not change how a browser is launched:
// a create with no other field can take a warm browser of the default shelf ("").
var plainCreateFields = map[string]bool{
	"projectId": true, "keepAlive": true, "timeout": true, "userMetadata": true, "region": true,
}

// plainCreate reports whether a create body asks for nothing but a default browser.
func plainCreate(body []byte) bool {
	if len(bytes.TrimSpace(body)) == 0 {
		return true
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return false // the chosen node refuses it
	}
	for k := range fields {
		if !plainCreateFields[k] {
			return false
		}
	}
	return true
}

// candidate is a node a create may go to.
type candidate struct {
	id        string
	url       *url.URL // nil: this node
	warm      bool
	live      int       // at its heartbeat, plus what this node placed on it since
	heartbeat time.Time // of the view it was read from
}

// placedSince is how many creates this node placed on a node since that node's
// heartbeat at (the store's clock, as the view read it).
type placedSince struct {
	at time.Time
	n  int
}

// placedOn returns the creates this node placed on n since n's heartbeat in the view.
func (f *Forwarder) placedOn(n bb.Node) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.placed[n.ID]
	if !ok || !p.at.Equal(n.HeartbeatAt) {
		return 0 // a heartbeat since: its Live counts them
	}
	return p.n
}

// notePlaced counts a create placed on c.
func (f *Forwarder) notePlaced(c candidate) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.placed[c.id]
	if !p.at.Equal(c.heartbeat) {
		p = placedSince{at: c.heartbeat}
	}
	p.n++
	f.placed[c.id] = p
}

// placeable is the optional part of Members that says whether this node takes new
// sessions now (a member, not draining, not fenced); the membership loop has it.
type placeable interface{ Placeable() bool }

// candidates returns the nodes a create may go to, best first: active, below capacity,
// a warm browser for the create first, least loaded next, this node winning ties.
func (f *Forwarder) candidates(plain bool) []candidate {
	self := f.cfg.Members.Self()
	var cs []candidate
	sawSelf := false
	if p, ok := f.cfg.Members.(placeable); ok && !p.Placeable() {
		sawSelf = true // not a candidate, whatever its row says
	}
	for _, n := range f.cfg.Members.Nodes() {
		if n.ID == self {
			if sawSelf {
				continue
			}
			sawSelf = true
		}
		if n.State != "active" || (n.Capacity > 0 && n.Live >= n.Capacity) {
			continue
		}
		c := candidate{id: n.ID, live: n.Live + f.placedOn(n), heartbeat: n.HeartbeatAt,
			warm: plain && slices.Contains(n.Warm, "")}
		if n.ID != self {
			u, err := url.Parse(n.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				continue
			}
			c.url = u
		}
		cs = append(cs, c)
	}
	if !sawSelf { // not joined yet (or the view is old): this node still admits its own
		cs = append(cs, candidate{id: self})
	}
	// The warm browser a node had at its heartbeat may be taken by a create placed
	// there since: its warm list counts again at its next heartbeat.
	for i := range cs {
		if f.placedOn(bb.Node{ID: cs[i].id, HeartbeatAt: cs[i].heartbeat}) > 0 {
			cs[i].warm = false
		}
	}
	slices.SortStableFunc(cs, func(a, b candidate) int {
		if a.warm != b.warm {
			if a.warm {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(a.live, b.live); c != 0 {
			return c
		}
		if (a.url == nil) != (b.url == nil) {
			if a.url == nil {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.id, b.id)
	})
	return cs
}

// place serves a create: on the best candidate that is not full, trying the next when
// one answers 429 with NodeFullHeader. When every candidate is full the client gets the
// last node-full answer, as from a single node; when there is no candidate, this node
// answers (its own 429, or a session when the view was out of date).
func (f *Forwarder) place(w http.ResponseWriter, r *http.Request) {
	limit := f.cfg.MaxCreateBody
	if limit <= 0 {
		limit = 1 << 20
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "could not read the request body")
		return
	}
	if int64(len(body)) > limit { // too large to buffer: this node refuses it as usual
		r.Body = readCloser{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
		f.next.ServeHTTP(w, r)
		return
	}
	var full *recorded
	for _, c := range f.candidates(plainCreate(body)) {
		if c.url == nil {
			rec, status := f.createHere(w, r, body)
			if rec == nil {
				if status == http.StatusCreated {
					f.notePlaced(c)
				}
				return // answered
			}
			full = rec
			continue
		}
		rec, answered := f.createOn(w, r, body, c)
		if answered {
			return // noted by createOn when it made a session
		}
		if rec != nil {
			full = rec
		}
	}
	if full == nil { // no candidate answered: this node does, for itself
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		f.next.ServeHTTP(w, r)
		return
	}
	full.replay(w)
}

// recorded is a node-full answer kept to be replayed when every node is.
type recorded struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (rec *recorded) replay(w http.ResponseWriter) {
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.status)
	w.Write(rec.body.Bytes()) // the client may be gone
}

// createHere runs the create on this node. It returns the answer when it is node-full
// (nothing was written to w), else nil and the status written to w.
func (f *Forwarder) createHere(w http.ResponseWriter, r *http.Request, body []byte) (*recorded, int) {
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	cw := &fullCatcher{w: w, header: make(http.Header)}
	f.next.ServeHTTP(cw, r2)
	if cw.full != nil {
		return cw.full, 0
	}
	if !cw.wrote {
		cw.WriteHeader(http.StatusOK)
	}
	return nil, cw.status
}

// createOn sends the create to peer c with a HopHeader and PlacedHeader. It returns
// answered when w has the peer's answer; else the peer's node-full answer, or nil when
// the peer could not be reached (nothing was written to w either way).
func (f *Forwarder) createOn(w http.ResponseWriter, r *http.Request, body []byte, c candidate) (full *recorded, answered bool) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	for _, h := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		out.Header.Del(h)
	}
	f.setHop(r, out, c.url)
	out.Header.Set(PlacedHeader, "1")
	resp, err := f.rt.RoundTrip(out)
	if err != nil {
		f.log.Warn("placing a create on a peer failed; trying the next", "peer", c.id, "err", err)
		return nil, false
	}
	defer resp.Body.Close()
	if nodeFull(resp.StatusCode, resp.Header) {
		rec := &recorded{header: resp.Header.Clone(), status: resp.StatusCode}
		io.Copy(&rec.body, io.LimitReader(resp.Body, 64<<10)) // a short JSON error
		return rec, false
	}
	if resp.StatusCode == http.StatusCreated {
		f.notePlaced(c)
	}
	for k, v := range resp.Header {
		if k == "Connection" || k == "Keep-Alive" || k == "Transfer-Encoding" {
			continue
		}
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body) // the client may be gone
	return nil, true
}

// nodeFull reports whether an answer refuses a create because its node is full (429,
// or 503 for a low disk), so that another node may take it.
func nodeFull(status int, h http.Header) bool {
	return status >= 400 && h.Get(NodeFullHeader) != ""
}

// fullCatcher passes an answer through to w, unless it is a node-full 429, which it
// keeps instead.
type fullCatcher struct {
	w      http.ResponseWriter
	header http.Header
	wrote  bool
	status int
	full   *recorded
}

func (c *fullCatcher) Header() http.Header { return c.header }

func (c *fullCatcher) WriteHeader(status int) {
	if c.wrote {
		return
	}
	c.wrote, c.status = true, status
	if nodeFull(status, c.header) {
		c.full = &recorded{header: c.header, status: status}
		return
	}
	for k, v := range c.header {
		c.w.Header()[k] = v
	}
	c.w.WriteHeader(status)
}

func (c *fullCatcher) Write(p []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	if c.full != nil {
		return c.full.body.Write(p)
	}
	return c.w.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (c *fullCatcher) Unwrap() http.ResponseWriter { return c.w }

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}
