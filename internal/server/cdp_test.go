package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"testing"

	"github.com/coder/websocket"
)

// cdpClient is a minimal CDP client over the gateway: one call at a time. It remembers
// the events it read past, so that a later waitEvent finds them.
type cdpClient struct {
	c      *websocket.Conn
	id     int
	events []cdpMessage
}

type cdpMessage struct {
	ID        int             `json:"id"`
	Method    string          `json:"method"`
	SessionID string          `json:"sessionId"`
	Params    json.RawMessage `json:"params"`
	Result    json.RawMessage `json:"result"`
	Error     *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// dialCDP opens a websocket to url. On a refused upgrade it returns the HTTP response.
func dialCDP(ctx context.Context, url string) (*cdpClient, *http.Response, error) {
	c, resp, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(64 << 20)
	return &cdpClient{c: c}, resp, nil
}

// mustDial opens a CDP connection or fails the test; Cleanup closes it.
func mustDial(t testing.TB, ctx context.Context, url string) *cdpClient {
	t.Helper()
	c, resp, err := dialCDP(ctx, url)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: HTTP %d: %s", redact(url), status, redactErr(err))
	}
	t.Cleanup(func() { c.c.CloseNow() }) // the test may have closed it already
	return c
}

// redact drops the query (credentials) of a connect URL for messages.
func redact(u string) string {
	for i := range len(u) {
		if u[i] == '?' {
			return u[:i] + "?…"
		}
	}
	return u
}

func (c *cdpClient) read(ctx context.Context) (cdpMessage, error) {
	_, data, err := c.c.Read(ctx)
	if err != nil {
		return cdpMessage{}, err
	}
	var m cdpMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return cdpMessage{}, fmt.Errorf("decode CDP message %.200s: %w", data, err)
	}
	return m, nil
}

// errTargetCrashed is call's error when the target of the session crashed (after
// Inspector.enable) before it answered.
var errTargetCrashed = errors.New("target crashed")

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
		m, err := c.read(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		if m.ID != c.id {
			if sessionID != "" && m.SessionID == sessionID && m.Method == "Inspector.targetCrashed" {
				return fmt.Errorf("%s: %w", method, errTargetCrashed) // no answer will come
			}
			if m.Method != "" {
				c.events = append(c.events, m)
			}
			continue
		}
		if m.Error != nil {
			return fmt.Errorf("%s: %s", method, m.Error.Message)
		}
		if out == nil {
			return nil
		}
		return json.Unmarshal(m.Result, out)
	}
}

// waitEvent returns once an event method for sessionID arrived (or had arrived).
func (c *cdpClient) waitEvent(ctx context.Context, sessionID, method string) error {
	for i, m := range c.events {
		if m.Method == method && m.SessionID == sessionID {
			c.events = c.events[i+1:]
			return nil
		}
	}
	c.events = nil
	for {
		m, err := c.read(ctx)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", method, err)
		}
		if m.Method == method && m.SessionID == sessionID {
			return nil
		}
	}
}

// attachPage attaches (flattened) to the browser's one open page and returns the CDP
// session id. It fails when the browser does not have exactly one page (spec §4.1: one
// default context with one open page).
func (c *cdpClient) attachPage(ctx context.Context) (string, error) {
	var targets struct {
		TargetInfos []struct {
			TargetID string `json:"targetId"`
			Type     string `json:"type"`
		} `json:"targetInfos"`
	}
	if err := c.call(ctx, "", "Target.getTargets", nil, &targets); err != nil {
		return "", err
	}
	var pages []string
	for _, ti := range targets.TargetInfos {
		if ti.Type == "page" {
			pages = append(pages, ti.TargetID)
		}
	}
	if len(pages) != 1 {
		return "", fmt.Errorf("browser has %d pages; want 1", len(pages))
	}
	var res struct {
		SessionID string `json:"sessionId"`
	}
	err := c.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": pages[0], "flatten": true}, &res)
	return res.SessionID, err
}

// gotoAndTitle navigates the page of CDP session sid to url, waits for its load event
// and returns document.title.
func (c *cdpClient) gotoAndTitle(ctx context.Context, sid, url string) (string, error) {
	if err := c.call(ctx, sid, "Page.enable", nil, nil); err != nil {
		return "", err
	}
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := c.call(ctx, sid, "Page.navigate", map[string]any{"url": url}, &nav); err != nil {
		return "", err
	}
	if nav.ErrorText != "" {
		return "", errors.New("Page.navigate: " + nav.ErrorText)
	}
	if err := c.waitEvent(ctx, sid, "Page.loadEventFired"); err != nil {
		return "", err
	}
	var ev struct {
		Result struct {
			Value string `json:"value"`
		} `json:"result"`
	}
	err := c.call(ctx, sid, "Runtime.evaluate", map[string]any{"expression": "document.title", "returnByValue": true}, &ev)
	return ev.Result.Value, err
}

// version calls Browser.getVersion: a command that needs a live browser behind the relay.
func (c *cdpClient) version(ctx context.Context) (string, error) {
	var v struct {
		Product string `json:"product"`
	}
	err := c.call(ctx, "", "Browser.getVersion", nil, &v)
	return v.Product, err
}

// waitClosed reads (and drops) messages until the connection ends, and returns why.
func waitClosed(ctx context.Context, c *cdpClient) error {
	for {
		if _, _, err := c.c.Read(ctx); err != nil {
			return err
		}
	}
}

// signingKeyParam matches the credentials in a URL inside an error message.
var credentialParam = regexp.MustCompile(`(signingKey|apiKey)=[^&\s"]*`)

// redactErr returns err's message without the credentials of the URL in it.
func redactErr(err error) string {
	return credentialParam.ReplaceAllString(err.Error(), "$1=…")
}
