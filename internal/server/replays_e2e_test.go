package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/browserd/browserd/internal/blobtest"
	"github.com/browserd/browserd/internal/s3blob/s3test"
)

// animatedPage is a page that never stops changing: a canvas repainted every frame and
// a CSS animation.
const animatedPage = `<!doctype html><html><head><title>anim</title><style>
@keyframes m{from{margin-left:0}to{margin-left:400px}}
#d{width:80px;height:80px;background:#c00;animation:m 1s infinite alternate}</style></head>
<body style="margin:0"><canvas id=c width=640 height=200></canvas><div id=d></div><script>
const x=document.getElementById('c').getContext('2d');let i=0;
function f(){x.fillStyle='hsl('+(i++%360)+',80%,50%)';x.fillRect(0,0,640,200);requestAnimationFrame(f)}f()
</script></body></html>`

type replayList struct {
	PageCount int `json:"pageCount"`
	Pages     []struct {
		PageID      string `json:"pageId"`
		URL         string `json:"url"`
		StartTimeMs int64  `json:"startTimeMs"`
		EndTimeMs   int64  `json:"endTimeMs"`
	} `json:"pages"`
}

type downloadList struct {
	Downloads []struct {
		PageID      string `json:"pageId"`
		Status      string `json:"status"`
		CompletedAt string `json:"completedAt"`
		DownloadURL string `json:"downloadUrl"`
	} `json:"downloads"`
}

// ffmpegWrapper writes a script that fails while the file it returns exists and runs
// the real ffmpeg otherwise: a forced encode failure.
func ffmpegWrapper(t *testing.T) (script, failMarker string) {
	t.Helper()
	real, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("no ffmpeg (scripts/deps.sh installs it)")
	}
	dir := t.TempDir()
	failMarker = filepath.Join(dir, "fail")
	script = filepath.Join(dir, "ffmpeg")
	body := fmt.Sprintf("#!/bin/sh\nif [ -e %q ]; then echo forced failure >&2; exit 1; fi\nexec %q \"$@\"\n", failMarker, real)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, failMarker
}

// TestReplays records a session of two animated tabs with the live screencast and
// checks the whole of spec §3.10 against it: the pages, the HLS playlist and every
// segment, MP4 downloads (a forced failure retried), ffprobe on the MP4, another
// project's key, bad page ids and segment names, and recordSession: false.
func TestReplays(t *testing.T) { replaysEndToEnd(t, defaultEnv()) }

// TestReplaysS3 is TestReplays with --blob-store on a real S3 server (SeaweedFS) behind
// the spool: frames, pages, videos and download states all reach S3.
func TestReplaysS3(t *testing.T) {
	srv := s3test.Start(t)
	url := srv.URL("browserd-replays")
	id := replaysEndToEnd(t, s3Env(srv), "--blob-store", url)
	list, err := bucketStore(t, srv, url).List(t.Context(), "sessions/"+id+"/replays/")
	if err != nil {
		t.Fatal(err)
	}
	keys := strings.Join(blobtest.Keys(list), " ")
	for _, want := range []string{"/replays/pages.json", "/replays/0/f/", "/replays/1/f/", "/replays/0/video.mp4",
		"/replays/0/hls/index.m3u8", "/replays/0/hls/seg00000.ts", "/replays/1/download.json"} {
		if !strings.Contains(keys, want) {
			t.Errorf("S3 holds %s; want a key with %s", keys, want)
		}
	}
}

