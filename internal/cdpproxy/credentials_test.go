package cdpproxy

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		name     string
		query    string
		want     bb.ConnectCredentials
		wantCode bb.ErrorCode
	}{
		{name: "signing key", query: "signingKey=abc.def", want: bb.ConnectCredentials{SigningKey: "abc.def"}},
		{name: "legacy", query: "apiKey=bb_k&sessionId=s1", want: bb.ConnectCredentials{APIKey: "bb_k", SessionID: "s1"}},
		{name: "legacy with enableProxy", query: "apiKey=bb_k&sessionId=s1&enableProxy=true", want: bb.ConnectCredentials{APIKey: "bb_k", SessionID: "s1"}},
		{name: "signing key wins", query: "signingKey=sk&apiKey=bb_k&sessionId=s1", want: bb.ConnectCredentials{SigningKey: "sk"}},
		{name: "repeated equal", query: "signingKey=sk&signingKey=sk", want: bb.ConnectCredentials{SigningKey: "sk"}},
		{name: "escaped", query: "signingKey=a%2Bb%3D", want: bb.ConnectCredentials{SigningKey: "a+b="}},
		{name: "none", query: "", wantCode: bb.CodeUnauthorized},
		{name: "empty signing key", query: "signingKey=", wantCode: bb.CodeUnauthorized},
		{name: "session only", query: "sessionId=s1", wantCode: bb.CodeUnauthorized},
		{name: "api key only", query: "apiKey=bb_k", wantCode: bb.CodeInvalid},
		{name: "repeated different", query: "signingKey=a&signingKey=b", wantCode: bb.CodeInvalid},
		{name: "too long", query: "signingKey=" + strings.Repeat("x", maxCredentialLen+1), wantCode: bb.CodeInvalid},
		{name: "wrong case", query: "signingkey=sk", wantCode: bb.CodeUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseCredentials(q)
			if code := bb.CodeOf(err); code != tt.wantCode {
				t.Fatalf("ParseCredentials(%q) error = %v (code %q); want code %q", tt.query, err, code, tt.wantCode)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("ParseCredentials(%q) mismatch (-got +want):\n%s", tt.query, diff)
			}
			if err != nil && strings.Contains(err.Error(), "bb_k") {
				t.Errorf("error %q contains the API key", err)
			}
		})
	}
}

// FuzzParseConnectURL parses arbitrary connect URLs: no panic; an error is
// CodeUnauthorized (no credentials) or CodeInvalid, never shows a credential, and a
// success has a complete set of credentials.
func FuzzParseConnectURL(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		q := u.Query()
		c, err := ParseCredentials(q)
		if err != nil {
			if code := bb.CodeOf(err); code != bb.CodeInvalid && code != bb.CodeUnauthorized {
				t.Fatalf("ParseCredentials(%q) error code %q", raw, code)
			}
			for _, vs := range q {
				for _, v := range vs {
					if len(v) > 64 && strings.Contains(err.Error(), v) { // longer than any message
						t.Fatalf("error %q shows query value %q", err, v)
					}
				}
			}
			return
		}
		if c.SigningKey == "" && (c.APIKey == "" || c.SessionID == "") {
			t.Fatalf("ParseCredentials(%q) = %+v: incomplete credentials", raw, c)
		}
	})
}
