package recorder

import (
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// TestRecorderDocumentWrite: a page whose document is replaced through
// document.open()/write()/close() (Playwright's setContent) is recorded too, with input
// after it.
func TestRecorderDocumentWrite(t *testing.T) {
	b := chrometest.Start(t, bb.LaunchOptions{})
	srv := testServer(t)
	var got sink
	r := New(Config{FlushInterval: 50 * time.Millisecond})
	stop, err := r.Start(t.Context(), b.DevToolsURL(), bb.AgentOptions{SessionID: "s", Record: true, Events: got.add})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c := newClient(t, b.DevToolsURL())
	for _, start := range []string{srv.URL + "/page", "about:blank"} {
		metas := func() (n int) { // of about:blank and of /page: the recorder has started in it
			got.mu.Lock()
			defer got.mu.Unlock()
			for _, e := range got.events {
				if e.Type == bb.RRWebMeta && strings.Contains(string(e.Data), `"href":"`+start) {
					n++
				}
			}
			return n
		}
		before := metas()
		s := c.page(t, start)
		waitFor(t, "the recorder in "+start, func() bool { return metas() > before })
		mark := "written-" + strings.TrimPrefix(strings.TrimPrefix(start, srv.URL), "about:")
		c.eval(t, s, `document.open(); document.write('<!doctype html><p id=w>`+mark+`</p><input id=i>'); document.close(); 1`)
		waitFor(t, "the written document "+mark, func() bool {
			return got.find(func(e bb.RecordingEvent) bool {
				return (e.Type == bb.RRWebFullSnapshot || e.Type == bb.RRWebIncrementalSnapshot) && strings.Contains(string(e.Data), mark)
			})
		})
		c.eval(t, s, `document.getElementById('w').textContent = 'changed-`+mark+`'; 1`)
		waitFor(t, "a DOM change after the write "+mark, func() bool {
			return got.find(func(e bb.RecordingEvent) bool {
				return e.Type == bb.RRWebIncrementalSnapshot && strings.Contains(string(e.Data), "changed-"+mark)
			})
		})
		c.eval(t, s, `document.getElementById('i').focus(); 1`)
		if err := c.Call(t.Context(), s, "Input.insertText", map[string]any{"text": "typed-" + mark}, nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "input after the write "+mark, func() bool {
			return got.find(func(e bb.RecordingEvent) bool {
				return e.Type == bb.RRWebIncrementalSnapshot && strings.Contains(string(e.Data), "typed-"+mark)
			})
		})
	}
}
