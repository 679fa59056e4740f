package cdp

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name, in string
		want     message
		wantErr  bool
	}{
		{name: "answer", in: `{"id":12,"result":{"a":[1,{"b":"}"}]}}`, want: message{ID: 12, Result: json.RawMessage(`{"a":[1,{"b":"}"}]}`)}},
		{name: "answer of a session", in: `{"id":3,"result":{},"sessionId":"AB12"}`, want: message{ID: 3, Result: json.RawMessage(`{}`), SessionID: "AB12"}},
		{name: "error", in: `{"id":4,"error":{"code":-32000,"message":"No target"}}`, want: message{ID: 4, Error: &Error{Code: -32000, Message: "No target"}}},
		{name: "event", in: `{"method":"Page.loadEventFired","params":{"timestamp":1.5},"sessionId":"S"}`,
			want: message{Method: "Page.loadEventFired", Params: json.RawMessage(`{"timestamp":1.5}`), SessionID: "S"}},
		{name: "spaces and escapes inside values", in: " {\"id\" : 1 , \"result\" : {\"s\":\"a\\\"b\\\\\"} }\n", want: message{ID: 1, Result: json.RawMessage(`{"s":"a\"b\\"}`)}},
		{name: "escaped method", in: `{"method":"A.b\u0063"}`, want: message{Method: "A.bc"}},
		{name: "key in another case", in: `{"ID":7}`, want: message{ID: 7}},
		{name: "unknown keys", in: `{"id":1,"x":[true,false,null,-1.5e3],"result":null}`, want: message{ID: 1, Result: json.RawMessage(`null`)}},
		{name: "empty", in: `{}`},
		{name: "not an object", in: `[1]`, wantErr: true},
		{name: "truncated", in: `{"id":1,"result":{"data":"iVBOR`, wantErr: true},
		{name: "string id", in: `{"id":"1"}`, wantErr: true},
		{name: "fractional id", in: `{"id":1.5}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("decode(%s) error = %v; want error %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("decode(%s) (-got +want):\n%s", tt.in, diff)
			}
		})
	}
}

// FuzzDecode: decode never panics, and for valid JSON it gives what encoding/json gives.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"id":12,"result":{"data":"iVBOR"},"sessionId":"AB"}`,
		`{"id":4,"error":{"code":-32000,"message":"No target"}}`,
		`{"method":"Target.attachedToTarget","params":{"sessionId":"S","targetInfo":{"type":"page"}}}`,
		`{"error":{"code":1},"error":{"message":"x"}}`,
		`{"Method":"x","method":"y"}`, `{"id":null,"method":null,"error":null}`, ` { } `, `{"a":"\\\""}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decode(data)
		if !json.Valid(data) {
			return // anything but a panic
		}
		var want message
		wantErr := json.Unmarshal(data, &want)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("decode(%q) error = %v; encoding/json: %v", data, err, wantErr)
		}
		if err != nil {
			return
		}
		// encoding/json compacts nothing in RawMessage: both keep the bytes as they are.
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("decode(%q) (-got +encoding/json):\n%s", data, diff)
		}
	})
}

// BenchmarkDecodeScreenshot decodes a 30 MB answer, as a full-page screenshot's.
func BenchmarkDecodeScreenshot(b *testing.B) {
	msg := []byte(`{"id":12,"result":{"data":"` + strings.Repeat("iVBORw0K", 30<<20/8) + `"},"sessionId":"0123456789ABCDEF"}`)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}
