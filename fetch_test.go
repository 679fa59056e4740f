package browserd_test

import (
	"strings"
	"testing"

	bb "github.com/browserd/browserd"
)

func TestDecodeFetchRequest(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantURL  string
		want     bb.FetchRequest // URL compared through wantURL
		wantCode bb.ErrorCode
		wantMsg  string
	}{
		{name: "url only: raw, no redirects", body: `{"url":"https://example.com/a?b=1#frag"}`,
			wantURL: "https://example.com/a?b=1", want: bb.FetchRequest{Format: bb.FetchRaw}},
		{name: "every option", body: `{"url":"HTTP://Example.com:8080/","format":"markdown","allowRedirects":true,"allowInsecureSsl":true,"proxies":true}`,
			wantURL: "http://Example.com:8080/", want: bb.FetchRequest{Format: bb.FetchMarkdown, AllowRedirects: true, AllowInsecureSSL: true, Proxies: true}},
		{name: "json with schema", body: `{"url":"http://x.test/","format":"json","schema":{ "type" : "object" }}`,
			wantURL: "http://x.test/", want: bb.FetchRequest{Format: bb.FetchJSON, Schema: []byte(`{"type":"object"}`)}},
		{name: "nulls are absent", body: `{"url":"http://x.test/","format":null,"proxies":null}`,
			wantURL: "http://x.test/", want: bb.FetchRequest{Format: bb.FetchRaw}},
		{name: "empty body", body: ``, wantCode: bb.CodeInvalid, wantMsg: "body/url is required"},
		{name: "not an object", body: `[1]`, wantCode: bb.CodeInvalid, wantMsg: "body must be an object"},
		{name: "url not a string", body: `{"url":5}`, wantCode: bb.CodeInvalid, wantMsg: "body/url must be a string"},
		{name: "file scheme", body: `{"url":"file:///etc/passwd"}`, wantCode: bb.CodeInvalid, wantMsg: `not "file"`},
		{name: "gopher scheme", body: `{"url":"gopher://127.0.0.1:25/x"}`, wantCode: bb.CodeInvalid, wantMsg: `not "gopher"`},
		{name: "data scheme", body: `{"url":"data:text/html,hi"}`, wantCode: bb.CodeInvalid, wantMsg: `not "data"`},
		{name: "relative", body: `{"url":"/v1/projects"}`, wantCode: bb.CodeInvalid, wantMsg: "absolute"},
		{name: "no host", body: `{"url":"http:///x"}`, wantCode: bb.CodeInvalid, wantMsg: "must name a host"},
		{name: "opaque", body: `{"url":"http:example.com"}`, wantCode: bb.CodeInvalid, wantMsg: "must name a host"},
		{name: "port 0", body: `{"url":"http://x.test:0/"}`, wantCode: bb.CodeInvalid, wantMsg: "invalid port"},
		{name: "port too big", body: `{"url":"http://x.test:65536/"}`, wantCode: bb.CodeInvalid, wantMsg: "invalid port"},
		{name: "too long", body: `{"url":"http://x.test/` + strings.Repeat("a", bb.MaxFetchURLLength) + `"}`, wantCode: bb.CodeInvalid, wantMsg: "at most"},
		{name: "bad format", body: `{"url":"http://x.test/","format":"html"}`, wantCode: bb.CodeInvalid, wantMsg: "body/format must be one of raw, markdown, json"},
		{name: "bad boolean", body: `{"url":"http://x.test/","allowRedirects":"yes"}`, wantCode: bb.CodeInvalid, wantMsg: "body/allowRedirects must be a boolean"},
		{name: "json without schema", body: `{"url":"http://x.test/","format":"json"}`, wantCode: bb.CodeInvalid, wantMsg: "body/schema is required"},
		{name: "schema without json", body: `{"url":"http://x.test/","schema":{}}`, wantCode: bb.CodeInvalid, wantMsg: "only with format"},
		{name: "schema not an object", body: `{"url":"http://x.test/","format":"json","schema":true}`, wantCode: bb.CodeInvalid, wantMsg: "body/schema must be an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bb.DecodeFetchRequest([]byte(tt.body))
			if tt.wantCode != "" {
				if bb.CodeOf(err) != tt.wantCode || !strings.Contains(bb.MessageOf(err), tt.wantMsg) {
					t.Fatalf("DecodeFetchRequest(%s) = %v; want %s containing %q", tt.body, err, tt.wantCode, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeFetchRequest(%s): %v", tt.body, err)
			}
			if got.URL.String() != tt.wantURL {
				t.Errorf("URL = %s; want %s", got.URL, tt.wantURL)
			}
			if got.Format != tt.want.Format || got.AllowRedirects != tt.want.AllowRedirects ||
				got.AllowInsecureSSL != tt.want.AllowInsecureSSL || got.Proxies != tt.want.Proxies ||
				string(got.Schema) != string(tt.want.Schema) {
				t.Errorf("got %+v; want %+v", got, tt.want)
			}
		})
	}
}

// FuzzDecodeFetchRequest checks that any body decodes or fails with CodeInvalid, and
// that a decoded URL is absolute http(s) with a host and a schema comes only with json.
func FuzzDecodeFetchRequest(f *testing.F) {
	for _, s := range []string{"", "{}", `{"url":"http://a/"}`, `{"url":"https://[::1]:8/x","format":"markdown"}`,
		`{"url":"http://a/","format":"json","schema":{"type":"object"}}`, `{"url":"file:///x"}`, `{"url":"http://0x7f.1/"}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := bb.DecodeFetchRequest(body)
		if err != nil {
			if bb.CodeOf(err) != bb.CodeInvalid {
				t.Fatalf("error %v has code %q; want %q", err, bb.CodeOf(err), bb.CodeInvalid)
			}
			return
		}
		if s := req.URL.Scheme; (s != "http" && s != "https") || req.URL.Hostname() == "" {
			t.Fatalf("decoded URL %q is not absolute http(s) with a host", req.URL)
		}
		if (req.Schema != nil) != (req.Format == bb.FetchJSON) {
			t.Fatalf("format %q with schema %q", req.Format, req.Schema)
		}
	})
}
