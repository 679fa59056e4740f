package browserd_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
)

func TestDecodeWebhookRequest(t *testing.T) {
	tests := []struct {
		name              string
		body              string
		create, allowHTTP bool
		wantEndpoint      string
		wantTypes         []bb.EventType
		wantErr           string
	}{
		{name: "create", body: `{"endpoint":"https://h.example/x","eventTypes":["sessions.ended","sessions.ended","sessions.created"]}`, create: true,
			wantEndpoint: "https://h.example/x", wantTypes: []bb.EventType{bb.EventSessionEnded, bb.EventSessionCreated}},
		{name: "create without types", body: `{"endpoint":"https://h.example/x"}`, create: true, wantErr: "body/eventTypes is required"},
		{name: "create without endpoint", body: `{"eventTypes":["sessions.ended"]}`, create: true, wantErr: "body/endpoint is required"},
		{name: "patch one field", body: `{"eventTypes":["sessions.running"]}`, wantTypes: []bb.EventType{bb.EventSessionRunning}},
		{name: "empty patch", body: ``},
		{name: "http refused", body: `{"endpoint":"http://h.example/x"}`, wantErr: "--webhook-allow-http"},
		{name: "http allowed", body: `{"endpoint":"http://h.example/x"}`, allowHTTP: true, wantEndpoint: "http://h.example/x"},
		{name: "other scheme", body: `{"endpoint":"ftp://h.example/x"}`, allowHTTP: true, wantErr: "https://"},
		{name: "relative", body: `{"endpoint":"/x"}`, wantErr: "absolute"},
		{name: "user info", body: `{"endpoint":"https://u:p@h.example/"}`, wantErr: "user info"},
		{name: "functions type", body: `{"eventTypes":["functions.builds.running"]}`, wantErr: "no Functions"},
		{name: "unknown type", body: `{"eventTypes":["sessions.exploded"]}`, wantErr: "unknown event type"},
		{name: "no types", body: `{"eventTypes":[]}`, wantErr: "at least one"},
		{name: "types not strings", body: `{"eventTypes":[1]}`, wantErr: "body/eventTypes"},
		{name: "not an object", body: `[]`, wantErr: "object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bb.DecodeWebhookRequest([]byte(tt.body), tt.create, tt.allowHTTP)
			if tt.wantErr != "" {
				if err == nil || bb.CodeOf(err) != bb.CodeInvalid || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DecodeWebhookRequest(%s) = %v; want CodeInvalid with %q", tt.body, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeWebhookRequest(%s) = %v", tt.body, err)
			}
			if ep := deref(got.Endpoint); ep != tt.wantEndpoint || !slices.Equal(got.EventTypes, tt.wantTypes) {
				t.Errorf("DecodeWebhookRequest(%s) = %q %v; want %q %v", tt.body, ep, got.EventTypes, tt.wantEndpoint, tt.wantTypes)
			}
		})
	}
}

func TestPageCursor(t *testing.T) {
	c := bb.PageCursor{CreatedAt: time.UnixMilli(1764900000123).UTC(), ID: bb.NewID()}
	got, err := bb.ParsePageCursor(c.Encode())
	if err != nil || got == nil || *got != c {
		t.Fatalf("ParsePageCursor(Encode(%v)) = %v, %v", c, got, err)
	}
	if got, err := bb.ParsePageCursor(""); got != nil || err != nil {
		t.Errorf("ParsePageCursor(\"\") = %v, %v; want nil, nil", got, err)
	}
	for _, bad := range []string{"x", "e30", "WzEsIngiXQ", "!!!"} {
		if _, err := bb.ParsePageCursor(bad); bb.CodeOf(err) != bb.CodeInvalid {
			t.Errorf("ParsePageCursor(%q) = %v; want CodeInvalid", bad, err)
		}
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func FuzzDecodeWebhookRequest(f *testing.F) {
	for _, s := range []string{"", "{}", `{"endpoint":"https://a.example/","eventTypes":["sessions.ended"]}`,
		`{"endpoint":"http://[::1]:80/"}`, `{"eventTypes":null}`, `{"endpoint":5}`, `[`} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, create bool) {
		req, err := bb.DecodeWebhookRequest(body, create, false)
		if err != nil {
			if bb.CodeOf(err) != bb.CodeInvalid {
				t.Fatalf("error %v has code %q; want invalid", err, bb.CodeOf(err))
			}
			return
		}
		if req.Endpoint != nil {
			if _, err := bb.CheckWebhookEndpoint(*req.Endpoint, false); err != nil {
				t.Fatalf("decoded endpoint %q does not check: %v", *req.Endpoint, err)
			}
		}
		for _, et := range req.EventTypes {
			if !slices.Contains(bb.EventTypes, et) {
				t.Fatalf("decoded unknown type %q", et)
			}
		}
	})
}

func FuzzParsePageCursor(f *testing.F) {
	for _, s := range []string{"", "x", bb.PageCursor{CreatedAt: time.UnixMilli(5), ID: bb.NewID()}.Encode()} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := bb.ParsePageCursor(s)
		if err != nil {
			if bb.CodeOf(err) != bb.CodeInvalid {
				t.Fatalf("error %v; want CodeInvalid", err)
			}
			return
		}
		if c != nil {
			if again, err := bb.ParsePageCursor(c.Encode()); err != nil || *again != *c {
				t.Fatalf("cursor %v does not round-trip: %v, %v", c, again, err)
			}
		}
	})
}

func FuzzDecodeRotateSecretRequest(f *testing.F) {
	for _, s := range []string{"", "{}", `{"revokeImmediately":true}`, `{"revokeImmediately":"yes"}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := bb.DecodeRotateSecretRequest(body); err != nil && bb.CodeOf(err) != bb.CodeInvalid {
			t.Fatalf("error %v; want CodeInvalid", err)
		}
	})
}
