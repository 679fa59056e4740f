package replays

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
)

// slowFFmpeg writes an "ffmpeg" that never finishes: it sleeps, as a child of its shell.
func slowFFmpeg(t *testing.T) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nsleep 120\necho never\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// processesIn returns the processes whose working directory is under dir.
func processesIn(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil && strings.HasPrefix(cwd, dir) {
			out = append(out, e.Name()+" "+cwd)
		}
	}
	return out
}

// TestEncodeTimeout: an ffmpeg that runs past EncodeTimeout is killed with its whole
// process group (the shell's sleeping child too), the encode fails with a 5xx, and
// nothing of it is left.
func TestEncodeTimeout(t *testing.T) {
	s, blobs, id := newTestService(t, slowFFmpeg(t), func(c *Config) { c.EncodeTimeout = time.Second })
	putFrames(t, blobs, id, time.Now().UnixMilli(), []int64{0}, 1000, 64, 64)
	start := time.Now()
	_, err := s.Playlist(t.Context(), "p", id, "0", "b/")
	if err == nil || bb.CodeOf(err) != bb.CodeInternal {
		t.Fatalf("Playlist with a hung ffmpeg = %v; want an internal error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the encode took %v; want about EncodeTimeout (1s)", d)
	}
	if left := processesIn(t, s.cfg.WorkDir); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
}

// TestEncodeQueue: at most MaxEncodes run and MaxQueued wait, node-wide; one more
// is refused with 503 at once, and asking again for a page under way joins it.
func TestEncodeQueue(t *testing.T) {
	s, blobs, id := newTestService(t, slowFFmpeg(t), func(c *Config) { c.MaxEncodes = 1; c.MaxQueued = 1 })
	putPageFrames(t, blobs, id, []int{0, 1, 2}, time.Now().UnixMilli(), []int64{0}, 1000, 64, 64)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, page := range []string{"0", "1"} {
		wg.Go(func() { s.Playlist(ctx, "p", id, page, "b/") })
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.enc.mu.Lock()
		n := len(s.enc.inflight)
		s.enc.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d encodes under way; want 2", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := s.Playlist(t.Context(), "p", id, "2", "b/"); bb.CodeOf(err) != bb.CodeUnavailable {
		t.Errorf("a third page's encode = %v; want 503", err)
	}
	short, stop := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer stop()
	if _, err := s.Playlist(short, "p", id, "0", "b/"); err != context.DeadlineExceeded {
		t.Errorf("page 0 again = %v; want to wait for the encode under way", err)
	}
	cancel()
	wg.Wait()
	s.Close() // kills the encodes
	if left := processesIn(t, s.cfg.WorkDir); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
}

// TestPageAccess: another project's session, and page ids that are no page, are 404.
func TestPageAccess(t *testing.T) {
	s, blobs, id := newTestService(t, "")
	putFrames(t, blobs, id, time.Now().UnixMilli(), []int64{0}, 1000, 64, 64)
	for _, tc := range []struct{ project, session, page string }{
		{"other", id, "0"}, {"p", bb.NewID(), "0"}, {"p", "../" + id, "0"},
		{"p", id, "1"}, {"p", id, "00"}, {"p", id, "../0"}, {"p", id, "0 -i /etc/passwd"},
	} {
		if _, err := s.Playlist(t.Context(), tc.project, tc.session, tc.page, "b/"); bb.CodeOf(err) != bb.CodeNotFound {
			t.Errorf("Playlist(%q, %q, %q) = %v; want 404", tc.project, tc.session, tc.page, err)
		}
		if _, err := s.Segment(t.Context(), tc.project, tc.session, tc.page, "seg00000.ts"); bb.CodeOf(err) != bb.CodeNotFound {
			t.Errorf("Segment(%q, %q, %q) = %v; want 404", tc.project, tc.session, tc.page, err)
		}
	}
	if _, err := s.Replays(t.Context(), "other", id); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("Replays of another project = %v; want 404", err)
	}
	if _, err := s.RequestDownloads(t.Context(), "other", id); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("RequestDownloads of another project = %v; want 404", err)
	}
}

