package webhooks

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	secret, other := newSecret(), newSecret()
	body := []byte(`{"type":"sessions.ended"}`)
	now := time.Unix(1764900000, 0)
	ts := "1764900000"
	h := func(secrets ...string) http.Header {
		sig, err := signatureHeader(secrets, "evt", ts, body)
		if err != nil {
			t.Fatal(err)
		}
		return http.Header{"Webhook-Id": {"evt"}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {sig}}
	}
	tests := []struct {
		name    string
		header  http.Header
		body    []byte
		secret  string
		now     time.Time
		wantErr bool
	}{
		{name: "signed", header: h(secret), body: body, secret: secret, now: now},
		{name: "either of two", header: h(other, secret), body: body, secret: secret, now: now},
		{name: "other secret", header: h(other), body: body, secret: secret, now: now, wantErr: true},
		{name: "body changed", header: h(secret), body: []byte(`{}`), secret: secret, now: now, wantErr: true},
		{name: "too old", header: h(secret), body: body, secret: secret, now: now.Add(6 * time.Minute), wantErr: true},
		{name: "no headers", header: http.Header{}, body: body, secret: secret, now: now, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.header, tt.body, tt.now, 5*time.Minute)
			if (err != nil) != tt.wantErr {
				t.Errorf("Verify = %v; want error %v", err, tt.wantErr)
			}
		})
	}
}

// TestSignatureVector pins the scheme to the Standard Webhooks specification's example
// (github.com/standard-webhooks/standard-webhooks, spec/standard-webhooks.md).
func TestSignatureVector(t *testing.T) {
	key, err := secretKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("sign = %s; want %s", got, want)
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 5: 160 * time.Second, 20: time.Hour} {
		got := backoff(n, 10*time.Second, time.Hour)
		if got < want*8/10 || got > want*12/10 {
			t.Errorf("backoff(%d) = %s; want %s ±20%%", n, got, want)
		}
	}
}

func TestSealer(t *testing.T) {
	s, err := newSealer([]byte(strings.Repeat("k", KeySize)))
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.seal("w1", "whsec_abc")
	if got, err := s.open("w1", sealed); err != nil || got != "whsec_abc" {
		t.Errorf("open = %q, %v", got, err)
	}
	if _, err := s.open("w2", sealed); err == nil {
		t.Error("a secret sealed for w1 opens for w2")
	}
	if _, err := newSealer([]byte("short")); err == nil {
		t.Error("newSealer accepts a short key")
	}
}

func FuzzParseSignatures(f *testing.F) {
	for _, s := range []string{"", "v1,abc", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v2,x", "v1a,xx v1,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		sigs, err := ParseSignatures(h)
		if err == nil && len(sigs) == 0 {
			t.Fatal("no error and no signature")
		}
		for _, s := range sigs {
			if len(s) != 32 {
				t.Fatalf("signature of %d bytes", len(s))
			}
		}
	})
}
