package browserd_test

import (
	"strings"
	"testing"

	bb "github.com/browserd/browserd"
)

func TestDecodeCreateContextRequest(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		want     bb.CreateContextRequest
		wantCode bb.ErrorCode
	}{
		{name: "empty body", body: ""},
		{name: "empty object (SDK without parameters)", body: "{}"},
		{name: "pretty-printed project", body: "{\n  \"projectId\": \"p1\"\n}", want: bb.CreateContextRequest{ProjectID: "p1"}},
		{name: "name is trimmed", body: `{"name":"  Shop login \n"}`, want: bb.CreateContextRequest{Name: "Shop login"}},
		{name: "null name", body: `{"name":null,"projectId":null}`},
		{name: "blank name is no name", body: `{"name":"   "}`},
		{name: "unknown fields ignored", body: `{"fingerprint":{},"x":[1]}`},
		{name: "name not a string", body: `{"name":5}`, wantCode: bb.CodeInvalid},
		{name: "projectId not a string", body: `{"projectId":true}`, wantCode: bb.CodeInvalid},
		{name: "not an object", body: `[]`, wantCode: bb.CodeInvalid},
		{name: "not JSON", body: `{"name":`, wantCode: bb.CodeInvalid},
		{name: "name too long", body: `{"name":"` + strings.Repeat("é", bb.MaxContextNameLength+1) + `"}`, wantCode: bb.CodeInvalid},
		{name: "longest name", body: `{"name":"` + strings.Repeat("é", bb.MaxContextNameLength) + `"}`,
			want: bb.CreateContextRequest{Name: strings.Repeat("é", bb.MaxContextNameLength)}},
		{name: "NUL in name", body: `{"name":"a\u0000b"}`, wantCode: bb.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bb.DecodeCreateContextRequest([]byte(tt.body))
			if bb.CodeOf(err) != tt.wantCode {
				t.Fatalf("DecodeCreateContextRequest(%q) = %v; want code %q", tt.body, err, tt.wantCode)
			}
			if err == nil && got != tt.want {
				t.Errorf("DecodeCreateContextRequest(%q) = %+v; want %+v", tt.body, got, tt.want)
			}
		})
	}
}

func TestContextNameKey(t *testing.T) {
	for _, tt := range []struct{ a, b string }{
		{"Login", "login"}, {"  LOGIN\t", "login"}, {"Ärger", "ärger"},
	} {
		if ka, kb := bb.ContextNameKey(tt.a), bb.ContextNameKey(tt.b); ka != kb {
			t.Errorf("ContextNameKey(%q) = %q, ContextNameKey(%q) = %q; want equal", tt.a, ka, tt.b, kb)
		}
	}
	if bb.ContextNameKey("a") == bb.ContextNameKey("b") {
		t.Error("different names have the same key")
	}
}

// FuzzCreateContextRequest checks that any body decodes or fails with CodeInvalid,
// and that a decoded name is trimmed and valid.
func FuzzCreateContextRequest(f *testing.F) {
	for _, s := range []string{"", "{}", `{"name":" x "}`, `{"projectId":"p","name":null}`, `{"name":5}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := bb.DecodeCreateContextRequest(body)
		if err != nil {
			if bb.CodeOf(err) != bb.CodeInvalid {
				t.Fatalf("error %v has code %q; want %q", err, bb.CodeOf(err), bb.CodeInvalid)
			}
			return
		}
		if req.Name != strings.TrimSpace(req.Name) {
			t.Fatalf("name %q is not trimmed", req.Name)
		}
		if _, err := bb.NormalizeContextName(req.Name); err != nil {
			t.Fatalf("decoded name %q does not normalize: %v", req.Name, err)
		}
	})
}
