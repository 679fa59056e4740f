package replays

import (
	"bytes"
	"context"
	"encoding/json"
	"hash/fnv"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdp"
)

// The Service is a part of every session, and its runs count their frames against the
// session's disk quota.
var (
	_ bb.SessionPart  = (*Service)(nil)
	_ bb.SessionFiles = (*run)(nil)
)

// Check accepts every create: recordSession needs no validation here.
func (s *Service) Check(context.Context, string, *bb.CreateSessionRequest) error { return nil }

// Prepare gives a run to the sessions that are recorded: video on for the node and
// recordSession not false. The others get none and record nothing.
func (s *Service) Prepare(_ context.Context, sess *bb.Session, _ *bb.CreateSessionRequest, _ *bb.LaunchOptions) (bb.PartRun, error) {
	if !s.cfg.Enabled || !sess.Settings.RecordSessionEnabled(s.cfg.RecordByDefault) {
		return nil, nil
	}
	return &run{s: s, id: sess.ID, pages: map[string]*page{}, stored: make(chan struct{})}, nil
}

// run is the screencast of one session: browserd's own CDP connection to the browser,
// attached to every page, each page's screencast paced by its acks (MaxFPS) and its
// frames written to blobs by one goroutine per page.
type run struct {
	bb.NopPartRun
	s  *Service
	id string

	conn    *cdp.Conn
	send    func(cdpSession, method string, params any) // a command on conn, not waiting
	writers sync.WaitGroup
	// stored is closed once the run is over: its frames and pages.json are stored
	// (Stopped), or it never got that far (Ended).
	stored     chan struct{}
	storedOnce sync.Once

	mu      sync.Mutex
	pages   map[string]*page // by CDP target session
	order   []*page          // in the order they were opened: the page ids
	bytes   int64            // frame bytes stored or queued
	limited bool             // MaxBytes reached: no more frames
	end     time.Time        // the session's end (Ending); zero while it lives
	closed  bool             // the connection is closed: no more pages or frames
}

// page is one recorded page.
type page struct {
	id         int
	cdpSession string
	start, end time.Time // end zero while open
	frames     chan frame
	seq        int    // frames stored
	seen       bool   // last is set
	last       uint64 // FNV-1a of the last frame kept: a repeat of it is not kept
	paused     bool   // the screencast is stopped until the restart timer fires
}

// frame is one screencast frame: its JPEG and when it came.
type frame struct {
	jpeg []byte
	at   time.Time
}

// frameQueue is how many frames of a page may wait for the blob store; more are dropped.
const frameQueue = 16

// Started connects to the browser and starts a screencast of every page, present and
// future. A failure is logged, never returned: the session runs without video.
func (r *run) Started(ctx context.Context, b bb.Browser) error {
	c, err := cdp.Dial(ctx, b.DevToolsURL(), cdp.Options{ReadLimit: 64 << 20, OnEvent: r.onEvent,
		OnOversize: func(size int64, _ []byte) {
			r.s.log.Info("screencast frame too large", "session_id", r.id, "bytes", size)
		}})
	if err != nil {
		r.s.log.Warn("screencast: connect to the browser", "session_id", r.id, "err", err)
		return nil
	}
	r.mu.Lock()
	r.conn = c
	r.send = func(cdpSession, method string, params any) {
		c.Send(context.Background(), cdpSession, method, params, nil) // after the close: an error, ignored
	}
	r.mu.Unlock()
	if err := c.Call(ctx, "", "Target.setAutoAttach", map[string]any{
		"autoAttach": true, "waitForDebuggerOnStart": false, "flatten": true,
		"filter": []map[string]any{{"type": "page"}},
	}, nil); err != nil {
		r.s.log.Warn("screencast: attach to pages", "session_id", r.id, "err", err)
	}
	return nil
}

// targetEvent holds the params of Target.attachedToTarget and .detachedFromTarget.
type targetEvent struct {
	SessionID  string `json:"sessionId"`
	TargetInfo struct {
		Type string `json:"type"`
	} `json:"targetInfo"`
}

// screencastFrame holds the params of Page.screencastFrame.
type screencastFrame struct {
	Data      []byte `json:"data"` // base64 in JSON
	SessionID int    `json:"sessionId"`
}

// onEvent runs on the connection's read goroutine: it may send, never wait.
func (r *run) onEvent(ev cdp.Event) {
	switch ev.Method {
	case "Target.attachedToTarget":
		var p targetEvent
		if json.Unmarshal(ev.Params, &p) != nil || p.TargetInfo.Type != "page" {
			return
		}
		r.addPage(p.SessionID)
	case "Target.detachedFromTarget":
		var p targetEvent
		if json.Unmarshal(ev.Params, &p) != nil {
			return
		}
		r.endPage(p.SessionID, time.Now())
	case "Page.screencastFrame":
		var p screencastFrame
		if json.Unmarshal(ev.Params, &p) != nil {
			return
		}
		r.onFrame(ev.SessionID, p)
	}
}

// addPage starts recording a page the connection attached to.
func (r *run) addPage(cdpSession string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.pages[cdpSession] != nil || len(r.order) >= r.s.cfg.MaxPages {
		return
	}
	p := &page{id: len(r.order), cdpSession: cdpSession, start: time.Now(), frames: make(chan frame, frameQueue)}
	r.pages[cdpSession] = p
	r.order = append(r.order, p)
	r.writers.Go(func() { r.writeFrames(p) })
	r.startScreencast(p)
}

// endPage marks a page closed at t; its writer ends once its queue is written.
func (r *run) endPage(cdpSession string, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.pages[cdpSession]; p != nil && p.end.IsZero() {
		p.end = t
		close(p.frames)
	}
}

