package server

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/replays"
)

// VideoFlags configure session videos (internal/replays): a live CDP screencast of
// every page, encoded with ffmpeg after the session (spec §3.10).
type VideoFlags struct {
	Enabled       bool   // --video
	MaxFPS        int    // per page
	MaxWidth      int    // pixels
	MaxHeight     int    // pixels
	Quality       int    // JPEG, 1..100
	MaxMiB        int    // frame bytes per session
	FFmpeg        string // the binary
	Encodes       int    // at once, node-wide
	EncodeTimeout time.Duration
}

// The defaults fit a 2-core node (docs/PERFORMANCE.md, issue 19).
func defaultVideoFlags() VideoFlags {
	return VideoFlags{Enabled: true, MaxFPS: 2, MaxWidth: 1280, MaxHeight: 720, Quality: 60, MaxMiB: 256,
		FFmpeg: "ffmpeg", Encodes: 1, EncodeTimeout: 10 * time.Minute}
}

// flags defines the flags of VideoFlags.
func (v *VideoFlags) flags(f flagTable) {
	f.boolean(&v.Enabled, "video", "record a video of every page of recorded sessions (a CDP screencast; false: none on this node, and the replays list no pages)", false)
	f.num(&v.MaxFPS, "video-fps", "most frames per second kept of each page (frames come only when the page changes)")
	f.num(&v.MaxWidth, "video-width", "largest width of video frames, pixels")
	f.num(&v.MaxHeight, "video-height", "largest height of video frames, pixels")
	f.num(&v.Quality, "video-quality", "JPEG quality of the frames kept, 1-100")
	f.num(&v.MaxMiB, "video-max-size", "frames kept per session, MiB; later frames are dropped")
	f.str(&v.FFmpeg, "ffmpeg", "the ffmpeg binary that encodes session videos (H.264 with libx264)")
	f.num(&v.Encodes, "video-encodes", "session videos encoded at once on this node (each one thread, niced); more wait")
	f.dur(&v.EncodeTimeout, "video-encode-timeout", "longest encode of one page's video; a longer one fails")
}

func (v VideoFlags) validate() []error {
	if v.MaxFPS < 1 || v.MaxWidth < 16 || v.MaxHeight < 16 || v.Quality < 1 || v.Quality > 100 ||
		v.MaxMiB < 1 || v.Encodes < 1 || v.EncodeTimeout < time.Second || v.FFmpeg == "" {
		return []error{errors.New("video-fps, video-encodes and video-max-size must be at least 1, video-width and video-height at least 16, video-quality 1-100, video-encode-timeout at least 1s, ffmpeg not empty")}
	}
	return nil
}

// newReplays returns the session video service, one of the Manager's parts: SetRuns(mgr)
// once the Manager is built. Close it after the Manager. Its blobs are the artifacts'
// (sessions/<id>/replays/…), which the artifacts' retention deletes with the rest.
func newReplays(cfg Config, st interface {
	Session(ctx context.Context, id string) (*bb.Session, error)
}, blobs bb.BlobStore, signer *bb.Signer, logger *slog.Logger) (*replays.Service, error) {
	v := cfg.Video
	return replays.New(replays.Config{
		Sessions:        st,
		Blobs:           blobs,
		Signer:          signer,
		Logger:          logger,
		Enabled:         v.Enabled,
		RecordByDefault: cfg.Artifacts.RecordSessions,
		MaxFPS:          v.MaxFPS,
		MaxWidth:        v.MaxWidth,
		MaxHeight:       v.MaxHeight,
		Quality:         v.Quality,
		MaxBytes:        int64(v.MaxMiB) << 20,
		FFmpeg:          v.FFmpeg,
		WorkDir:         filepath.Join(cfg.DataDir, "video-work"),
		MaxEncodes:      v.Encodes,
		EncodeTimeout:   v.EncodeTimeout,
	})
}
