package liveview

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

// viewerClient plays the live view page.
type viewerClient struct {
	t  testing.TB
	ws *websocket.Conn
}

func dialViewer(t testing.TB, e *testEnv, token, query string) *viewerClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, e.wsURL("/debug/"+token+"/screencast"+query), nil)
	if err != nil {
		t.Fatalf("dial viewer: %v (%v)", err, resp)
	}
	ws.SetReadLimit(64 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	return &viewerClient{t: t, ws: ws}
}

func (c *viewerClient) send(m map[string]any) {
	c.t.Helper()
	b, _ := json.Marshal(m)
	if err := c.ws.Write(c.t.Context(), websocket.MessageText, b); err != nil {
		c.t.Fatalf("viewer send: %v", err)
	}
}

type frameMsg struct {
	Seq      int64          `json:"seq"`
	Metadata map[string]any `json:"metadata"`
	JPEG     []byte         `json:"-"`
}

// next returns the next message: a decoded text message or a frame.
func (c *viewerClient) next() (map[string]any, *frameMsg, error) {
	ctx, cancel := context.WithTimeout(c.t.Context(), 10*time.Second)
	defer cancel()
	typ, b, err := c.ws.Read(ctx)
	if err != nil {
		return nil, nil, err
	}
	if typ == websocket.MessageBinary {
		n := binary.BigEndian.Uint32(b)
		var f frameMsg
		if err := json.Unmarshal(b[4:4+n], &f); err != nil {
			c.t.Fatalf("frame metadata: %v", err)
		}
		f.JPEG = b[4+n:]
		return nil, &f, nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("viewer message %s: %v", b, err)
	}
	return m, nil, nil
}

// text waits for the next text message of type typ, skipping others.
func (c *viewerClient) text(typ string) map[string]any {
	c.t.Helper()
	for {
		m, _, err := c.next()
		if err != nil {
			c.t.Fatalf("waiting for %q: %v", typ, err)
		}
		if m != nil && m["type"] == typ {
			return m
		}
	}
}

func (c *viewerClient) frame() *frameMsg {
	c.t.Helper()
	for {
		_, f, err := c.next()
		if err != nil {
			c.t.Fatalf("waiting for a frame: %v", err)
		}
		if f != nil {
			return f
		}
	}
}

