package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
)

// Config configures a Client.
type Config struct {
	// BaseURL is the server's absolute http(s) URL, with an optional path prefix
	// (http://127.0.0.1:8080, https://api.browserbase.com); a trailing slash is ignored.
	BaseURL string
	// APIKey is sent as X-BB-API-Key on every request (spec §1.2).
	APIKey string
	// HTTPClient sends the requests [http.DefaultClient]. Timeouts are the caller's:
	// pass a context with a deadline, or an http.Client with a Timeout.
	HTTPClient *http.Client
	// UserAgent is sent as User-Agent when set [Go's default].
	UserAgent string
}

// Client calls one server's /v1 API. It is safe for concurrent use, except a copy made
// by KeepBody.
type Client struct {
	base      *url.URL
	apiKey    string
	http      *http.Client
	userAgent string
	keep      *[]byte // KeepBody's destination, or nil
}

// New returns a client of the server at cfg.BaseURL. It fails only when the URL is not
// an absolute http(s) URL.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL must be an absolute http(s) URL, got %q", cfg.BaseURL)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: u, apiKey: cfg.APIKey, http: hc, userAgent: cfg.UserAgent}, nil
}

// KeepBody returns a copy of c that also stores, in *dst, the body of the answer each
// call decodes (a JSON answer with the expected status, stored before decoding; nil when
// the call fails before or has no answer to decode, such as a delete): for callers
// that show the server's own JSON, such as `browserd … --json`, which must print what
// the server sent and not a re-encoding of this package's structs. The copy is not safe
// for concurrent use.
func (c *Client) KeepBody(dst *[]byte) *Client {
	cc := *c
	cc.keep = dst
	return &cc
}

// Error is an API answer with another status than the call expects, most often an error
// body of spec §1.5: {"statusCode":404,"code":404,"error":"Not Found","message":"…"}.
type Error struct {
	// Status is the HTTP status of the answer.
	Status int
	// Reason is the body's "error", the status's reason phrase; "" when absent.
	Reason string
	// Message is the body's "message" when it is a non-empty string, else the body's
	// trimmed text (other servers and proxies answer with text or HTML), else the
	// status's text: what the SDKs show, too (spec §1.5).
	Message string
}

// Error returns the message and the status, as the CLI prints it: "Session not found
// (HTTP 404)".
func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// maxErrorBody bounds how much of an error answer is read: its message is short, and a
// misconfigured proxy may answer with a large page.
const maxErrorBody = 64 << 10

// ParseError makes the *Error of an answer with status and (at most the first 64 KiB
// of) body b. It never fails: any body gives a message. The client's calls use it; it is
// exported for callers that send their own requests, such as the bench's load generator,
// which reads answers without decoding them.
func ParseError(status int, b []byte) *Error {
	e := &Error{Status: status}
	var body struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &body) == nil {
		e.Reason = body.Error
		if body.Message != "" {
			msg = body.Message
		}
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	e.Message = msg
	return e
}

// request is one API call.
type request struct {
	method, path string
	query        url.Values
	body         io.Reader
	contentType  string
	want         int // the status of success
}

// send does an API request and returns the response when it has the expected status;
// any other status becomes an *Error. The caller closes the body.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	u := *c.base
	// r.path has its ids escaped (an id may hold "/" or "%"): it is the raw path.
	u.RawPath = strings.TrimRight(u.EscapedPath(), "/") + r.path
	var err error
	if u.Path, err = url.PathUnescape(u.RawPath); err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	u.RawQuery = r.query.Encode()
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), r.body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-BB-API-Key", c.apiKey)
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// The *url.Error would repeat the full URL; the method and path say enough.
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, errors.Unwrap(err))
	}
	if resp.StatusCode == r.want {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody)) // best effort: the status says enough
	return nil, ParseError(resp.StatusCode, b)
}

// call does a request with a JSON body (none when body is nil) and decodes a JSON answer
// into out (skipped when out is nil).
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body any, want int, out any) error {
	r := request{method: method, path: path, query: query, want: want}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: encode the request: %w", method, path, err)
		}
		r.body, r.contentType = bytes.NewReader(b), "application/json"
	}
	return c.decode(ctx, r, out)
}

// decode sends r and decodes its answer into out (skipped when out is nil).
func (c *Client) decode(ctx context.Context, r request, out any) error {
	if c.keep != nil {
		*c.keep = nil // no stale body from an earlier call
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", r.method, r.path, err)
	}
	if out == nil {
		return nil
	}
	if c.keep != nil {
		*c.keep = b
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("the server's answer does not decode: %w", err)
	}
	return nil
}

// upload streams r as the multipart/form-data part "file" named name, the shape of both
// upload endpoints (spec §3.9, §6.5), and decodes the answer with status want into out.
func (c *Client) upload(ctx context.Context, path, name string, r io.Reader, want int, out any) error {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	done := make(chan struct{})
	go func() { // ends when r is sent or the request fails (pr closed below)
		defer close(done)
		part, err := mw.CreateFormFile("file", name)
		if err == nil {
			_, err = io.Copy(part, r)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err) // nil closes normally
	}()
	err := c.decode(ctx, request{method: http.MethodPost, path: path, body: pr, contentType: mw.FormDataContentType(), want: want}, out)
	pr.Close() // unblocks the writer if the server answered early
	<-done     // r is not read after upload returns
	return err
}

// pathID escapes one path segment, an id the caller was given.
func pathID(id string) string { return url.PathEscape(id) }
