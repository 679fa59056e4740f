package cdpproxy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

// upgradeRequest returns a valid websocket upgrade request for url.
func upgradeRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	return req
}

func TestGatewayRefuses(t *testing.T) {
	errCodes := map[string]error{
		"unauthorized": bb.Errorf(bb.CodeUnauthorized, "invalid signingKey"),
		"notfound":     bb.Errorf(bb.CodeNotFound, "Session not found"),
		"gone":         bb.Errorf(bb.CodeGone, "session x has ended (COMPLETED)"),
		"unavailable":  bb.Errorf(bb.CodeUnavailable, "session x is not running on this node"),
		"limit":        bb.Errorf(bb.CodeLimit, "odd"),
		"internal":     errors.New("database on fire: secret detail"),
	}
	h := newHarness(t, Config{})
	h.g.attach = func(ctx context.Context, c bb.ConnectCredentials) (attached, error) {
		return attached{}, errCodes[c.SigningKey]
	}
	base := h.srv.URL + "/"
	tests := []struct {
		name        string
		method, url string
		plain       bool // no upgrade headers
		wantStatus  int
		wantMessage string
	}{
		{name: "unauthorized", method: "GET", url: base + "?signingKey=unauthorized", wantStatus: 401, wantMessage: "invalid signingKey"},
		{name: "not found", method: "GET", url: base + "?signingKey=notfound", wantStatus: 404, wantMessage: "Session not found"},
		{name: "gone", method: "GET", url: base + "?signingKey=gone", wantStatus: 410, wantMessage: "session x has ended (COMPLETED)"},
		{name: "unavailable", method: "GET", url: base + "?signingKey=unavailable", wantStatus: 503, wantMessage: "session x is not running on this node"},
		{name: "limit", method: "GET", url: base + "?signingKey=limit", wantStatus: 429, wantMessage: "odd"},
		{name: "internal", method: "GET", url: base + "?signingKey=internal", wantStatus: 500, wantMessage: "Internal Server Error"},
		{name: "no credentials", method: "GET", url: base, wantStatus: 401, wantMessage: "missing signingKey (or apiKey and sessionId)"},
		{name: "partial legacy", method: "GET", url: base + "?apiKey=bb_x", wantStatus: 400, wantMessage: "sessionId is required with apiKey"},
		{name: "bad query", method: "GET", url: base + "?signingKey=a;b", wantStatus: 400, wantMessage: "malformed query string"},
		{name: "not an upgrade", method: "GET", url: base + "?signingKey=unauthorized", plain: true, wantStatus: 426},
		{name: "post", method: "POST", url: base + "?signingKey=unauthorized", wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := upgradeRequest(t, tt.method, tt.url)
			if tt.plain {
				req.Header = http.Header{}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d; want %d (body %s)", resp.StatusCode, tt.wantStatus, body)
			}
			var got wireError
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			want := wireError{StatusCode: tt.wantStatus, Code: tt.wantStatus, Error: http.StatusText(tt.wantStatus), Message: tt.wantMessage}
			if tt.wantMessage == "" {
				want.Message = got.Message
			}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("body mismatch (-got +want):\n%s", diff)
			}
			if strings.Contains(string(body), "secret detail") {
				t.Errorf("body %s shows an internal error", body)
			}
		})
	}
	if n := h.cdp.conns.Load(); n != 0 {
		t.Errorf("the browser got %d connections from refused requests; want 0", n)
	}
	if n := len(h.g.Conns()); n != 0 {
		t.Errorf("%d live connections; want 0", n)
	}
}

func TestGatewayBrowserUnreachable(t *testing.T) {
	h := newHarness(t, Config{})
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := "ws://" + dead.Listener.Addr().String() + "/devtools/browser/x"
	dead.Close()
	att := newFakeAttachment()
	h.g.attach = func(ctx context.Context, c bb.ConnectCredentials) (attached, error) {
		return attached{sessionID: "s", browserURL: deadURL, att: att}, nil
	}
	resp, err := http.DefaultClient.Do(upgradeRequest(t, "GET", h.srv.URL+"/?signingKey=x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status = %d; want 502", resp.StatusCode)
	}
	if n := att.detached.Load(); n != 1 {
		t.Errorf("Detach called %d times; want 1", n)
	}
}

func TestGatewayRefusesAfterShutdown(t *testing.T) {
	h := newHarness(t, Config{})
	if err := h.g.Close(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(upgradeRequest(t, "GET", h.srv.URL+"/?signingKey=good"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status = %d; want 503", resp.StatusCode)
	}
}