// replaysEndToEnd is TestReplays on a server with env and args; it returns the id of
// the recorded session once the server has stopped.
func replaysEndToEnd(t *testing.T, env map[string]string, args ...string) string {
	wrapper, failMarker := ffmpegWrapper(t)
	dir := t.TempDir()
	srv := startServer(t, dir, env, append([]string{"--ffmpeg", wrapper, "--video-fps", "10"}, args...)...)
	var other struct {
		ID string `json:"id"`
	}
	runAdmin(t, dir, &other, "projects", "create", "--name", "other")
	var created struct {
		Key string `json:"key"`
	}
	runAdmin(t, dir, &created, "keys", "create", "--project", other.ID, "--name", "other")
	otherKey := created.Key

	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, animatedPage)
	}))
	defer site.Close()

	sess := srv.create(t, testAPIKey, map[string]any{"keepAlive": true})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c := mustDial(t, ctx, sess.ConnectURL)
	sid, err := c.attachPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.gotoAndTitle(ctx, sid, site.URL+"/one"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	var tab struct {
		TargetID string `json:"targetId"`
	}
	if err := c.call(ctx, "", "Target.createTarget", map[string]any{"url": site.URL + "/two"}, &tab); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := c.call(ctx, "", "Target.closeTarget", map[string]any{"targetId": tab.TargetID}, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	srv.release(t, testAPIKey, sess.ID)
	ended := time.Now()
	srv.waitStatus(t, testAPIKey, sess.ID, "COMPLETED", 30*time.Second)

	base := "/v1/sessions/" + sess.ID
	var list replayList
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		callJSON(t, srv.URL, "GET", base+"/replays", testAPIKey, nil, http.StatusOK, &list)
		if list.PageCount >= 2 || time.Now().After(deadline) {
			break
		}
	}
	if list.PageCount != 2 || len(list.Pages) != 2 {
		t.Fatalf("replays = %+v; want 2 pages", list)
	}
	p0, p1 := list.Pages[0], list.Pages[1]
	if p0.PageID != "0" || p1.PageID != "1" {
		t.Errorf("page ids %q, %q; want 0, 1", p0.PageID, p1.PageID)
	}
	if d := p0.EndTimeMs - p0.StartTimeMs; d < 5000 || d > 30000 {
		t.Errorf("page 0 lasted %d ms; want 6-7 s", d)
	}
	if d := p1.EndTimeMs - p1.StartTimeMs; d < 2000 || d > 6000 {
		t.Errorf("page 1 lasted %d ms; want about 3 s", d)
	}
	if p1.StartTimeMs < p0.StartTimeMs || p1.EndTimeMs > p0.EndTimeMs || p0.EndTimeMs > ended.UnixMilli()+2000 {
		t.Errorf("pages %+v; want page 1 within page 0, both ended by %d", list.Pages, ended.UnixMilli())
	}
	if want := srv.URL + base + "/replays/0"; p0.URL != want {
		t.Errorf("page 0 url %q; want %q", p0.URL, want)
	}

	// Another project's key, bad page ids: 404 in the API's error shape.
	for _, path := range []string{"/replays", "/replays/0", "/replays/0/seg00000.ts", "/recording/downloads"} {
		if code, body := call(t, srv.URL, "GET", base+path, otherKey, nil); code != http.StatusNotFound {
			t.Errorf("GET %s with another project's key = %d %s; want 404", path, code, body)
		}
	}
	if code, body := call(t, srv.URL, "POST", base+"/recording/downloads", otherKey, nil); code != http.StatusNotFound {
		t.Errorf("POST downloads with another project's key = %d %s; want 404", code, body)
	}
	for _, bad := range []string{"01", "-1", "abc", "0%3Brm", "%2e%2e", "99", "0x1", "1e3", "00000"} {
		code, body := call(t, srv.URL, "GET", base+"/replays/"+bad, testAPIKey, nil)
		var e struct {
			StatusCode int    `json:"statusCode"`
			Message    string `json:"message"`
		}
		if json.Unmarshal(body, &e) != nil || code != http.StatusNotFound || e.StatusCode != 404 || e.Message == "" {
			t.Errorf("GET replays/%s = %d %s; want 404 in the error shape", bad, code, body)
		}
	}

	// Downloads: a forced failure, then a retry.
	if err := os.WriteFile(failMarker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var dl downloadList
	callJSON(t, srv.URL, "POST", base+"/recording/downloads", testAPIKey, nil, http.StatusOK, &dl)
	if len(dl.Downloads) != 2 || dl.Downloads[0].Status != "PENDING" || dl.Downloads[1].Status != "PENDING" {
		t.Fatalf("first POST downloads = %+v; want 2 PENDING", dl)
	}
	dl = waitDownloads(t, srv, base, "FAILED")
	if err := os.Remove(failMarker); err != nil {
		t.Fatal(err)
	}
	callJSON(t, srv.URL, "POST", base+"/recording/downloads", testAPIKey, nil, http.StatusOK, &dl)
	for _, d := range dl.Downloads {
		if d.Status != "PENDING" && d.Status != "COMPLETED" {
			t.Errorf("re-POST after a failure: page %s is %s; want PENDING (retried)", d.PageID, d.Status)
		}
	}
	dl = waitDownloads(t, srv, base, "COMPLETED")
	for i, d := range dl.Downloads {
		p := list.Pages[i]
		if _, err := time.Parse(time.RFC3339, d.CompletedAt); err != nil || d.DownloadURL == "" {
			t.Fatalf("completed download %+v; want completedAt and downloadUrl", d)
		}
		mp4 := filepath.Join(t.TempDir(), "page.mp4")
		fetchTo(t, d.DownloadURL, "", mp4, http.StatusOK)
		codec, dur := probe(t, mp4)
		want := float64(p.EndTimeMs-p.StartTimeMs) / 1000
		if codec != "h264" || math.Abs(dur-want) > 1 {
			t.Errorf("page %s MP4: codec %s, %.2f s; want h264, %.2f s ±1", d.PageID, codec, dur, want)
		}
		// The URL is the grant: tampered, or for the other page, it is nothing.
		u, _ := url.Parse(d.DownloadURL)
		q := u.Query()
		q.Set("token", q.Get("token")+"x")
		u.RawQuery = q.Encode()
		fetchTo(t, u.String(), "", "", http.StatusNotFound)
		other := strings.Replace(d.DownloadURL, "/downloads/"+d.PageID+"?", "/downloads/"+strconv.Itoa(1-i)+"?", 1)
		fetchTo(t, other, "", "", http.StatusNotFound)
	}
	// A second POST leaves the COMPLETED ones alone.
	callJSON(t, srv.URL, "POST", base+"/recording/downloads", testAPIKey, nil, http.StatusOK, &dl)
	for _, d := range dl.Downloads {
		if d.Status != "COMPLETED" {
			t.Errorf("POST after completion: page %s is %s; want COMPLETED", d.PageID, d.Status)
		}
	}

	// HLS: the playlist, every segment it lists, and nothing else.
	for _, p := range list.Pages {
		pl := fetchBody(t, p.URL, testAPIKey, http.StatusOK, "application/vnd.apple.mpegurl")
		segs := playlistURIs(t, pl)
		if len(segs) == 0 {
			t.Fatalf("playlist of page %s lists no segment:\n%s", p.PageID, pl)
		}
		var total float64
		for _, line := range strings.Split(string(pl), "\n") {
			if v, ok := strings.CutPrefix(line, "#EXTINF:"); ok {
				f, _ := strconv.ParseFloat(strings.TrimSuffix(v, ","), 64)
				total += f
			}
		}
		if want := float64(p.EndTimeMs-p.StartTimeMs) / 1000; math.Abs(total-want) > 1 {
			t.Errorf("playlist of page %s lasts %.2f s; want %.2f ±1", p.PageID, total, want)
		}
		for _, seg := range segs {
			if !strings.HasPrefix(seg, p.URL+"/seg") {
				t.Errorf("segment URI %q not under %s/", seg, p.URL)
			}
			if b := fetchBody(t, seg, testAPIKey, http.StatusOK, "video/mp2t"); len(b) == 0 {
				t.Errorf("segment %s is empty", seg)
			}
			fetchBody(t, seg, otherKey, http.StatusNotFound, "")
			fetchBody(t, seg, "", http.StatusUnauthorized, "")
		}
		for _, bad := range []string{"seg99999.ts", "..%2Fpages.json", "index.m3u8", "seg0000.ts", "%2e%2e"} {
			fetchBody(t, p.URL+"/"+bad, testAPIKey, http.StatusNotFound, "")
		}
	}

	// recordSession: false records nothing: no page, no download.
	quiet := srv.create(t, testAPIKey, map[string]any{"keepAlive": true, "browserSettings": map[string]any{"recordSession": false}})
	c2 := mustDial(t, ctx, quiet.ConnectURL)
	sid2, err := c2.attachPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.gotoAndTitle(ctx, sid2, site.URL+"/quiet"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	srv.release(t, testAPIKey, quiet.ID)
	srv.waitStatus(t, testAPIKey, quiet.ID, "COMPLETED", 30*time.Second)
	time.Sleep(time.Second)
	callJSON(t, srv.URL, "GET", "/v1/sessions/"+quiet.ID+"/replays", testAPIKey, nil, http.StatusOK, &list)
	if list.PageCount != 0 || len(list.Pages) != 0 {
		t.Errorf("replays of a recordSession:false session = %+v; want none", list)
	}
	callJSON(t, srv.URL, "POST", "/v1/sessions/"+quiet.ID+"/recording/downloads", testAPIKey, nil, http.StatusOK, &dl)
	if len(dl.Downloads) != 0 {
		t.Errorf("downloads of a recordSession:false session = %+v; want none", dl)
	}

	// Nothing of the encodes is left: no ffmpeg, no temp dir.
	srv.stop(t)
	if left, _ := filepath.Glob(filepath.Join(dir, "video-work", "encode-*")); len(left) > 0 {
		t.Errorf("encode temp dirs left: %v", left)
	}
	assertNoProcessIn(t, dir)
	return sess.ID
}

// waitDownloads polls the downloads until every page has status want.
func waitDownloads(t *testing.T, srv *testServer, base, want string) downloadList {
	t.Helper()
	var dl downloadList
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(250 * time.Millisecond) {
		callJSON(t, srv.URL, "GET", base+"/recording/downloads", testAPIKey, nil, http.StatusOK, &dl)
		done := len(dl.Downloads) > 0
		for _, d := range dl.Downloads {
			done = done && d.Status == want
		}
		if done {
			return dl
		}
		if time.Now().After(deadline) {
			t.Fatalf("downloads = %+v; want all %s", dl, want)
		}
	}
}

// fetchBody GETs an absolute URL with key (none when ""), checks the status and, when
// given, the content type, and returns the body.
func fetchBody(t *testing.T, u, key string, want int, contentType string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-BB-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Errorf("GET %s = %d %s; want %d", u, resp.StatusCode, clipBody(b), want)
	}
	if contentType != "" && resp.Header.Get("Content-Type") != contentType {
		t.Errorf("GET %s: Content-Type %q; want %q", u, resp.Header.Get("Content-Type"), contentType)
	}
	return b
}

// fetchTo GETs u and, when file is set, writes the body there.
func fetchTo(t *testing.T, u, key, file string, want int) {
	t.Helper()
	b := fetchBody(t, u, key, want, "")
	if file != "" {
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// playlistURIs returns the URI lines of an HLS playlist.
func playlistURIs(t *testing.T, pl []byte) []string {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(pl))
	if !sc.Scan() || sc.Text() != "#EXTM3U" {
		t.Fatalf("not an HLS playlist:\n%s", pl)
	}
	var uris []string
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			uris = append(uris, l)
		}
	}
	if !bytes.Contains(pl, []byte("#EXT-X-PLAYLIST-TYPE:VOD")) || !bytes.Contains(pl, []byte("#EXT-X-ENDLIST")) {
		t.Errorf("playlist is not a finished VOD:\n%s", pl)
	}
	return uris
}

