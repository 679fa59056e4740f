package replays

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bb "github.com/browserd/browserd"
)

// encoder runs the node's encodes: at most MaxEncodes at once, at most MaxQueued
// waiting, one per page however many ask for it.
type encoder struct {
	s     *Service
	slots chan struct{}
	cpu   atomic.Int64 // nanoseconds of CPU all ffmpeg runs took, for the log

	mu       sync.Mutex
	inflight map[string]*encodeJob // by page key prefix
}

// encodeJob is one page's encode; done is closed when err is set.
type encodeJob struct {
	done chan struct{}
	err  error
}

func newEncoder(s *Service) *encoder {
	return &encoder{s: s, slots: make(chan struct{}, s.cfg.MaxEncodes), inflight: map[string]*encodeJob{}}
}

// ensure returns once the page's video (MP4 and HLS) is in the blob store: at once when
// it is, else after an encode, this call's or one already under way. The encode runs
// on the Service's context, so a caller that gives up does not cancel it for others.
func (e *encoder) ensure(ctx context.Context, id string, p pageInfo) error {
	if ok, err := e.encoded(ctx, id, p); err != nil {
		return err
	} else if ok {
		return nil
	}
	job, err := e.start(id, p)
	if err != nil {
		return err
	}
	select {
	case <-job.done:
		return job.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// encoded reports whether the page's playlist is stored (it is stored last).
func (e *encoder) encoded(ctx context.Context, id string, p pageInfo) (bool, error) {
	infos, err := e.s.cfg.Blobs.List(ctx, pageKey(id, p.ID, "hls/index.m3u8"))
	if err != nil {
		return false, fmt.Errorf("look for the video of session %s page %d: %w", id, p.ID, err)
	}
	return len(infos) > 0 && infos[0].Key == pageKey(id, p.ID, "hls/index.m3u8"), nil
}

// start returns the page's job under way, or starts one; beyond MaxQueued, 503.
func (e *encoder) start(id string, p pageInfo) (*encodeJob, error) {
	key := pageKey(id, p.ID, "")
	e.mu.Lock()
	defer e.mu.Unlock()
	if job := e.inflight[key]; job != nil {
		return job, nil
	}
	if len(e.inflight) >= e.s.cfg.MaxQueued+e.s.cfg.MaxEncodes {
		return nil, bb.Errorf(bb.CodeUnavailable, "Too many videos are being made on this node; retry later")
	}
	if e.s.ctx.Err() != nil {
		return nil, bb.Errorf(bb.CodeUnavailable, "The server is shutting down")
	}
	job := &encodeJob{done: make(chan struct{})}
	e.inflight[key] = job
	e.s.wg.Go(func() {
		job.err = e.run(id, p)
		e.mu.Lock()
		delete(e.inflight, key)
		e.mu.Unlock()
		close(job.done)
	})
	return job, nil
}

// running reports whether the page's encode is queued or under way on this node.
func (e *encoder) running(id string, p pageInfo) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.inflight[pageKey(id, p.ID, "")] != nil
}

// run takes an encode slot and encodes the page.
func (e *encoder) run(id string, p pageInfo) error {
	select {
	case e.slots <- struct{}{}:
		defer func() { <-e.slots }()
	case <-e.s.ctx.Done():
		return bb.Errorf(bb.CodeUnavailable, "The server is shutting down")
	}
	ctx, cancel := context.WithTimeout(e.s.ctx, e.s.cfg.EncodeTimeout)
	defer cancel()
	start, cpu0 := time.Now(), e.cpu.Load()
	err := e.encode(ctx, id, p)
	if err != nil {
		e.s.log.Error("encode page video", "session_id", id, "page", p.ID, "err", err)
		return &bb.Error{Code: bb.CodeInternal, Message: "encode failed", Err: err}
	}
	// cpu is the ffmpeg runs' (one encode at a time: MaxEncodes 1 makes it this page's).
	e.s.log.Info("encoded page video", "session_id", id, "page", p.ID, "frames", p.Frames, "video", time.Duration(p.End-p.Start)*time.Millisecond,
		"took", time.Since(start), "cpu", time.Duration(e.cpu.Load()-cpu0))
	return nil
}

// storedFrame is a frame in the blob store: its key and time.
type storedFrame struct {
	key string
	ms  int64
}

// encode makes the page's MP4 from its frames with ffmpeg (the concat demuxer, each
// frame shown until the next one came and the last one until the page ended: the
// video's timing is the page's), then cuts it into HLS segments without encoding
// again, and stores both, the playlist last. No B-frames: with them the MP4's packets
// all get the default frame duration and the HLS muxer, copying, sums those into
// segment lengths far shorter than the page's wall time.
func (e *encoder) encode(ctx context.Context, id string, p pageInfo) error {
	frames, err := e.frames(ctx, id, p)
	if err != nil {
		return err
	}
	if len(frames) == 0 {
		return errors.New("no frames stored")
	}
	if err := os.MkdirAll(e.s.cfg.WorkDir, 0o700); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(e.s.cfg.WorkDir, "encode-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var list bytes.Buffer
	list.WriteString("ffconcat version 1.0\n")
	w, h := 0, 0
	for i, f := range frames {
		name := fmt.Sprintf("%08d.jpg", i)
		if err := e.fetch(ctx, f.key, filepath.Join(dir, name)); err != nil {
			return err
		}
		if i == 0 {
			if w, h, err = frameSize(filepath.Join(dir, name)); err != nil {
				return err
			}
		}
		// The first frame stands for the page from its start; each lasts until the next.
		until := p.End
		if i+1 < len(frames) {
			until = frames[i+1].ms
		}
		from := f.ms
		if i == 0 {
			from = min(p.Start, f.ms)
		}
		d := max(until-from, 1)
		fmt.Fprintf(&list, "file %s\nduration %s\n", name, strconv.FormatFloat(float64(d)/1000, 'f', 3, 64))
		if i == len(frames)-1 { // the demuxer drops the last entry's duration without this
			fmt.Fprintf(&list, "file %s\n", name)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "list.txt"), list.Bytes(), 0o600); err != nil {
		return err
	}
	vf := fmt.Sprintf("scale=%d:%d:force_original_aspect_ratio=decrease,pad=%d:%d:(ow-iw)/2:(oh-ih)/2,format=yuv420p", w, h, w, h)
	if err := e.ffmpeg(ctx, dir, "-f", "concat", "-i", "list.txt", "-vf", vf, "-fps_mode", "vfr",
		"-c:v", "libx264", "-preset", "veryfast", "-crf", "30", "-bf", "0", "-threads", "1",
		"-force_key_frames", "expr:gte(t,n_forced*4)", "-movflags", "+faststart", "video.mp4"); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, "hls"), 0o700); err != nil {
		return err
	}
	if err := e.ffmpeg(ctx, dir, "-i", "video.mp4", "-c", "copy", "-f", "hls", "-hls_time", "4",
		"-hls_playlist_type", "vod", "-hls_segment_filename", "hls/seg%05d.ts", "hls/index.m3u8"); err != nil {
		return err
	}
	pl, err := os.ReadFile(filepath.Join(dir, "hls", "index.m3u8"))
	if err != nil {
		return err
	}
	segs, err := PlaylistSegments(pl)
	if err != nil {
		return err
	}
	for _, seg := range segs {
		if err := e.store(ctx, filepath.Join(dir, "hls", seg), pageKey(id, p.ID, "hls/"+seg)); err != nil {
			return err
		}
	}
	if err := e.store(ctx, filepath.Join(dir, "video.mp4"), pageKey(id, p.ID, "video.mp4")); err != nil {
		return err
	}
	return e.store(ctx, filepath.Join(dir, "hls", "index.m3u8"), pageKey(id, p.ID, "hls/index.m3u8"))
}

