package server

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"
)

// TestDownloadsAllowAndName: a client that asks for "allowAndName" (Playwright does, by
// default, on connectOverCDP) makes Chromium save downloads under their guid; the zip
// still names them as the site did (report-<ms>.txt), and two downloads of one name are
// both kept.
func TestDownloadsAllowAndName(t *testing.T) {
	t.Parallel()
	srv := startServer(t, t.TempDir(), defaultEnv())
	site := artifactSite(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	sess := srv.create(t, testAPIKey, nil)

	cdp := mustDial(t, ctx, sess.ConnectURL)
	sid := openArtifactPage(t, ctx, cdp, site, "allowAndName", "/tmp/playwright-artifacts-x")
	// Two downloads of report.txt, started by the page in one task.
	expr := fmt.Sprintf(`for (let i = 0; i < 2; i++) { const a = document.createElement('a'); a.href = %q; a.download = ''; document.body.append(a); a.click(); } 1`, site.URL+"/file")
	if err := cdp.call(ctx, sid, "Runtime.evaluate", map[string]any{"expression": expr}, nil); err != nil {
		t.Fatal(err)
	}
	named := regexp.MustCompile(`^report(-2)?-\d{13}\.txt$`)
	var got map[string]string
	poll(t, "both downloads in the zip under the site's name", func() bool {
		code, b := call(t, srv.URL, "GET", "/v1/sessions/"+sess.ID+"/downloads", testAPIKey, nil)
		if code != 200 {
			t.Fatalf("downloads = %d %s", code, b)
		}
		got = zipFiles(t, b)
		n := 0
		for name, content := range got {
			if named.MatchString(name) && content == "the report" {
				n++
			}
		}
		return n == 2
	})
	srv.release(t, testAPIKey, sess.ID)
	t.Logf("zip: %v", got)
}
