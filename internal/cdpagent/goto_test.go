package cdpagent

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdp"
)

// pwClient is a CDP client that navigates like Playwright's page.goto: Page.navigate,
// then the wait for the navigation's own document (loaderId) to commit and fire "load".
// Another document committing in the frame first is an "interrupted" error, as in
// Playwright (frames.ts).
type pwClient struct {
	c      *cdp.Conn
	mu     sync.Mutex
	events []cdp.Event
	notify chan struct{}
}

func newPWClient(t *testing.T, b bb.Browser) *pwClient {
	t.Helper()
	pc := &pwClient{notify: make(chan struct{}, 1)}
	c, err := cdp.Dial(t.Context(), b.DevToolsURL(), cdp.Options{OnEvent: func(m cdp.Event) {
		pc.mu.Lock()
		pc.events = append(pc.events, m)
		pc.mu.Unlock()
		select {
		case pc.notify <- struct{}{}:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	pc.c = c
	return pc
}

// page opens a tab and enables the events page.goto waits on; it returns the session
// and the main frame's id.
func (pc *pwClient) page(t *testing.T) (sid, frameID string) {
	t.Helper()
	cl := &client{c: pc.c}
	sid = cl.newPage(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for _, m := range []string{"Page.enable", "Runtime.enable"} {
		if err := pc.c.Call(ctx, sid, m, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := pc.c.Call(ctx, sid, "Page.setLifecycleEventsEnabled", map[string]any{"enabled": true}, nil); err != nil {
		t.Fatal(err)
	}
	var tree struct {
		FrameTree struct {
			Frame struct {
				ID string `json:"id"`
			} `json:"frame"`
		} `json:"frameTree"`
	}
	if err := pc.c.Call(ctx, sid, "Page.getFrameTree", nil, &tree); err != nil {
		t.Fatal(err)
	}
	return sid, tree.FrameTree.Frame.ID
}

// goto navigates and returns "" once the new document has loaded, or the error a
// Playwright client would throw.
func (pc *pwClient) goTo(t *testing.T, sid, frameID, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	// Like Playwright (frames.ts gotoImpl), count the commits from the moment
	// Page.navigate is sent, not only those after its answer.
	pc.mu.Lock()
	seen := len(pc.events)
	pc.mu.Unlock()
	var nav struct {
		LoaderID  string `json:"loaderId"`
		ErrorText string `json:"errorText"`
	}
	if err := pc.c.Call(ctx, sid, "Page.navigate", map[string]any{"url": url, "frameId": frameID}, &nav); err != nil {
		return err.Error()
	}
	if nav.ErrorText != "" {
		return nav.ErrorText
	}
	committed := false
	for {
		pc.mu.Lock()
		evs := pc.events[seen:]
		seen = len(pc.events)
		pc.mu.Unlock()
		for _, m := range evs {
			if m.SessionID != sid {
				continue
			}
			switch m.Method {
			case "Page.frameNavigated":
				var p struct {
					Frame struct {
						ID, LoaderID, URL string
					} `json:"frame"`
				}
				if json.Unmarshal(m.Params, &p) == nil && p.Frame.ID == frameID {
					if p.Frame.LoaderID != nav.LoaderID {
						return fmt.Sprintf("navigation to %q is interrupted by another navigation to %q", url, p.Frame.URL)
					}
					committed = true
				}
			case "Page.lifecycleEvent":
				var p struct {
					FrameID, LoaderID, Name string
				}
				if json.Unmarshal(m.Params, &p) == nil && committed && p.FrameID == frameID && p.LoaderID == nav.LoaderID && p.Name == "load" {
					return ""
				}
			case "Inspector.targetCrashed":
				return "page crashed"
			}
		}
		select {
		case <-pc.notify:
		case <-ctx.Done():
			return fmt.Sprintf("navigation to %q: no load event", url)
		}
	}
}

// TestAllowedDomainsTabStaysUsable is the reproduction of the issue "after a navigation
// blocked by allowedDomains, the next navigation in the same tab fails": a Playwright-like
// client alternates allowed and blocked navigations in one tab, with no pause between.
func TestAllowedDomainsTabStaysUsable(t *testing.T) {
	srv, hdr := pageServer(t)
	port := srv.Listener.Addr().String()
	port = port[strings.LastIndex(port, ":")+1:]
	u := func(host, path string) string { return "http://" + host + ":" + port + path }
	e := bb.EmulationFor(bb.BrowserSettings{AllowedDomains: []string{"allowed.test"}}, bb.Viewport{}, false)
	b := startBrowser(t, e, bb.Viewport{Width: 1280, Height: 720}, "--host-resolver-rules=MAP *.test 127.0.0.1")
	pc := newPWClient(t, b)
	sid, frame := pc.page(t)
	for i := range 5 {
		if got := pc.goTo(t, sid, frame, u("allowed.test", fmt.Sprintf("/ok%d", i))); got != "" {
			t.Fatalf("round %d: allowed navigation: %s", i, got)
		}
		if got, want := pc.goTo(t, sid, frame, u("other.test", fmt.Sprintf("/no%d", i))), "net::ERR_ABORTED"; got != want {
			t.Fatalf("round %d: blocked navigation: %q; want %q", i, got, want)
		}
	}
	cl := &client{c: pc.c}
	var path string
	cl.eval(t, sid, "location.pathname", &path)
	if path != "/ok4" {
		t.Errorf("after a blocked navigation the tab shows %s; want the page before it, /ok4", path)
	}
	// A navigation the page starts itself (a link) is blocked the same way.
	var clicked bool
	cl.eval(t, sid, `(() => { const a = document.createElement("a"); a.href = "`+u("other.test", "/link")+`"; document.body.append(a); a.click(); return true })()`, &clicked)
	if got := pc.goTo(t, sid, frame, u("allowed.test", "/last")); got != "" {
		t.Fatalf("allowed navigation after the last block: %s", got)
	}
	cl.eval(t, sid, "location.pathname", &path)
	if path != "/last" {
		t.Errorf("the tab shows %s; want /last", path)
	}
	for i := range 5 {
		if hdr.get(fmt.Sprintf("/no%d", i)) != nil || hdr.get("/link") != nil {
			t.Errorf("a blocked navigation reached the server")
		}
	}
}
