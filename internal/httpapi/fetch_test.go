package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/httpapi/openapitest"
)

// fakeFetcher answers every fetch with res or err and records the requests. The real
// fetcher (internal/fetch) is tested in its package and, wired, in internal/server.
type fakeFetcher struct {
	res     *bb.FetchResult
	err     error
	project string
	req     bb.FetchRequest
}

func (f *fakeFetcher) Fetch(_ context.Context, projectID string, req bb.FetchRequest) (*bb.FetchResult, error) {
	f.project, f.req = projectID, req
	return f.res, f.err
}

func TestFetchHandler(t *testing.T) {
	doc, err := openapitest.Load(OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	text := &bb.FetchResult{ID: "f1", Content: "# Hi", ContentType: "text/html", Encoding: "utf-8", Headers: map[string]string{"x-a": "1, 2"}, StatusCode: 404}
	extracted := &bb.FetchResult{ID: "f2", Extracted: json.RawMessage(`{"title":"Hi"}`), ContentType: "text/html", Encoding: "utf-8", StatusCode: 200}
	tests := []struct {
		name, body  string
		fetcher     *fakeFetcher // nil: none configured
		want        int
		wantRetry   string
		wantInBody  []string
		wantFetched bool
	}{
		{name: "markdown", body: `{"url":"http://site.test/","format":"markdown"}`, fetcher: &fakeFetcher{res: text}, want: 200, wantFetched: true,
			wantInBody: []string{`"content":"# Hi"`, `"statusCode":404`, `"headers":{"x-a":"1, 2"}`, `"encoding":"utf-8"`, `"id":"f1"`}},
		{name: "json content is an object", body: `{"url":"http://site.test/","format":"json","schema":{}}`, fetcher: &fakeFetcher{res: extracted}, want: 200, wantFetched: true,
			wantInBody: []string{`"content":{"title":"Hi"}`, `"headers":{}`}},
		{name: "no url", body: `{}`, fetcher: &fakeFetcher{res: text}, want: 400, wantRetry: "false", wantInBody: []string{"body/url is required"}},
		{name: "file url", body: `{"url":"file:///etc/passwd"}`, fetcher: &fakeFetcher{res: text}, want: 400, wantInBody: []string{`not \"file\"`}},
		{name: "refused address", body: `{"url":"http://10.0.0.1/"}`, fetcher: &fakeFetcher{err: bb.Errorf(bb.CodeForbidden, "10.0.0.1 is private")}, want: 403, wantRetry: "false", wantFetched: true},
		{name: "too large", body: `{"url":"http://site.test/"}`, fetcher: &fakeFetcher{err: &bb.Error{Code: bb.CodeBadGateway, NoRetry: true, Message: "too large"}}, want: 502, wantRetry: "false", wantFetched: true},
		{name: "unreachable", body: `{"url":"http://site.test/"}`, fetcher: &fakeFetcher{err: bb.Errorf(bb.CodeBadGateway, "refused the connection")}, want: 502, wantFetched: true},
		{name: "timeout", body: `{"url":"http://site.test/"}`, fetcher: &fakeFetcher{err: bb.Errorf(bb.CodeTimeout, "did not answer")}, want: 504, wantFetched: true},
		{name: "busy", body: `{"url":"http://site.test/"}`, fetcher: &fakeFetcher{err: bb.Errorf(bb.CodeLimit, "too many")}, want: 429, wantFetched: true},
		{name: "not enabled", body: `{"url":"http://site.test/"}`, want: 501, wantRetry: "false", wantInBody: []string{"not enabled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Sessions: fakeService{}}
			if tt.fetcher != nil {
				cfg.Fetch = tt.fetcher
			}
			srv, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest("POST", "/v1/fetch", strings.NewReader(tt.body))
			req.Header.Set("X-BB-API-Key", "k")
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, req)
			body, _ := io.ReadAll(rec.Body) // a recorder's body does not fail
			if rec.Code != tt.want {
				t.Fatalf("status %d %s; want %d", rec.Code, body, tt.want)
			}
			if err := doc.ValidateResponse("POST", "/v1/fetch", rec.Code, rec.Header(), body); err != nil {
				t.Error(err)
			}
			if got := rec.Header().Get("x-should-retry"); tt.wantRetry != "" && got != tt.wantRetry {
				t.Errorf("x-should-retry %q; want %q", got, tt.wantRetry)
			}
			for _, w := range tt.wantInBody {
				if !strings.Contains(string(body), w) {
					t.Errorf("body %s does not contain %s", body, w)
				}
			}
			if tt.fetcher != nil && (tt.fetcher.project == "p") != tt.wantFetched {
				t.Errorf("fetched for project %q; want fetched %v", tt.fetcher.project, tt.wantFetched)
			}
		})
	}
	srv, err := New(Config{Sessions: fakeService{}, Fetch: &fakeFetcher{res: text}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, key string
		want        int
	}{{"POST", "", http.StatusUnauthorized}, {"GET", "k", http.StatusMethodNotAllowed}} {
		req := httptest.NewRequest(c.method, "/v1/fetch", strings.NewReader(`{"url":"http://site.test/"}`))
		if c.key != "" {
			req.Header.Set("X-BB-API-Key", c.key)
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s /v1/fetch with key %q = %d; want %d", c.method, c.key, rec.Code, c.want)
		}
	}
}
