package recorder

import (
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// TestRecorderOffTheLoadEvent is issue 16's item 1: the recorder starts outside the
// load event (rrweb's own start took its full snapshot in the load event, which every
// client waiting for 'load' waited for): once the document is parsed, while the page
// waits for a slow image, and the DOM the page changes after it is recorded too. The
// recording stays complete: the DOMContentLoaded and Load events, the full snapshot,
// input with passwords masked, scrolling. And it adds no iframe to the page (its rrweb
// used to, at each start).
func TestRecorderOffTheLoadEvent(t *testing.T) {
	b := chrometest.Start(t, bb.LaunchOptions{})
	mux := http.NewServeMux()
	mux.HandleFunc("/form", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>form</title><script>window.frames_ = 0;
new MutationObserver((l) => l.forEach((r) => r.addedNodes.forEach((n) => { if (n.nodeName === 'IFRAME') frames_++; })))
	.observe(document, { childList: true, subtree: true });</script><p>form-page</p>
<input id="name"><input id="pw" type="password"><div style="height:5000px"></div>
<img src="/slow.png"><script>
// A load event that lasts: a snapshot taken inside it would fall between its start and end.
addEventListener('load', () => { const t = performance.now(); while (performance.now() - t < 30); });
document.addEventListener('DOMContentLoaded', () => setTimeout(() => {
	const p = document.createElement('p'); p.textContent = 'added-while-loading'; document.body.append(p);
}, 100));
</script>`)
	})
	mux.HandleFunc("/slow.png", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Second) // the page waits for it: idle time before load
		w.Header().Set("Content-Type", "image/png")
		png.Encode(w, image.NewGray(image.Rect(0, 0, 1, 1)))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	var got sink
	r := New(Config{FlushInterval: 50 * time.Millisecond})
	stop, err := r.Start(t.Context(), b.DevToolsURL(), bb.AgentOptions{SessionID: "s", Record: true, Events: got.add})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c := newClient(t, b.DevToolsURL())
	s1 := c.page(t, srv.URL+"/form")
	seen := func(what string, f func(bb.RecordingEvent) bool) {
		t.Helper()
		waitFor(t, what, func() bool { return got.find(f) })
	}
	seen("the page's full snapshot", func(e bb.RecordingEvent) bool {
		return e.Type == bb.RRWebFullSnapshot && strings.Contains(string(e.Data), "form-page")
	})
	// DOMContentLoaded travels with the snapshot, Load after it (unless the tab had
	// loaded before the recorder was armed in it: then neither).
	if got.find(func(e bb.RecordingEvent) bool { return e.Type == 0 }) {
		seen("the Load event", func(e bb.RecordingEvent) bool { return e.Type == 1 })
	}
	// The snapshot was not taken inside the load event (event times are whole ms).
	var loadStart, loadEnd float64
	waitFor(t, "the load event's end", func() bool {
		_, err := fmt.Sscan(c.eval(t, s1, `(() => { const n = performance.getEntriesByType('navigation')[0];
			return n.loadEventEnd > 0 ? (performance.timeOrigin + n.loadEventStart) + ' ' + (performance.timeOrigin + n.loadEventEnd) : '' })()`),
			&loadStart, &loadEnd)
		return err == nil
	})
	got.mu.Lock()
	var snap, dcl, load int64
	for _, e := range got.events {
		switch {
		case e.Type == bb.RRWebFullSnapshot && snap == 0 && strings.Contains(string(e.Data), "form-page"):
			snap = e.Timestamp
		case e.Type == 0 && dcl == 0: // DomContentLoaded
			dcl = e.Timestamp
		case e.Type == 1 && load == 0: // Load
			load = e.Timestamp
		}
	}
	got.mu.Unlock()
	if float64(snap) > loadStart+1 && float64(snap) < loadEnd-1 {
		t.Errorf("full snapshot at %d, inside the load event (%.1f to %.1f)", snap, loadStart, loadEnd)
	}
	// Taken in the second the page waited for its image, not after the load event where
	// a client's next navigation would wait for it.
	if dcl != 0 && float64(snap) > loadStart {
		t.Errorf("full snapshot at %d, after the load event started at %.1f: want it while the page waits for its image", snap, loadStart)
	}
	switch {
	case dcl == 0 && load == 0:
		// The tab loaded before the recorder was armed in it (seen under -race on a
		// loaded machine): the recorder started at once, with no load to report.
		t.Logf("the page was armed after its load")
	case dcl == 0 || load == 0 || dcl > load || dcl > snap:
		t.Errorf("DOMContentLoaded at %d, Load at %d, snapshot at %d: want all, the snapshot and Load after DOMContentLoaded", dcl, load, snap)
	default:
		t.Logf("DOMContentLoaded at %d, snapshot at %d, load event %.1f to %.1f", dcl, snap, loadStart, loadEnd)
	}
	// What the page added after the snapshot, while it was still loading, is recorded.
	seen("the paragraph added while the page loaded", func(e bb.RecordingEvent) bool {
		return strings.Contains(string(e.Data), "added-while-loading")
	})
	// The recorder added nothing to the page: rrweb 2.2.2 added and removed a hidden
	// iframe at each start (scripts/rrweb/build.sh).
	if n := c.eval(t, s1, `frames_`); n != "0" {
		t.Errorf("the page saw %s iframes added", n)
	}
	// Input is recorded, a password masked.
	for _, id := range []string{"name", "pw"} {
		c.eval(t, s1, fmt.Sprintf(`document.getElementById(%q).focus(); 1`, id))
		if err := c.Call(t.Context(), s1, "Input.insertText", map[string]any{"text": "secret-" + id}, nil); err != nil {
			t.Fatal(err)
		}
	}
	seen("the text input", func(e bb.RecordingEvent) bool {
		return e.Type == bb.RRWebIncrementalSnapshot && strings.Contains(string(e.Data), "secret-name")
	})
	seen("the masked password input", func(e bb.RecordingEvent) bool {
		return e.Type == bb.RRWebIncrementalSnapshot && strings.Contains(string(e.Data), `"text":"*********"`)
	})
	if got.find(func(e bb.RecordingEvent) bool { return strings.Contains(string(e.Data), "secret-pw") }) {
		t.Error("the password is in the recording")
	}
	// Scrolling is recorded (rrweb's incremental source 3).
	c.eval(t, s1, `window.scrollTo(0, 1234); 1`)
	seen("the scroll", func(e bb.RecordingEvent) bool {
		var d struct {
			Source int     `json:"source"`
			Y      float64 `json:"y"`
		}
		return e.Type == bb.RRWebIncrementalSnapshot && json.Unmarshal(e.Data, &d) == nil && d.Source == 3 && d.Y == 1234
	})
}