// TestFrameByteCap: past MaxBytes a session's frames are dropped and no longer
// acknowledged (Chromium then sends none), and the quota counts what was kept.
func TestFrameByteCap(t *testing.T) {
	s, blobs, id := newTestService(t, "", func(c *Config) { c.MaxBytes = 10 << 10; c.MaxFPS = 1000 })
	var mu sync.Mutex
	acks := 0
	r := &run{s: s, id: id, pages: map[string]*page{}, stored: make(chan struct{}),
		send: func(_, method string, _ any) {
			if method == "Page.screencastFrameAck" {
				mu.Lock()
				acks++
				mu.Unlock()
			}
		}}
	r.addPage("S1")
	for i := range 10 {
		frame := make([]byte, 3<<10)
		frame[0] = byte(i) // each a new picture: repeats are not kept
		r.onFrame("S1", screencastFrame{Data: frame, SessionID: i})
		time.Sleep(2 * time.Millisecond) // the writer keeps up: no frame lost to the queue
	}
	r.Ending(bb.StatusCompleted)
	r.Stopped(t.Context(), nil, bb.StatusCompleted)
	infos, err := blobs.List(t.Context(), pageKey(id, 0, "f/"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, info := range infos {
		n += info.Size
	}
	if len(infos) != 3 || n > 10<<10 {
		t.Errorf("stored %d frames, %d bytes; want 3 under the 10 KiB cap", len(infos), n)
	}
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if acks != 3 {
		t.Errorf("%d frames acknowledged; want 3 (none past the cap)", acks)
	}
	if used, _ := r.SessionBlobBytes(t.Context()); used != 9<<10 {
		t.Errorf("SessionBlobBytes = %d; want %d", used, 9<<10)
	}
	pages, err := s.Replays(t.Context(), "p", id)
	if err != nil || len(pages) != 1 {
		t.Errorf("Replays = %v, %v; want the one page", pages, err)
	}
}

// tamper changes one character of a token, not its last: the last character of unpadded
// base64 may carry bits a decoder ignores, so changing it may change nothing (and the
// test once changed an "A" into "A", one run in 16).
func tamper(token string) string {
	i := len(token) - 3
	c := byte('A')
	if token[i] == 'A' {
		c = 'B'
	}
	return token[:i] + string(c) + token[i+1:]
}

// TestDownloadToken: a download URL's token opens only its page, and not after it expired.
func TestDownloadToken(t *testing.T) {
	s, blobs, id := newTestService(t, "")
	if _, err := blobs.Put(t.Context(), pageKey(id, 0, "video.mp4"), strings.NewReader("mp4")); err != nil {
		t.Fatal(err)
	}
	sign := func(session, page string, exp time.Time) string {
		return s.cfg.Signer.Sign(downloadPurpose, "rd1."+session+"."+page+"."+strconv.FormatInt(exp.Unix(), 10))
	}
	good := sign(id, "0", time.Now().Add(time.Minute))
	rc, err := s.OpenDownload(t.Context(), id, "0", good)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	for name, tc := range map[string]struct{ id, page, token string }{
		"expired":       {id, "0", sign(id, "0", time.Now().Add(-time.Second))},
		"other page":    {id, "1", good},
		"other session": {bb.NewID(), "0", good},
		"tampered":      {id, "0", tamper(good)},
		"unsigned":      {id, "0", "rd1." + id + ".0.99999999999"},
		"bad page":      {id, "00", good},
		"empty":         {id, "0", ""},
	} {
		if _, err := s.OpenDownload(t.Context(), tc.id, tc.page, tc.token); bb.CodeOf(err) != bb.CodeNotFound {
			t.Errorf("%s: OpenDownload = %v; want 404", name, err)
		}
	}
}

// TestFramePacing: a new picture is kept and stops the screencast until 1/MaxFPS later;
// a repeat of the last picture (what a restart sends for a static page) is acknowledged,
// not kept, and leaves the screencast on.
func TestFramePacing(t *testing.T) {
	s, _, id := newTestService(t, "", func(c *Config) { c.MaxFPS = 20 })
	var mu sync.Mutex
	var sent []string
	r := &run{s: s, id: id, pages: map[string]*page{}, stored: make(chan struct{}),
		send: func(_, method string, _ any) {
			mu.Lock()
			sent = append(sent, strings.TrimPrefix(method, "Page."))
			mu.Unlock()
		}}
	r.addPage("S1")
	r.onFrame("S1", screencastFrame{Data: []byte("picture 1"), SessionID: 1})
	r.onFrame("S1", screencastFrame{Data: []byte("picture 2"), SessionID: 2}) // on its way when stopped
	time.Sleep(200 * time.Millisecond)                                        // the restart (50 ms)
	r.onFrame("S1", screencastFrame{Data: []byte("picture 2"), SessionID: 3}) // the restart's: static
	time.Sleep(100 * time.Millisecond)
	r.Ending(bb.StatusCompleted)
	r.Stopped(t.Context(), nil, bb.StatusCompleted)
	mu.Lock()
	got := strings.Join(sent, ",")
	mu.Unlock()
	want := "startScreencast,screencastFrameAck,stopScreencast,screencastFrameAck,startScreencast,screencastFrameAck"
	if got != want {
		t.Errorf("commands %s; want %s", got, want)
	}
	if pages := r.snapshot(time.Now()); len(pages) != 1 || pages[0].Frames != 2 {
		t.Errorf("pages %+v; want one with 2 frames", pages)
	}
}