// onFrame queues a frame of a page for the blob store, unless it is the same picture as
// the page's last one, and paces the screencast. Chromium's capturer reads back every
// frame the page composites while a screencast runs (up to 60 a second for an
// animation), whatever the acks, and only then drops what is not acknowledged: so the
// pace is kept by stopping the screencast after each new picture and starting it again
// 1/MaxFPS later. A start sends the page's current picture; when that is the same as
// the last one the page is static, and the screencast stays on, costing nothing until
// the page changes (its next frame comes at once). Docs/PERFORMANCE.md, "Session videos".
func (r *run) onFrame(cdpSession string, f screencastFrame) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pages[cdpSession]
	if p == nil || !p.end.IsZero() || r.closed {
		return
	}
	if !r.limited && r.bytes+int64(len(f.Data)) > r.s.cfg.MaxBytes {
		r.limited = true
		r.s.log.Warn("screencast: session video limit reached; later frames are dropped", "session_id", r.id, "limit_bytes", r.s.cfg.MaxBytes)
	}
	if r.limited {
		return // no ack: Chromium sends no more frames for this page
	}
	r.send(cdpSession, "Page.screencastFrameAck", map[string]any{"sessionId": f.SessionID})
	h := fnv.New64a()
	h.Write(f.Data)
	sum := h.Sum64()
	if p.seen && sum == p.last {
		return // static: the screencast stays on
	}
	p.seen, p.last = true, sum
	select {
	case p.frames <- frame{jpeg: f.Data, at: now}:
		r.bytes += int64(len(f.Data))
	default: // the blob store is behind: this frame is lost, the next one comes
	}
	if p.paused {
		return // a frame that was on its way when the screencast stopped
	}
	p.paused = true
	r.send(cdpSession, "Page.stopScreencast", nil)
	time.AfterFunc(time.Second/time.Duration(r.s.cfg.MaxFPS), func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if !p.end.IsZero() || r.closed {
			return
		}
		p.paused = false
		r.startScreencast(p)
	})
}

// startScreencast starts (again) the screencast of a page; r.mu is held.
func (r *run) startScreencast(p *page) {
	cfg := r.s.cfg
	r.send(p.cdpSession, "Page.startScreencast", map[string]any{
		"format": "jpeg", "quality": cfg.Quality, "maxWidth": cfg.MaxWidth, "maxHeight": cfg.MaxHeight, "everyNthFrame": 1,
	})
}

// writeFrames stores a page's frames as blobs, in order, until its queue is closed.
func (r *run) writeFrames(p *page) {
	for f := range p.frames {
		ctx, cancel := context.WithTimeout(r.s.ctx, 30*time.Second)
		key := pageKey(r.id, p.id, "f/"+frameKeyName(p.seq, f.at.UnixMilli()))
		if _, err := r.s.cfg.Blobs.Put(ctx, key, bytes.NewReader(f.jpeg)); err != nil {
			r.s.log.Error("screencast: store frame", "session_id", r.id, "page", p.id, "err", err)
		} else {
			r.mu.Lock()
			p.seq++
			r.mu.Unlock()
		}
		cancel()
	}
}

// Ending notes when the session ended: the end of the pages still open.
func (r *run) Ending(bb.SessionStatus) func(*bb.Session) {
	r.mu.Lock()
	if r.end.IsZero() {
		r.end = time.Now()
	}
	r.mu.Unlock()
	return nil
}

// Stopped closes the connection, waits for every frame to be stored and writes the
// session's pages (pages.json), which tells the API the session's video is complete.
func (r *run) Stopped(ctx context.Context, _ bb.Browser, _ bb.SessionStatus) {
	r.finish()
	pages := r.snapshot(time.Time{})
	body, _ := json.Marshal(pages) // plain values encode
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := r.s.cfg.Blobs.Put(ctx, pagesKey(r.id), bytes.NewReader(body)); err != nil {
		r.s.log.Error("screencast: store pages", "session_id", r.id, "err", err)
	}
	r.storedOnce.Do(func() { close(r.stored) })
}

// Ended frees what a run that never got to Stopped holds (a create that failed).
func (r *run) Ended(context.Context) {
	r.finish()
	r.storedOnce.Do(func() { close(r.stored) })
}

// ending reports whether the session's end was decided (Ending).
func (r *run) ending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.end.IsZero()
}

// finish closes the connection and the pages still open and waits for their writers.
// It is safe to call more than once.
func (r *run) finish() {
	r.mu.Lock()
	conn := r.conn
	already := r.closed
	r.closed = true
	end := r.end
	if end.IsZero() {
		end = time.Now()
		r.end = end
	}
	r.mu.Unlock()
	if already {
		return
	}
	if conn != nil {
		conn.CloseNow() // the browser is gone or going
	}
	r.mu.Lock()
	for _, p := range r.order {
		if p.end.IsZero() {
			p.end = end
			close(p.frames)
		}
	}
	r.mu.Unlock()
	r.writers.Wait()
}

// snapshot returns the pages with at least one frame stored; a page still open ends
// at now.
func (r *run) snapshot(now time.Time) []pageInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []pageInfo{}
	for _, p := range r.order {
		if p.seq == 0 {
			continue
		}
		end := p.end
		if end.IsZero() {
			end = now
		}
		out = append(out, pageInfo{ID: p.id, Start: p.start.UnixMilli(), End: end.UnixMilli(), Frames: p.seq})
	}
	return out
}

// SessionDirs returns none: the frames go straight to blobs.
func (r *run) SessionDirs() []string { return nil }

// SessionBlobBytes returns the frame bytes the run stored or queued.
func (r *run) SessionBlobBytes(context.Context) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bytes, nil
}
