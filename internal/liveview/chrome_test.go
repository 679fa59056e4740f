package liveview

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/browserd/browserd/internal/chrome/chrometest"
)

const testPage = `document.body.innerHTML = '<button id="b" style="position:absolute;left:100px;top:100px;width:200px;height:100px">b</button>' +
	'<input id="i" style="position:absolute;left:100px;top:300px;width:300px;height:40px">';
window.clicks = 0; document.getElementById('b').onclick = () => window.clicks++; 'ok'`

// evaluate runs a script in a page of the browser over its own CDP connection.
func evaluate(t *testing.T, browserURL, targetID, expr string) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := dialCDP(ctx, browserURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := c.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": targetID, "flatten": true}, &att); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
	}
	if err := c.call(ctx, att.SessionID, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res); err != nil {
		t.Fatal(err)
	}
	return res.Result.Value
}

// TestChrome drives a real Chromium through a live view: frames arrive, a click and
// typed text reach the page, and DevTools (frontend and websocket) works through the
// proxy. Every browser process and file is gone afterwards.
func TestChrome(t *testing.T) {
	l := chrometest.RealLauncher(t)
	t.Cleanup(func() { chrometest.AssertNoLeaks(t, l.RunDir()) }) // after the env's cleanup
	e := newTestEnv(t, l)
	s := e.create(t)
	lv, err := e.m.LiveView(t.Context(), e.projectID, s.ID, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(lv.Pages) != 1 {
		t.Fatalf("pages = %+v; want the default page", lv.Pages)
	}
	target, err := e.m.OpenLiveView(t.Context(), lv.Token)
	if err != nil {
		t.Fatal(err)
	}
	pageID := lv.Pages[0].ID
	if got := evaluate(t, target.BrowserURL, pageID, testPage); got != "ok" {
		t.Fatalf("set up page: %v", got)
	}

	c := dialViewer(t, e, lv.Token, "")
	if tabs := c.text("tabs"); tabs["active"] != pageID {
		t.Fatalf("tabs = %v", tabs)
	}
	c.send(map[string]any{"type": "viewport", "width": 640, "height": 360})
	f := c.frame()
	if len(f.JPEG) < 100 || f.JPEG[0] != 0xff || f.JPEG[1] != 0xd8 {
		t.Fatalf("frame is not a JPEG: % x", f.JPEG[:min(len(f.JPEG), 8)])
	}
	if w := f.Metadata["deviceWidth"]; w != 1280.0 {
		t.Errorf("deviceWidth = %v; want the session's 1280", w)
	}
	c.send(map[string]any{"type": "ack", "seq": f.Seq})

	for _, ev := range []string{"down", "up"} {
		c.send(map[string]any{"type": "mouse", "event": ev, "x": 200, "y": 150, "button": "left", "buttons": map[string]int{"down": 1, "up": 0}[ev], "clickCount": 1, "seq": 1})
		if in := c.text("input"); in["failed"] != false {
			t.Fatalf("mouse %s failed: %v", ev, in)
		}
	}
	if got := evaluate(t, target.BrowserURL, pageID, "window.clicks"); got != 1.0 {
		t.Errorf("clicks = %v; want 1", got)
	}
	c.send(map[string]any{"type": "mouse", "event": "down", "x": 150, "y": 320, "button": "left", "buttons": 1, "clickCount": 1})
	c.send(map[string]any{"type": "mouse", "event": "up", "x": 150, "y": 320, "button": "left", "clickCount": 1})
	for _, k := range "hi!" {
		c.send(map[string]any{"type": "key", "event": "down", "key": string(k), "text": string(k), "seq": 2})
		c.text("input")
		c.send(map[string]any{"type": "key", "event": "up", "key": string(k)})
	}
	c.send(map[string]any{"type": "text", "text": " pasted", "seq": 3})
	c.text("input")
	if got := evaluate(t, target.BrowserURL, pageID, "document.getElementById('i').value"); got != "hi! pasted" {
		t.Errorf("input value = %q; want %q", got, "hi! pasted")
	}

	// DevTools: the frontend through the proxy, and its websocket to the page.
	resp, body := get(t, e.hs.URL+"/debug/"+lv.Token+"/devtools/inspector.html", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "connect-src 'self'") {
		t.Fatalf("inspector.html = %d %.300s", resp.StatusCode, body)
	}
	if resp, _ := get(t, e.hs.URL+"/debug/"+lv.Token+"/devtools/entrypoints/inspector/inspector.js", nil); resp.StatusCode != 200 {
		t.Errorf("inspector.js = %d", resp.StatusCode)
	}
	for _, path := range []string{"/devtools/page/" + pageID, "/devtools/browser"} {
		ws, _, err := websocket.Dial(t.Context(), e.wsURL("/debug/"+lv.Token+path), nil)
		if err != nil {
			t.Fatalf("dial %s: %v", path, err)
		}
		ws.SetReadLimit(1 << 20)
		msg := `{"id":1,"method":"Runtime.evaluate","params":{"expression":"6*7","returnByValue":true}}`
		if path == "/devtools/browser" {
			msg = `{"id":1,"method":"Browser.getVersion"}`
		}
		if err := ws.Write(t.Context(), websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, b, err := ws.Read(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var reply map[string]any
		json.Unmarshal(b, &reply)
		if reply["id"] != 1.0 || reply["result"] == nil || (path != "/devtools/browser" && !strings.Contains(string(b), `"value":42`)) {
			t.Errorf("%s answered %s", path, b)
		}
		ws.Close(websocket.StatusNormalClosure, "")
	}

	// Nobody watches: the viewer's browser connection is gone.
	c.ws.Close(websocket.StatusNormalClosure, "")
	eventually(t, "the viewer to leave", func() bool { return e.srv.Viewers() == 0 })
}
