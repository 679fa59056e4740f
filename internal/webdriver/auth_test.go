package webdriver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	bb "github.com/browserd/browserd"
)

// authSessions is a sessions fake for the checks New Session makes before it reads its
// body: real signing keys, one valid API key with one session, and no attaching.
type authSessions struct {
	t         testing.TB
	signer    *bb.Signer
	key, sid  string
	attached  atomic.Int32
	projectID string
}

func newAuthSessions(t testing.TB) *authSessions {
	s, err := bb.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return &authSessions{t: t, signer: s, key: bb.NewAPIKey(), sid: bb.NewID(), projectID: bb.NewID()}
}

func (f *authSessions) Attach(context.Context, bb.ConnectCredentials) (*bb.Attachment, error) {
	f.attached.Add(1)
	return nil, bb.Errorf(bb.CodeUnavailable, "the fake does not attach")
}

func (f *authSessions) Authenticate(_ context.Context, raw string) (*bb.APIKey, error) {
	if raw != f.key {
		return nil, bb.Errorf(bb.CodeUnauthorized, "Unauthorized: invalid API key")
	}
	return &bb.APIKey{ProjectID: f.projectID}, nil
}

func (f *authSessions) Session(_ context.Context, projectID, id string) (*bb.Session, error) {
	if projectID != f.projectID || id != f.sid {
		return nil, bb.Errorf(bb.CodeNotFound, "Session not found")
	}
	return &bb.Session{ID: id, ProjectID: projectID}, nil
}

func (f *authSessions) SigningKey(id string) string { return f.signer.SigningKey(id) }

func (f *authSessions) ReleaseSession(context.Context, string, string) (*bb.Session, error) {
	return nil, bb.Errorf(bb.CodeNotFound, "Session not found")
}

// countingBody counts what a handler reads of request bodies.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// bigCaps streams a valid New Session body of about size bytes without holding it.
func bigCaps(size int) io.Reader {
	return io.MultiReader(strings.NewReader(`{"capabilities":{"alwaysMatch":{"x":"`),
		io.LimitReader(repeatByte('a'), int64(size)), strings.NewReader(`"}}}`))
}

type repeatByte byte

func (b repeatByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// TestCreateAuthenticatesBeforeBody is the reproduction of security review F4.1: 32
// parallel New Session requests with 8 MiB bodies and bad credentials are all refused
// without their bodies being read; with good credentials a body over 1 MiB is a 413.
func TestCreateAuthenticatesBeforeBody(t *testing.T) {
	f := newAuthSessions(t)
	h, err := New(Config{Sessions: f, Chromedriver: "/nonexistent/chromedriver"})
	if err != nil {
		t.Fatal(err)
	}
	var read atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = countingBody{r.Body, &read}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	post := func(body io.Reader, header ...string) (int, string, error) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/webdriver/session", body)
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}

	bad := [][]string{
		{"x-bb-signing-key", "bogus"},
		{"x-bb-signing-key", f.sid + ".forged"},
		{"x-bb-signing-key", bb.NewID() + "." + strings.Repeat("A", 43)},
		{"x-bb-api-key", "bb_wrong", "session-id", f.sid},
		{"x-bb-api-key", f.key, "session-id", bb.NewID()}, // valid key, not its session
	}
	const parallel = 32
	var wg sync.WaitGroup
	errs := make(chan error, parallel)
	for i := range parallel {
		wg.Go(func() {
			hdr := bad[i%len(bad)]
			status, body, err := post(bigCaps(8<<20), hdr...)
			if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
				// The server answered and closed before the client had written the
				// body (a loaded machine): refused without reading it, as wanted; the
				// byte count below says how much it read.
				return
			}
			if err != nil {
				errs <- err
				return
			}
			want := http.StatusUnauthorized
			if hdr[0] == "x-bb-api-key" && hdr[1] == f.key {
				want = http.StatusNotFound
			}
			if status != want || !strings.Contains(body, errSessionNotCreated) {
				errs <- fmt.Errorf("credentials %q: %d %s; want %d session not created", hdr, status, body, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := read.Load(); n > 4<<10 {
		t.Errorf("the handler read %d bytes of unauthenticated bodies; want none", n)
	}
	if n := f.attached.Load(); n != 0 {
		t.Errorf("%d refused requests attached to a session", n)
	}

	// Authenticated: a body over the limit is a 413, whichever credentials.
	for _, hdr := range [][]string{
		{"x-bb-signing-key", f.SigningKey(f.sid)},
		{"x-bb-api-key", f.key, "session-id", f.sid},
	} {
		status, body, err := post(bigCaps(maxCreateBody), hdr...)
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "must not be larger") {
			t.Errorf("%s: 1 MiB of capabilities = %d %s; want 413", hdr[0], status, body)
		}
	}
	if n := f.attached.Load(); n != 0 {
		t.Errorf("a refused body attached to a session %d times", n)
	}
	// A small valid body gets as far as attaching.
	status, _, err := post(bytes.NewReader([]byte(`{"capabilities":{}}`)), "x-bb-signing-key", f.SigningKey(f.sid))
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusServiceUnavailable || f.attached.Load() != 1 {
		t.Errorf("valid request = %d after %d attaches; want the fake's 503 after 1", status, f.attached.Load())
	}
}
