package cdpproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// cdpClient is a minimal CDP client: one call at a time; events are dropped.
type cdpClient struct {
	c  *websocket.Conn
	id int
}

// call sends method to sessionID ("" for the browser) and decodes the result into out.
func (c *cdpClient) call(ctx context.Context, sessionID, method string, params, out any) error {
	c.id++
	msg := map[string]any{"id": c.id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if sessionID != "" {
		msg["sessionId"] = sessionID
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	if err := c.c.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	for {
		_, data, err := c.c.Read(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		var resp struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(data, &resp); err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		if resp.ID != c.id {
			continue // an event
		}
		if resp.Error != nil {
			return fmt.Errorf("%s: %s", method, resp.Error.Message)
		}
		if out == nil {
			return nil
		}
		return json.Unmarshal(resp.Result, out)
	}
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

	cdp := &cdpClient{c: dial(t, md.connectURL(s.ID))}
	pages, err := cdp.pages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 1 {
		t.Fatalf("Target.getTargets shows %d pages; want 1: %+v", len(pages), pages)
	}
	sessionID, err := cdp.attachPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Result struct {
			Value int `json:"value"`
		} `json:"result"`
	}
	if err := cdp.call(ctx, sessionID, "Runtime.evaluate", map[string]any{"expression": "6*7", "returnByValue": true}, &res); err != nil {
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
	if err := cdp.call(ctx, sessionID, "Runtime.evaluate", map[string]any{"expression": "'x'.repeat(4e6)", "returnByValue": true}, &big); err != nil {
		t.Fatal(err)
	}
	if len(big.Result.Value) != 4e6 {
		t.Errorf("4 MB evaluate returned %d bytes", len(big.Result.Value))
	}
	if err := cdp.c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("close: %v", err)
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
