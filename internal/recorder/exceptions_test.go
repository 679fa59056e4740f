package recorder

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdp"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// TestRecorderThrowsNothing: the recorder serializes a page (its full snapshot, and the
// elements a mutation adds) without throwing a single exception. rrweb asked the isolated
// world's customElements (null there) about every element inside a try, one caught
// TypeError per element — most of the recorder's start on the renderer's main thread
// (scripts/rrweb/patch.mjs, patch 5). A debugger that pauses on every exception, caught ones
// too, counts them; the page itself throws none. The page's own custom element is recorded
// as an element all the same.
func TestRecorderThrowsNothing(t *testing.T) {
	b := chrometest.Start(t, bb.LaunchOptions{})
	mux := http.NewServeMux()
	mux.HandleFunc("/list", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>list</title><form><input name="u" value="alice"><button type="button">go</button></form>
<x-card id="card">card-mark</x-card><ul id="list"></ul>
<script>
customElements.define('x-card', class extends HTMLElement {});
const ul = document.getElementById('list');
for (let i = 0; i < 100; i++) { const li = document.createElement('li'); li.textContent = 'item ' + i; ul.append(li); }
</script>`)
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

	var mu sync.Mutex
	var thrown []string
	paused := make(chan string, 1000) // session ids to resume
	dbg, err := cdp.Dial(t.Context(), b.DevToolsURL(), cdp.Options{OnEvent: func(e cdp.Event) {
		if e.Method != "Debugger.paused" {
			return
		}
		var p struct {
			Reason     string `json:"reason"`
			CallFrames []struct {
				FunctionName string `json:"functionName"`
			} `json:"callFrames"`
			Data struct {
				Description string `json:"description"`
			} `json:"data"`
		}
		_ = json.Unmarshal(e.Params, &p) // a pause is counted either way
		fn := ""
		if len(p.CallFrames) > 0 {
			fn = p.CallFrames[0].FunctionName
		}
		mu.Lock()
		thrown = append(thrown, fmt.Sprintf("%s in %s: %.120s", p.Reason, fn, p.Data.Description))
		mu.Unlock()
		select {
		case paused <- e.SessionID:
		default: // counted; a page stuck in a pause fails the waits below
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dbg.CloseNow)
	go func() { // the read loop must not wait for the browser: resume from here
		for {
			select {
			case id := <-paused:
				_ = dbg.Send(t.Context(), id, "Debugger.resume", nil, func(json.RawMessage, error) {})
			case <-t.Context().Done():
				return
			}
		}
	}()
	c := &client{dbg}
	s := c.page(t, "about:blank")
	for _, m := range []struct {
		method string
		params any
	}{
		{"Debugger.enable", nil},
		{"Debugger.setPauseOnExceptions", map[string]any{"state": "all"}},
		{"Page.navigate", map[string]any{"url": srv.URL + "/list"}},
	} {
		if err := c.Call(t.Context(), s, m.method, m.params, nil); err != nil {
			t.Fatal(m.method, err)
		}
	}
	has := func(mark string) func() bool {
		return func() bool {
			return got.find(func(e bb.RecordingEvent) bool {
				return (e.Type == bb.RRWebFullSnapshot || e.Type == bb.RRWebIncrementalSnapshot) && strings.Contains(string(e.Data), mark)
			})
		}
	}
	waitFor(t, "the page's snapshot", has("item 99"))
	c.eval(t, s, `for (let i = 0; i < 20; i++) { const li = document.createElement('li'); li.textContent = 'added ' + i; list.append(li); } 1`)
	waitFor(t, "the added elements", has("added 19"))
	if !has(`"tagName":"x-card"`)() || !has("card-mark")() {
		t.Error("the custom element is not in the recording")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(thrown) > 0 {
		t.Errorf("%d exceptions thrown while recording, first: %s", len(thrown), thrown[0])
	}
}
