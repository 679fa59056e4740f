package cdp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// httpTimeout bounds a request to a DevTools HTTP endpoint when ctx allows longer: a
// browser that does not answer its loopback port in that time is not going to.
const httpTimeout = 10 * time.Second

// maxHTTPBody bounds the answers read from the DevTools HTTP endpoints: a list of a few
// hundred targets is far less.
const maxHTTPBody = 8 << 20

// VersionInfo is the answer of /json/version.
type VersionInfo struct {
	Browser              string `json:"Browser"` // "HeadlessChrome/156.0.8078.108"
	ProtocolVersion      string `json:"Protocol-Version"`
	UserAgent            string `json:"User-Agent"`
	V8Version            string `json:"V8-Version"`
	WebKitVersion        string `json:"WebKit-Version"`
	WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"` // the browser-level websocket
}

// Target is one entry of /json/list: a page, iframe, worker, the browser UI's own….
type Target struct {
	ID                   string `json:"id"`
	Type                 string `json:"type"` // "page", "iframe", "service_worker", …
	URL                  string `json:"url"`
	Title                string `json:"title"`
	FaviconURL           string `json:"faviconUrl"`
	Description          string `json:"description"`
	WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
	DevToolsFrontendURL  string `json:"devtoolsFrontendUrl"`
}

// Version returns the browser's /json/version, given its DevTools HTTP base
// (http://127.0.0.1:PORT; see HTTPBase).
func Version(ctx context.Context, httpBase string) (*VersionInfo, error) {
	v := new(VersionInfo)
	if err := getJSON(ctx, httpBase+"/json/version", v); err != nil {
		return nil, err
	}
	return v, nil
}

// List returns the browser's targets from /json/list, given its DevTools HTTP base, in
// Chromium's order there: the most recently activated tab first.
func List(ctx context.Context, httpBase string) ([]Target, error) {
	var ts []Target
	if err := getJSON(ctx, httpBase+"/json/list", &ts); err != nil {
		return nil, err
	}
	return ts, nil
}

func getJSON(ctx context.Context, u string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	// A client of its own: no proxy from the environment for a loopback browser, and
	// no idle connections left behind.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", req.URL.Path, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxHTTPBody)).Decode(out); err != nil {
		return fmt.Errorf("decode %s: %w", req.URL.Path, err)
	}
	return nil
}

// HTTPBase returns the HTTP base (http://127.0.0.1:PORT) of a DevTools websocket URL:
// the same port serves /json, the DevTools frontend and every target's websocket.
func HTTPBase(wsURL string) (string, error) {
	u, err := url.Parse(wsURL)
	if err != nil || u.Host == "" || (u.Scheme != "ws" && u.Scheme != "wss") {
		return "", fmt.Errorf("not a DevTools websocket URL: %q", wsURL)
	}
	scheme := "http"
	if u.Scheme == "wss" {
		scheme = "https"
	}
	return scheme + "://" + u.Host, nil
}

// PageURL returns the DevTools websocket of the target targetID (a page's, say) of the
// browser whose browser-level websocket is browserURL: ws://HOST:PORT/devtools/page/<id>.
func PageURL(browserURL, targetID string) (string, error) {
	u, err := url.Parse(browserURL)
	if err != nil || u.Host == "" || (u.Scheme != "ws" && u.Scheme != "wss") {
		return "", fmt.Errorf("not a DevTools websocket URL: %q", browserURL)
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/devtools/page/" + targetID}).String(), nil
}