// closeStatus reads until the server closes and returns its close code.
func (c *viewerClient) closeStatus() websocket.StatusCode {
	c.t.Helper()
	for {
		if _, _, err := c.next(); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

func params(t *testing.T, c cdpCommand) map[string]any {
	t.Helper()
	var m map[string]any
	if len(c.Params) > 0 {
		if err := json.Unmarshal(c.Params, &m); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func ackIDs(t *testing.T, fb *fakeBrowser) []float64 {
	var ids []float64
	for _, c := range fb.commands("Page.screencastFrameAck") {
		ids = append(ids, params(t, c)["sessionId"].(float64))
	}
	return ids
}

func TestViewerScreencast(t *testing.T) {
	e, fb := fakeEnv(t)
	s := e.create(t)
	c := dialViewer(t, e, e.token(t, s.ID, false), "")

	hello := c.text("hello")
	if hello["sessionId"] != s.ID || hello["readOnly"] != false {
		t.Errorf("hello = %v", hello)
	}
	tabs := c.text("tabs")
	wantTabs := []any{
		map[string]any{"id": fakePage1, "url": "https://one/", "title": "One"},
		map[string]any{"id": fakePage2, "url": "https://two/", "title": "Two"},
	}
	if diff := cmp.Diff(wantTabs, tabs["tabs"]); diff != "" {
		t.Errorf("tabs (-want +got):\n%s", diff)
	}
	if tabs["active"] != fakePage2 { // first in /json/list: the tab in front
		t.Errorf("active tab = %v; want %s", tabs["active"], fakePage2)
	}
	if n := len(fb.commands("Page.startScreencast")); n != 0 {
		t.Errorf("%d screencasts started before the viewer said its size", n)
	}

	c.send(map[string]any{"type": "viewport", "width": 800, "height": 450})
	eventually(t, "the screencast to start", func() bool { cast, _ := fb.state(); return cast == "S-"+fakePage2 })
	start := params(t, fb.commands("Page.startScreencast")[0])
	if start["maxWidth"] != 800.0 || start["maxHeight"] != 450.0 || start["quality"] != float64(startQuality) || start["format"] != "jpeg" {
		t.Errorf("startScreencast params = %v", start)
	}

	// Frames come through in order; Chromium is acked at once for frameWindow frames,
	// then only as the viewer draws them.
	for n := 1; n <= 3; n++ {
		fb.frame(100 + n)
		f := c.frame()
		if f.Seq != int64(n) || string(f.JPEG) != "\xff\xd8\xff\xe0\x00\x10" || f.Metadata["deviceWidth"] != 1280.0 {
			t.Fatalf("frame %d = seq %d, %q, %v", n, f.Seq, f.JPEG, f.Metadata)
		}
	}
	eventually(t, "acks of the first two frames", func() bool { return len(ackIDs(t, fb)) == 2 })
	time.Sleep(50 * time.Millisecond)
	if diff := cmp.Diff([]float64{101, 102}, ackIDs(t, fb)); diff != "" {
		t.Errorf("acks before the viewer drew (-want +got):\n%s", diff)
	}
	c.send(map[string]any{"type": "ack", "seq": 1})
	eventually(t, "the held ack", func() bool { return len(ackIDs(t, fb)) == 3 })
	if got := ackIDs(t, fb)[2]; got != 103 {
		t.Errorf("third ack = %v; want 103", got)
	}

	// Input goes to the tab shown, and is answered once the browser handled it.
	c.send(map[string]any{"type": "mouse", "event": "down", "x": 10.5, "y": 20, "button": "left", "buttons": 1, "clickCount": 1, "seq": 7})
	in := c.text("input")
	if in["seq"] != 7.0 || in["failed"] != false {
		t.Errorf("input reply = %v", in)
	}
	mouse := fb.commands("Input.dispatchMouseEvent")
	if len(mouse) != 1 || mouse[0].SessionID != "S-"+fakePage2 {
		t.Fatalf("mouse commands = %+v", mouse)
	}
	want := map[string]any{"type": "mousePressed", "x": 10.5, "y": 20.0, "button": "left", "buttons": 1.0, "clickCount": 1.0, "modifiers": 0.0}
	if diff := cmp.Diff(want, params(t, mouse[0])); diff != "" {
		t.Errorf("dispatchMouseEvent (-want +got):\n%s", diff)
	}
	c.send(map[string]any{"type": "key", "event": "down", "key": "a", "code": "KeyA", "keyCode": 65, "text": "a", "seq": 8})
	c.text("input")
	c.send(map[string]any{"type": "key", "event": "down", "key": "Backspace", "code": "Backspace", "keyCode": 8, "seq": 9})
	c.text("input")
	keys := fb.commands("Input.dispatchKeyEvent")
	if len(keys) != 2 || params(t, keys[0])["type"] != "keyDown" || params(t, keys[0])["text"] != "a" ||
		params(t, keys[1])["type"] != "rawKeyDown" || params(t, keys[1])["text"] != nil {
		t.Errorf("key commands = %+v", keys)
	}

	// Switching tabs moves the screencast.
	c.send(map[string]any{"type": "switch", "id": fakePage1})
	if tabs := c.text("tabs"); tabs["active"] != fakePage1 {
		t.Errorf("active after switch = %v", tabs["active"])
	}
	eventually(t, "the screencast to move", func() bool { cast, _ := fb.state(); return cast == "S-"+fakePage1 })
	if n := len(fb.commands("Target.detachFromTarget")); n != 1 {
		t.Errorf("%d detaches after a switch; want 1", n)
	}

	// A hidden viewer has no screencast.
	c.send(map[string]any{"type": "pause"})
	eventually(t, "the screencast to pause", func() bool { cast, _ := fb.state(); return cast == "" })
	c.send(map[string]any{"type": "resume"})
	eventually(t, "the screencast to resume", func() bool { cast, _ := fb.state(); return cast != "" })

	// Nobody watching: no screencast, no browser connection.
	if n := e.srv.Viewers(); n != 1 {
		t.Errorf("Viewers() = %d; want 1", n)
	}
	stops := len(fb.commands("Page.stopScreencast"))
	c.ws.Close(websocket.StatusNormalClosure, "")
	eventually(t, "the browser connection to close", func() bool { cast, conns := fb.state(); return cast == "" && conns == 0 })
	eventually(t, "the viewer to be gone", func() bool { return e.srv.Viewers() == 0 })
	if n := len(fb.commands("Page.stopScreencast")); n != stops+1 {
		t.Errorf("stopScreencast sent %d times when the viewer left; want 1", n-stops)
	}
}

func TestViewerReadOnly(t *testing.T) {
	for _, tt := range []struct {
		name     string
		readOnly bool // in the token
		query    string
	}{
		{name: "token", readOnly: true},
		{name: "query", query: "?readonly=1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, fb := fakeEnv(t)
			s := e.create(t)
			c := dialViewer(t, e, e.token(t, s.ID, tt.readOnly), tt.query)
			if hello := c.text("hello"); hello["readOnly"] != true {
				t.Errorf("hello = %v", hello)
			}
			c.send(map[string]any{"type": "viewport", "width": 800, "height": 450})
			c.send(map[string]any{"type": "mouse", "event": "down", "x": 1, "y": 1, "button": "left", "seq": 1})
			c.send(map[string]any{"type": "text", "text": "hello"})
			c.send(map[string]any{"type": "navigate", "url": "https://example.com"})
			if m := c.text("error"); m["message"] != "this live view is read-only" {
				t.Errorf("error = %v", m)
			}
			eventually(t, "the screencast", func() bool { cast, _ := fb.state(); return cast != "" })
			for _, m := range []string{"Input.dispatchMouseEvent", "Input.insertText", "Page.navigate"} {
				if n := len(fb.commands(m)); n != 0 {
					t.Errorf("%s sent %d times on a read-only view", m, n)
				}
			}
		})
	}
}

func TestViewerFollowsTabs(t *testing.T) {
	const page3 = "AAAA0000AAAA0000AAAA0000AAAA0003"
	created := func(id, opener string) string {
		return `{"targetInfo":{"targetId":"` + id + `","type":"page","url":"about:blank","title":"","openerId":"` + opener + `"}}`
	}
	t.Run("new tab followed", func(t *testing.T) {
		e, fb := fakeEnv(t)
		c := dialViewer(t, e, e.token(t, e.create(t).ID, false), "")
		c.text("tabs")
		fb.event("Target.targetCreated", "", created(page3, ""))
		if tabs := c.text("tabs"); tabs["active"] != page3 || len(tabs["tabs"].([]any)) != 3 {
			t.Errorf("tabs after a new tab = %v", tabs)
		}
		fb.event("Target.targetDestroyed", "", `{"targetId":"`+page3+`"}`)
		if tabs := c.text("tabs"); tabs["active"] != fakePage2 || len(tabs["tabs"].([]any)) != 2 {
			t.Errorf("tabs after the tab closed = %v", tabs)
		}
	})
	t.Run("pinned", func(t *testing.T) {
		e, fb := fakeEnv(t)
		c := dialViewer(t, e, e.token(t, e.create(t).ID, false), "?page="+fakePage1+"&pin=1")
		if tabs := c.text("tabs"); tabs["active"] != fakePage1 {
			t.Errorf("active = %v; want the page asked for", tabs["active"])
		}
		fb.event("Target.targetCreated", "", created(page3, ""))
		if tabs := c.text("tabs"); tabs["active"] != fakePage1 {
			t.Errorf("a pinned view followed a new tab: %v", tabs)
		}
		fb.event("Target.targetCreated", "", created("AAAA0000AAAA0000AAAA0000AAAA0004", fakePage1))
		if tabs := c.text("tabs"); tabs["active"] != "AAAA0000AAAA0000AAAA0000AAAA0004" {
			t.Errorf("a popup of the tab shown was not followed: %v", tabs)
		}
	})
	t.Run("hidden tab brought to front", func(t *testing.T) {
		e, fb := fakeEnv(t)
		fb.hidden[fakePage1] = true
		c := dialViewer(t, e, e.token(t, e.create(t).ID, false), "")
		c.text("tabs")
		c.send(map[string]any{"type": "switch", "id": fakePage1})
		c.text("tabs")
		act := fb.commands("Target.activateTarget")
		if len(act) != 1 || params(t, act[0])["targetId"] != fakePage1 {
			t.Errorf("activateTarget = %+v", act)
		}
	})
	// F13: a read-only viewer does not change the session: it never brings a tab to
	// the front, so it stays on the tab it shows.
	t.Run("read-only viewer leaves the front tab", func(t *testing.T) {
		e, fb := fakeEnv(t)
		fb.hidden[fakePage1] = true
		c := dialViewer(t, e, e.token(t, e.create(t).ID, true), "")
		before := c.text("tabs")["active"]
		c.send(map[string]any{"type": "switch", "id": fakePage1})
		if tabs := c.text("tabs"); tabs["active"] != before {
			t.Errorf("active after a refused switch = %v; want %v", tabs["active"], before)
		}
		if act := fb.commands("Target.activateTarget"); len(act) != 0 {
			t.Errorf("a read-only viewer sent activateTarget: %+v", act)
		}
	})
}

// F13: a session has at most MaxViewersPerSession screencast viewers; the next is
// refused with 429 before any screencast starts.
func TestViewerCap(t *testing.T) {
	e, _ := fakeEnv(t)
	s := e.create(t)
	tok := e.token(t, s.ID, true)
	var first *viewerClient
	for i := range 10 {
		c := dialViewer(t, e, tok, "")
		c.text("hello")
		if i == 0 {
			first = c
		}
	}
	_, resp, err := websocket.Dial(t.Context(), e.wsURL("/debug/"+tok+"/screencast"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("11th viewer: %v, %v; want 429", err, resp)
	}
	// Another session has its own viewers.
	dialViewer(t, e, e.token(t, e.create(t).ID, true), "").text("hello")
	first.ws.Close(websocket.StatusNormalClosure, "")
	eventually(t, "a free place", func() bool { return e.srv.Viewers() == 10 })
	dialViewer(t, e, tok, "").text("hello")
}

func TestViewerEnds(t *testing.T) {
	t.Run("session released", func(t *testing.T) {
		e, _ := fakeEnv(t)
		s := e.create(t)
		c := dialViewer(t, e, e.token(t, s.ID, false), "")
		c.text("tabs")
		if _, err := e.m.ReleaseSession(t.Context(), e.projectID, s.ID); err != nil {
			t.Fatal(err)
		}
		if code := c.closeStatus(); code != closeEnded {
			t.Errorf("close code = %d; want %d", code, closeEnded)
		}
	})
	t.Run("token expires", func(t *testing.T) {
		e, _ := fakeEnv(t)
		s := e.create(t)
		lv, err := e.m.LiveView(t.Context(), e.projectID, s.ID, 2*time.Second, false)
		if err != nil {
			t.Fatal(err)
		}
		c := dialViewer(t, e, lv.Token, "")
		if code := c.closeStatus(); code != closeExpired {
			t.Errorf("close code = %d; want %d", code, closeExpired)
		}
	})
	t.Run("server closes", func(t *testing.T) {
		e, _ := fakeEnv(t)
		c := dialViewer(t, e, e.token(t, e.create(t).ID, false), "")
		c.text("tabs")
		if err := e.srv.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if code := c.closeStatus(); code != websocket.StatusGoingAway {
			t.Errorf("close code = %d; want 1001", code)
		}
	})
}

func TestScreencastRefused(t *testing.T) {
	e, _ := fakeEnv(t)
	s := e.create(t)
	tok := e.token(t, s.ID, false)
	for _, tt := range []struct {
		name, token string
		want        int
	}{
		{name: "altered", token: tok[:len(tok)-2] + "xx", want: http.StatusUnauthorized},
		{name: "garbage", token: "nope", want: http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, resp, err := websocket.Dial(t.Context(), e.wsURL("/debug/"+tt.token+"/screencast"), nil)
			if err == nil || resp == nil || resp.StatusCode != tt.want {
				t.Errorf("dial = %v, %v; want HTTP %d", err, resp, tt.want)
			}
		})
	}
}

// BenchmarkFrameRelay measures one frame's trip through browserd, from a (fake)
// browser's Page.screencastFrame with a 40 KB JPEG to the viewer's websocket, the
// viewer's ack included.
func BenchmarkFrameRelay(b *testing.B) {
	e, fb := fakeEnv(b)
	c := dialViewer(b, e, e.token(b, e.create(b).ID, false), "")
	c.text("tabs")
	c.send(map[string]any{"type": "viewport", "width": 1280, "height": 720})
	eventually(b, "the screencast", func() bool { cast, _ := fb.state(); return cast != "" })
	jpeg := make([]byte, 40<<10)
	rand.Read(jpeg)
	data := base64.StdEncoding.EncodeToString(jpeg)
	b.SetBytes(int64(len(jpeg)))
	b.ResetTimer()
	for i := range b.N {
		fb.frameData(i+1, data)
		f := c.frame()
		c.send(map[string]any{"type": "ack", "seq": f.Seq})
	}
}
