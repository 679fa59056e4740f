package recorder

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// TestRecorderRecordOnlyBuild covers what the record-only rrweb build
// (scripts/rrweb/patch.mjs) keeps, next to what it removed: style sheets are recorded as
// their text (postcss is gone; it only rewrote CSS for replay), same-origin iframes and
// shadow roots are recorded (the cross-origin iframe part is gone), a page with a drawn
// canvas is recorded without canvas events (canvas recording was never on), and no
// password value reaches the recording, neither one in the HTML, nor one added later,
// nor one typed.
func TestRecorderRecordOnlyBuild(t *testing.T) {
	b := chrometest.Start(t, bb.LaunchOptions{})
	mux := http.NewServeMux()
	mux.HandleFunc("/parts", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>parts</title>
<style>.hov:hover { color: red } @media (max-device-width: 800px) { p { color: blue } }</style>
<p class="hov">styled-mark</p>
<input id="pw" type="password" value="preset-secret">
<canvas id="cv" width="20" height="20"></canvas>
<iframe id="fr" srcdoc="<p>iframe-mark</p>"></iframe>
<div id="host"></div>
<script>
document.getElementById('cv').getContext('2d').fillRect(0, 0, 10, 10);
document.getElementById('host').attachShadow({ mode: 'open' }).innerHTML = '<p>shadow-mark</p>';
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
	c := newClient(t, b.DevToolsURL())
	s := c.page(t, srv.URL+"/parts")
	has := func(mark string) func() bool {
		return func() bool {
			return got.find(func(e bb.RecordingEvent) bool {
				return (e.Type == bb.RRWebFullSnapshot || e.Type == bb.RRWebIncrementalSnapshot) && strings.Contains(string(e.Data), mark)
			})
		}
	}
	waitFor(t, "the page", has("styled-mark"))
	waitFor(t, "the style sheet's text", has(".hov:hover"))
	waitFor(t, "the media query", has("max-device-width: 800px"))
	waitFor(t, "the same-origin iframe's document", has("iframe-mark"))
	waitFor(t, "the shadow root", has("shadow-mark"))
	waitFor(t, "the canvas element", has(`"tagName":"canvas"`))

	// A password field added later, with a value, and one typed into.
	c.eval(t, s, `const i = document.createElement('input'); i.type = 'password'; i.id = 'pw2';
i.setAttribute('value', 'added-secret'); document.body.append(i);
const p = document.createElement('p'); p.textContent = 'after-mark'; document.body.append(p); 1`)
	waitFor(t, "the added nodes", has("after-mark"))
	c.eval(t, s, `document.getElementById('pw2').focus(); 1`)
	if err := c.Call(t.Context(), s, "Input.insertText", map[string]any{"text": "typed-secret"}, nil); err != nil {
		t.Fatal(err)
	}
	typed := regexp.MustCompile(`"text":"[^"]{24}"`) // added-secret and typed-secret
	waitFor(t, "the typed password's input event", func() bool {
		return got.find(func(e bb.RecordingEvent) bool {
			return e.Type == bb.RRWebIncrementalSnapshot && typed.Match(e.Data)
		})
	})
	got.mu.Lock()
	defer got.mu.Unlock()
	for _, e := range got.events {
		for _, secret := range []string{"preset-secret", "added-secret", "typed-secret"} {
			if strings.Contains(string(e.Data), secret) {
				t.Errorf("the password %q is in the recording: %.300s", secret, e.Data)
			}
		}
		if e.Type == bb.RRWebIncrementalSnapshot && typed.Match(e.Data) && !strings.Contains(string(e.Data), `"text":"************************"`) {
			t.Errorf("the typed password is not masked: %.300s", e.Data)
		}
		var d struct {
			Source int `json:"source"`
		}
		if e.Type == bb.RRWebIncrementalSnapshot && json.Unmarshal(e.Data, &d) == nil && d.Source == 9 {
			t.Errorf("a canvas mutation event: canvas recording is not in the build")
		}
	}
}
