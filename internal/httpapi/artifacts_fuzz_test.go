package httpapi

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	bb "github.com/browserd/browserd"
)

// FuzzSessionUpload sends arbitrary multipart bodies and boundaries to POST
// /v1/sessions/{id}/uploads: the answer is 200 or a 4xx of the upload contract (never
// 5xx), and whatever is stored has a clean name inside the session's upload dir.
func FuzzSessionUpload(f *testing.F) {
	e := newArtifactEnv(f, 4096)
	req, err := bb.DecodeCreateSessionRequest([]byte(`{}`))
	if err != nil {
		f.Fatal(err)
	}
	sess, err := e.mgr.CreateSession(f.Context(), e.project.ID, req)
	if err != nil {
		f.Fatal(err)
	}
	live, ok := e.art.Live(sess.ID)
	if !ok {
		f.Fatal("session not live")
	}
	seeds := []struct{ boundary, body string }{
		{"xyz", "--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n--xyz--\r\n"},
		{"xyz", "--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../../../etc/x\"\r\n\r\nx\r\n--xyz--\r\n"},
		{"xyz", "--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''%E2%80%AEevil.txt\r\n\r\nx\r\n--xyz--\r\n"},
		{"xyz", "--xyz\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nx\r\n--xyz--\r\n"},
		{"b", "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"..\"\r\n\r\n--b--"},
		{"", "garbage"},
	}
	for _, s := range seeds {
		f.Add(s.boundary, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, boundary string, body []byte) {
		r := httptest.NewRequest("POST", "/v1/sessions/"+sess.ID+"/uploads", strings.NewReader(string(body)))
		r.Header.Set("X-BB-API-Key", e.key)
		r.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		w := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(w, r)
		switch w.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("status %d %s", w.Code, w.Body)
		}
		entries, err := os.ReadDir(live.UploadDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range entries {
			if clean, err := bb.SanitizeUploadName(en.Name()); err != nil || clean != en.Name() || !en.Type().IsRegular() {
				t.Fatalf("stored %q (%v), not a clean file name", en.Name(), en.Type())
			}
		}
	})
}
