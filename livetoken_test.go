package browserd_test

import (
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/google/go-cmp/cmp"
)

func liveSigner(t testing.TB, secret string) *bb.Signer {
	t.Helper()
	s, err := bb.NewSigner([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const liveSecret = "a live view test secret, 32 bytes or more"

func TestLiveTokenRoundTrip(t *testing.T) {
	s := liveSigner(t, liveSecret)
	now := time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC)
	for _, ro := range []bool{false, true} {
		g := bb.LiveGrant{SessionID: bb.NewID(), Expires: now.Add(time.Hour), ReadOnly: ro}
		tok := s.LiveToken(g)
		if strings.ContainsAny(tok, "/?#&=%+ ") {
			t.Errorf("token %q needs escaping in a URL", tok)
		}
		got, err := s.ParseLiveToken(tok, now)
		if err != nil {
			t.Fatalf("ParseLiveToken(%q): %v", tok, err)
		}
		if diff := cmp.Diff(g, got); diff != "" {
			t.Errorf("grant (-want +got):\n%s", diff)
		}
	}
}

func TestLiveTokenRefused(t *testing.T) {
	s := liveSigner(t, liveSecret)
	now := time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC)
	id := bb.NewID()
	tok := s.LiveToken(bb.LiveGrant{SessionID: id, Expires: now.Add(time.Minute)})
	roTok := s.LiveToken(bb.LiveGrant{SessionID: id, Expires: now.Add(time.Minute), ReadOnly: true})
	parts := strings.Split(tok, ".")
	tests := []struct {
		name, token string
		now         time.Time
		wantMsg     string
	}{
		{name: "expired", token: tok, now: now.Add(time.Minute), wantMsg: "expired"},
		{name: "long expired", token: tok, now: now.Add(24 * time.Hour), wantMsg: "expired"},
		{name: "other secret", token: liveSigner(t, liveSecret+"!").LiveToken(bb.LiveGrant{SessionID: id, Expires: now.Add(time.Minute)}), now: now, wantMsg: "invalid"},
		{name: "extended expiry", token: strings.Replace(tok, parts[2], parts[2]+"0", 1), now: now, wantMsg: "invalid"},
		{name: "other session", token: strings.Replace(tok, id, bb.NewID(), 1), now: now, wantMsg: "invalid"},
		{name: "read-only made read-write", token: strings.Replace(roTok, ".ro.", ".rw.", 1), now: now, wantMsg: "invalid"},
		{name: "mac changed", token: tok[:len(tok)-1] + string(tok[len(tok)-1]^1), now: now, wantMsg: "invalid"},
		{name: "mac cut", token: tok[:len(tok)-5], now: now, wantMsg: "invalid"},
		{name: "signing key", token: s.SigningKey(id), now: now, wantMsg: "invalid"},
		{name: "other purpose", token: s.Sign("signing-key", "lv1."+id+".9999999999.rw"), now: now, wantMsg: "invalid"},
		{name: "empty", token: "", now: now, wantMsg: "invalid"},
		{name: "huge", token: strings.Repeat("a", 10000), now: now, wantMsg: "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := s.ParseLiveToken(tt.token, tt.now)
			if err == nil {
				t.Fatalf("ParseLiveToken = %+v, nil; want an error", g)
			}
			if bb.CodeOf(err) != bb.CodeUnauthorized || !strings.Contains(bb.MessageOf(err), tt.wantMsg) {
				t.Errorf("ParseLiveToken error = %v (%s); want unauthorized, %q", err, bb.CodeOf(err), tt.wantMsg)
			}
		})
	}
}

func FuzzParseLiveToken(f *testing.F) {
	s := liveSigner(f, liveSecret)
	now := time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC)
	f.Add(s.LiveToken(bb.LiveGrant{SessionID: "365d0f97-e049-4b2c-b5f0-acdc13aac623", Expires: now.Add(time.Hour)}))
	f.Add(s.LiveToken(bb.LiveGrant{SessionID: "365d0f97-e049-4b2c-b5f0-acdc13aac623", Expires: now, ReadOnly: true}))
	f.Add("lv1.x.1.rw.abc")
	f.Add("....")
	f.Fuzz(func(t *testing.T, token string) {
		g, err := s.ParseLiveToken(token, now)
		if err != nil {
			if bb.CodeOf(err) != bb.CodeUnauthorized {
				t.Errorf("ParseLiveToken(%q) error code %s; want unauthorized", token, bb.CodeOf(err))
			}
			return
		}
		// Only a token the Signer made parses, and it says the same again.
		if s.LiveToken(g) != token {
			t.Errorf("ParseLiveToken(%q) = %+v, which signs to %q", token, g, s.LiveToken(g))
		}
	})
}
