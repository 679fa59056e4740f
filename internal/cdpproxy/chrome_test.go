package cdpproxy

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/browserd/browserd/internal/cdp"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// cdpClient is the tests' CDP client, with helpers for pages.
type cdpClient struct{ *cdp.Conn }

// dialCDP connects a cdpClient to url for the test's length.
func dialCDP(t testing.TB, url string) *cdpClient { return &cdpClient{chrometest.Dial(t, url)} }

// call sends method to sessionID ("" for the browser) and decodes the result into out.
func (c *cdpClient) call(ctx context.Context, sessionID, method string, params, out any) error {
	return c.Call(ctx, sessionID, method, params, out)
}

type targetInfo struct {
	TargetID string `json:"targetId"`
	Type     string `json:"type"`
	URL      string `json:"url"`
}

// pages returns the browser's page targets.
func (c *cdpClient) pages(ctx context.Context) ([]targetInfo, error) {
	var res struct {
		TargetInfos []targetInfo `json:"targetInfos"`
	}
	if err := c.call(ctx, "", "Target.getTargets", nil, &res); err != nil {
		return nil, err
	}
	var pages []targetInfo
	for _, ti := range res.TargetInfos {
		if ti.Type == "page" {
			pages = append(pages, ti)
		}
	}
	return pages, nil
}

// attachPage attaches to the first page (flattened) and returns the CDP session id.
func (c *cdpClient) attachPage(ctx context.Context) (string, error) {
	pages, err := c.pages(ctx)
	if err != nil {
		return "", err
	}
	if len(pages) == 0 {
		return "", fmt.Errorf("no page target")
	}
	var res struct {
		SessionID string `json:"sessionId"`
	}
	err = c.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": pages[0].TargetID, "flatten": true}, &res)
	return res.SessionID, err
}

// TestChromeEndToEnd connects to a real Chromium session through the gateway.
func TestChromeEndToEnd(t *testing.T) {
	l := chrometest.RealLauncher(t)
	t.Cleanup(func() { chrometest.AssertNoLeaks(t, l.RunDir()) }) // after the Manager's Close
	md := newManaged(t, l)
	s := md.create(t, false)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	c := dialCDP(t, md.connectURL(s.ID))
	pages, err := c.pages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 1 {
		t.Fatalf("Target.getTargets shows %d pages; want 1: %+v", len(pages), pages)
	}
	sessionID, err := c.attachPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Result struct {
			Value int `json:"value"`
		} `json:"result"`
	}
	if err := c.call(ctx, sessionID, "Runtime.evaluate", map[string]any{"expression": "6*7", "returnByValue": true}, &res); err != nil {
		t.Fatal(err)
	}
	if res.Result.Value != 42 {
		t.Errorf("Runtime.evaluate(6*7) = %d; want 42", res.Result.Value)
	}
	// A large answer: a 4 MB string.
	var big struct {
		Result struct {
			Value string `json:"value"`
		} `json:"result"`
	}
	if err := c.call(ctx, sessionID, "Runtime.evaluate", map[string]any{"expression": "'x'.repeat(4e6)", "returnByValue": true}, &big); err != nil {
		t.Fatal(err)
	}
	if len(big.Result.Value) != 4e6 {
		t.Errorf("4 MB evaluate returned %d bytes", len(big.Result.Value))
	}
	c.Close()
	if err := c.Err(); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("close: %v; want a normal closure", err)
	}
	waitFor(t, "session completed after the last client left", func() bool { return md.status(t, s.ID) == "COMPLETED" })
}

// TestChromeBrowserClose sends Browser.close through the gateway: Chromium exits, the
// session ends COMPLETED, and the client gets a normal close.
func TestChromeBrowserClose(t *testing.T) {
	l := chrometest.RealLauncher(t)
	t.Cleanup(func() { chrometest.AssertNoLeaks(t, l.RunDir()) })
	md := newManaged(t, l)
	s := md.create(t, true)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := dial(t, md.connectURL(s.ID))
	readErr := make(chan error, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for { // Ping needs a concurrent reader to see the pong
			if _, _, err := c.Read(ctx); err != nil {
				readErr <- err
				return
			}
		}
	})
	if err := c.Ping(ctx); err != nil {
		t.Errorf("ping through the gateway to Chromium: %v", err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"id":1,"method":"Browser.close"}`)); err != nil {
		t.Fatal(err)
	}
	err := <-readErr
	if code := websocket.CloseStatus(err); code != websocket.StatusNormalClosure {
		t.Errorf("read ended with %v; want a 1000 close", err)
	}
	waitFor(t, "session completed", func() bool { return md.status(t, s.ID) == "COMPLETED" })
	got, err := md.m.Session(ctx, md.projectID, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.EndReason != "browser closed by a client" {
		t.Errorf("end reason = %q; want %q", got.EndReason, "browser closed by a client")
	}
}
