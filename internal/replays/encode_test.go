package replays

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/fsblob"
)

// testSigner signs with a fixed key (bb.Signer).
func testSigner(t *testing.T) *bb.Signer {
	s, err := bb.NewSigner(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeSessions knows one session per id, of project "p".
type fakeSessions map[string]*bb.Session

func (f fakeSessions) Session(_ context.Context, id string) (*bb.Session, error) {
	if s := f[id]; s != nil {
		return s, nil
	}
	return nil, bb.Errorf(bb.CodeNotFound, "no session")
}

func needFFmpeg(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("no ffmpeg")
	}
}

// newTestService returns a Service on a temp dir's blobs with its own ffmpeg.
func newTestService(t *testing.T, ffmpeg string, tune ...func(*Config)) (*Service, *fsblob.Store, string) {
	t.Helper()
	dir := t.TempDir()
	blobs, err := fsblob.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	id := bb.NewID()
	cfg := Config{Sessions: fakeSessions{id: {ID: id, ProjectID: "p"}}, Blobs: blobs, Signer: testSigner(t),
		Enabled: true, FFmpeg: ffmpeg, WorkDir: filepath.Join(dir, "work"), EncodeTimeout: time.Minute}
	for _, f := range tune {
		f(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if left, _ := filepath.Glob(filepath.Join(dir, "work", "*")); len(left) > 0 {
			t.Errorf("encode files left: %v", left)
		}
	})
	return s, blobs, id
}

// putFrames stores a page's frames: one JPEG at each of the times (ms after start),
// w×h, and pages.json with the page ending at end ms.
func putFrames(t *testing.T, blobs bb.BlobStore, id string, start int64, at []int64, end int64, w, h int) pageInfo {
	t.Helper()
	return putPageFrames(t, blobs, id, []int{0}, start, at, end, w, h)[0]
}

// putPageFrames is putFrames for several pages alike.
func putPageFrames(t *testing.T, blobs bb.BlobStore, id string, ids []int, start int64, at []int64, end int64, w, h int) []pageInfo {
	t.Helper()
	for i, ms := range at {
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				img.Set(x, y, color.RGBA{uint8(i * 40), uint8(x), uint8(y), 255})
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 60}); err != nil {
			t.Fatal(err)
		}
		for _, n := range ids {
			if _, err := blobs.Put(t.Context(), pageKey(id, n, "f/"+frameKeyName(i, start+ms)), bytes.NewReader(buf.Bytes())); err != nil {
				t.Fatal(err)
			}
		}
	}
	var pages []pageInfo
	for _, n := range ids {
		pages = append(pages, pageInfo{ID: n, Start: start, End: start + end, Frames: len(at)})
	}
	b, _ := json.Marshal(pages)
	if _, err := blobs.Put(t.Context(), pagesKey(id), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	return pages
}

func ffprobeDuration(t *testing.T, file string) (string, float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name", "-of", "json", file).Output()
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &p); err != nil || len(p.Streams) == 0 {
		t.Fatalf("ffprobe: %s %v", out, err)
	}
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	return p.Streams[0].CodecName, d
}

// TestEncodeTiming: a page with a burst of frames, then nothing for seconds (an idle
// page), then the end: the MP4 and the HLS playlist both last the page's wall time, the
// last frame held; frames of another size are scaled into the first one's.
func TestEncodeTiming(t *testing.T) {
	needFFmpeg(t)
	s, blobs, id := newTestService(t, "")
	start := time.Now().Add(-time.Minute).UnixMilli()
	for _, tc := range []struct {
		name string
		at   []int64
		end  int64
	}{
		{"burst then idle", []int64{100, 200, 300, 400, 1500}, 9000},
		{"one frame", []int64{50}, 3000},
		{"steady", []int64{0, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000}, 2100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := blobs.DeletePrefix(t.Context(), replayPrefix(id)); err != nil {
				t.Fatal(err)
			}
			p := putFrames(t, blobs, id, start, tc.at, tc.end, 322, 181)
			pl, err := s.Playlist(t.Context(), "p", id, "0", "https://x/seg/")
			if err != nil {
				t.Fatal(err)
			}
			var total float64
			for line := range strings.SplitSeq(string(pl), "\n") {
				if v, ok := strings.CutPrefix(line, "#EXTINF:"); ok {
					f, _ := strconv.ParseFloat(strings.TrimSuffix(v, ","), 64)
					total += f
				}
			}
			want := float64(p.End-p.Start) / 1000
			if math.Abs(total-want) > 0.5 {
				t.Errorf("playlist lasts %.2f s; want %.2f:\n%s", total, want, pl)
			}
			rc, err := blobs.Open(t.Context(), pageKey(id, 0, "video.mp4"))
			if err != nil {
				t.Fatal(err)
			}
			mp4 := filepath.Join(t.TempDir(), "v.mp4")
			b, _ := io.ReadAll(rc)
			rc.Close()
			os.WriteFile(mp4, b, 0o600)
			codec, d := ffprobeDuration(t, mp4)
			if codec != "h264" || math.Abs(d-want) > 0.5 {
				t.Errorf("MP4: %s, %.2f s; want h264, %.2f s", codec, d, want)
			}
		})
	}
}