// frames lists the page's stored frames in order.
func (e *encoder) frames(ctx context.Context, id string, p pageInfo) ([]storedFrame, error) {
	infos, err := e.s.cfg.Blobs.List(ctx, pageKey(id, p.ID, "f/"))
	if err != nil {
		return nil, fmt.Errorf("list frames: %w", err)
	}
	var out []storedFrame
	for _, info := range infos {
		if _, ms, ok := parseFrameKeyName(path.Base(info.Key)); ok {
			out = append(out, storedFrame{key: info.Key, ms: ms})
		}
	}
	slices.SortStableFunc(out, func(a, b storedFrame) int { return strings.Compare(a.key, b.key) })
	return out, nil
}

func (e *encoder) fetch(ctx context.Context, key, file string) error {
	rc, err := e.s.cfg.Blobs.Open(ctx, key)
	if err != nil {
		return fmt.Errorf("open frame %s: %w", key, err)
	}
	defer rc.Close()
	f, err := os.OpenFile(file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return fmt.Errorf("read frame %s: %w", key, err)
	}
	return f.Close()
}

func (e *encoder) store(ctx context.Context, file, key string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := e.s.cfg.Blobs.Put(ctx, key, f); err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	return nil
}

// frameSize returns a JPEG's size rounded down to even numbers (H.264 4:2:0 needs them).
func frameSize(file string) (int, int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	cfg, err := jpeg.DecodeConfig(f)
	if err != nil {
		return 0, 0, fmt.Errorf("first frame: %w", err)
	}
	w, h := cfg.Width&^1, cfg.Height&^1
	if w < 2 || h < 2 {
		return 0, 0, fmt.Errorf("first frame: %dx%d is too small", cfg.Width, cfg.Height)
	}
	return w, h, nil
}

// ffmpeg runs ffmpeg in dir with args after the common ones: no stdin, one thread,
// niced, killed when ctx ends. Every file name it gets is one this package made.
func (e *encoder) ffmpeg(ctx context.Context, dir string, args ...string) error {
	args = append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-threads", "1", "-filter_threads", "1"}, args...)
	cmd := exec.CommandContext(ctx, e.s.cfg.FFmpeg, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{b: &stderr, n: 4096}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start ffmpeg: %w", err)
	}
	// Best effort: an encode yields to the sessions.
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, e.s.cfg.Nice)
	err := cmd.Wait()
	if cmd.ProcessState != nil {
		e.cpu.Add(int64(cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()))
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("ffmpeg: %w (%w)", ctx.Err(), err)
		}
		return fmt.Errorf("ffmpeg: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// limitedBuffer keeps the first n bytes written to it.
type limitedBuffer struct {
	b *bytes.Buffer
	n int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
