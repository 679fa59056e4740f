package httpapi

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bb "github.com/browserd/browserd"
)

// TestUploadDiskQuota is security-review F8: uploads count toward the session's disk
// quota (twice: the blob and the copy in the session's spool), checked before the body
// is read: the upload that would pass it is a 413 and leaves nothing behind.
func TestUploadDiskQuota(t *testing.T) {
	e := newArtifactEnv(t, 1<<20, func(c *bb.ManagerConfig) { c.Disk.SessionMax = 450 << 10 })
	id := e.create(t, `{}`)
	up := e.live(t, id).UploadDir
	post := func(name string) *httptestRecorder {
		body, ct := multipartBody(t, [3]string{"file", name, strings.Repeat("x", 100<<10)})
		return e.raw(t, "POST", "/v1/sessions/"+id+"/uploads", e.key, body, map[string]string{"Content-Type": ct})
	}
	for _, name := range []string{"a.bin", "b.bin"} {
		if w := post(name); w.Code != http.StatusOK {
			t.Fatalf("upload %s = %d %s", name, w.Code, w.Body)
		}
	}
	w := post("c.bin")
	wantError(t, w, http.StatusRequestEntityTooLarge)
	if !strings.Contains(w.Body.String(), "disk quota") || w.Header().Get("x-should-retry") != "false" {
		t.Errorf("third upload = %s, x-should-retry %q; want the disk quota named, no retry", w.Body, w.Header().Get("x-should-retry"))
	}
	if _, err := os.Stat(filepath.Join(up, "c.bin")); !os.IsNotExist(err) {
		t.Errorf("c.bin: %v; want nothing stored", err)
	}
}