// probe returns the video codec and duration of a file, read by ffprobe.
func probe(t *testing.T, file string) (codec string, seconds float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var p struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	for _, s := range p.Streams {
		if s.CodecType == "video" {
			codec = s.CodecName
		}
	}
	seconds, _ = strconv.ParseFloat(p.Format.Duration, 64)
	return codec, seconds
}

// assertNoProcessIn fails when a process runs with its working directory in dir (an
// ffmpeg the server started and did not reap).
func assertNoProcessIn(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err == nil && strings.HasPrefix(cwd, dir) {
			cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			t.Errorf("process %s (%s) still runs in %s", e.Name(), bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}), cwd)
		}
	}
}

// waitReplayPage waits until a session's replay lists a page (while it runs: a page
// with a frame stored).
func waitReplayPage(c *apiChecker, id string) {
	c.t.Helper()
	var list replayList
	for deadline := time.Now().Add(30 * time.Second); list.PageCount == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			c.t.Fatalf("session %s has no replay page", id)
		}
		decodeInto(c.t, c.do("GET", "/v1/sessions/"+id+"/replays", nil, "", 200), &list)
	}
}

// checkReplaysAPI runs every replay operation (spec §3.10) to success against an ended
// session that recorded at least one page, through the OpenAPI checker.
func checkReplaysAPI(c *apiChecker, id string) {
	t := c.t
	t.Helper()
	base := "/v1/sessions/" + id
	var list replayList
	for deadline := time.Now().Add(30 * time.Second); list.PageCount == 0; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("session %s has no replay page", id)
		}
		decodeInto(t, c.do("GET", base+"/replays", nil, "", 200), &list)
	}
	c.do("GET", base+"/replays/x", nil, "", 404)
	pl := c.do("GET", base+"/replays/0", nil, "", 200)
	segs := playlistURIs(t, pl)
	if len(segs) == 0 {
		t.Fatalf("empty playlist:\n%s", pl)
	}
	u, err := url.Parse(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	c.do("GET", u.Path, nil, "", 200)
	c.do("GET", base+"/replays/0/seg99999.ts", nil, "", 404)
	c.do("POST", base+"/recording/downloads", nil, "", 200)
	var dl downloadList
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		decodeInto(t, c.do("GET", base+"/recording/downloads", nil, "", 200), &dl)
		if len(dl.Downloads) > 0 && dl.Downloads[0].Status == "COMPLETED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("downloads %+v; want COMPLETED", dl)
		}
	}
	u, err = url.Parse(dl.Downloads[0].DownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	c.do("GET", u.RequestURI(), nil, "", 200)
	c.do("GET", u.Path+"?token=forged", nil, "", 404)
}
