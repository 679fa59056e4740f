package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestBadLocalesKeepNodeReady is security-review F6: creates whose fingerprint locales
// would make the exec of Chromium fail (a NUL, a 140 000-byte locale) are refused with a
// 400 naming the field, and do not take the node out of rotation.
func TestBadLocalesKeepNodeReady(t *testing.T) {
	srv := startServer(t, t.TempDir(), defaultEnv())
	for i, locale := range []string{"en-US\x00x", strings.Repeat("a", 140000), "en-US\x00y"} {
		body := map[string]any{"browserSettings": map[string]any{"fingerprint": map[string]any{"locales": []string{locale}}}}
		code, resp := call(t, srv.URL, "POST", "/v1/sessions", testAPIKey, body)
		var e struct{ Message string }
		if err := json.Unmarshal(resp, &e); err != nil {
			t.Fatalf("create %d: %s: %v", i, resp, err)
		}
		if code != http.StatusBadRequest || !strings.HasPrefix(e.Message, "body/browserSettings/fingerprint/locales/0 ") {
			t.Errorf("create %d with a bad locale = %d %s; want 400 naming body/browserSettings/fingerprint/locales/0", i, code, resp)
		}
	}
	if code, r := readyz(t, srv.URL); code != http.StatusOK || !r.Ready {
		t.Errorf("/readyz after 3 bad creates = %d %+v; want 200 ready", code, r)
	}
	// A good locale still works.
	s := srv.create(t, testAPIKey, map[string]any{"browserSettings": map[string]any{"fingerprint": map[string]any{"locales": []string{"de-DE", "en"}}}})
	srv.release(t, testAPIKey, s.ID)
}
