// Package replays records a video of every page of a session, live, with a CDP
// screencast (Page.startScreencast on browserd's own connection to the browser), stores
// the frames as blobs beside the session's other artifacts, and after the session
// encodes each page with ffmpeg (H.264) into an MP4 and an HLS VOD playlist: the
// Session Replay and Recording Downloads endpoints of SDK 2.21 (spec §3.10).
//
// The Service is a bb.SessionPart: a recorded session's run holds its CDP connection
// and its pages while the session lives. Everything kept after the session is in the
// blob store under sessions/<id>/replays/, so the artifacts' retention deletes it with
// the rest, and any node of a cluster that shares the store can serve and encode it.
package replays

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// Config configures a Service. The zero value of a knob takes the default in brackets.
type Config struct {
	// Sessions looks sessions up, for the project check and their settings; required.
	Sessions interface {
		Session(ctx context.Context, id string) (*bb.Session, error)
	}
	// Blobs keeps frames, videos and download states; required. The server gives the
	// artifacts' store (local disk, or S3 behind the spool).
	Blobs bb.BlobStore
	// Signer signs the downloadUrl of a finished MP4; required (bb.Signer).
	Signer interface {
		Sign(purpose, msg string) string
		Verify(purpose, token string) (string, bool)
	}
	Logger *slog.Logger
	// Enabled records sessions at all (--video); false records nothing and the
	// endpoints list no pages.
	Enabled bool
	// RecordByDefault is recordSession's default when a create omits it (--record-sessions).
	RecordByDefault bool
	// MaxFPS caps the frames kept per page and second [2].
	MaxFPS int
	// MaxWidth and MaxHeight bound the frames' size in pixels [1280, 720].
	MaxWidth, MaxHeight int
	// Quality is the frames' JPEG quality, 1..100 [60].
	Quality int
	// MaxBytes bounds the frame bytes of one session; later frames are dropped [256 MiB].
	MaxBytes int64
	// MaxPages bounds the pages recorded in one session [50].
	MaxPages int
	// FFmpeg is the ffmpeg binary ["ffmpeg"].
	FFmpeg string
	// WorkDir holds each encode's temporary files; required.
	WorkDir string
	// MaxEncodes is how many encodes run at once on the node [1]; the next ones wait.
	MaxEncodes int
	// MaxQueued bounds the encodes waiting on the node [64]; beyond it, 503 with retry.
	MaxQueued int
	// EncodeTimeout bounds one page's encode [10m].
	EncodeTimeout time.Duration
	// Nice is the niceness of ffmpeg [10].
	Nice int
	// DownloadTTL is how long a downloadUrl works [15m].
	DownloadTTL time.Duration
}

// Service records and serves session videos. Create it with New; Close it after the
// Manager.
type Service struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // cancelled by Close: stops the encodes
	cancel context.CancelFunc
	wg     sync.WaitGroup
	runs   Runs
	enc    *encoder
}

// Runs finds the run of a part for a session live on this node (bb.Manager.Run).
type Runs interface {
	Run(sessionID string, p bb.SessionPart) bb.PartRun
}

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Sessions == nil || cfg.Blobs == nil || cfg.Signer == nil || cfg.WorkDir == "" {
		return nil, errors.New("replays: sessions, blobs, signer and work dir are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt(&cfg.MaxFPS, 2)
	defInt(&cfg.MaxWidth, 1280)
	defInt(&cfg.MaxHeight, 720)
	defInt(&cfg.Quality, 60)
	defInt(&cfg.MaxPages, 50)
	defInt(&cfg.MaxEncodes, 1)
	defInt(&cfg.MaxQueued, 64)
	defInt(&cfg.Nice, 10)
	cfg.Quality = min(cfg.Quality, 100)
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 256 << 20
	}
	if cfg.FFmpeg == "" {
		cfg.FFmpeg = "ffmpeg"
	}
	if cfg.EncodeTimeout <= 0 {
		cfg.EncodeTimeout = 10 * time.Minute
	}
	if cfg.DownloadTTL <= 0 {
		cfg.DownloadTTL = 15 * time.Minute
	}
	dir, err := filepath.Abs(cfg.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("replays: work dir: %w", err)
	}
	cfg.WorkDir = dir
	// An encode an earlier run left (killed mid-way) is only temporary files.
	old, _ := filepath.Glob(filepath.Join(dir, "encode-*"))
	for _, d := range old {
		if err := os.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("replays: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel}
	s.enc = newEncoder(s)
	return s, nil
}

// SetRuns tells the Service the Manager that has it among its parts; call it once,
// after bb.NewManager, before serving.
func (s *Service) SetRuns(r Runs) { s.runs = r }

// Close stops the encodes under way (their pages stay to encode again) and waits for them.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// session returns a session of the project, or CodeNotFound (also for another project's).
func (s *Service) session(ctx context.Context, projectID, id string) (*bb.Session, error) {
	if !bb.ValidID(id) {
		return nil, bb.Errorf(bb.CodeNotFound, "Session not found")
	}
	sess, err := s.cfg.Sessions.Session(ctx, id)
	if bb.CodeOf(err) == bb.CodeNotFound || (err == nil && sess.ProjectID != projectID) {
		return nil, bb.Errorf(bb.CodeNotFound, "Session not found")
	} else if err != nil {
		return nil, err
	}
	return sess, nil
}

// pageInfo is one page as pages.json keeps it.
type pageInfo struct {
	ID     int   `json:"id"`
	Start  int64 `json:"startMs"`
	End    int64 `json:"endMs"`
	Frames int   `json:"frames"`
}

func (p pageInfo) wire() bb.ReplayPage {
	return bb.ReplayPage{PageID: strconv.Itoa(p.ID), Start: time.UnixMilli(p.Start), End: time.UnixMilli(p.End)}
}

// pages returns the recorded pages of a session of the project: those of its live run
// on this node (ending now), else those its run wrote when it stopped. A session that
// recorded nothing (recordSession: false, --video off, ended before any frame) has none.
func (s *Service) pages(ctx context.Context, projectID, id string) ([]pageInfo, bool, error) {
	if _, err := s.session(ctx, projectID, id); err != nil {
		return nil, false, err
	}
	if r := s.liveRun(id); r != nil {
		if !r.ending() {
			return r.snapshot(time.Now()), true, nil
		}
		// Ended, its browser stopping: its last frames and pages.json come in seconds.
		select {
		case <-r.stored:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	rc, err := s.cfg.Blobs.Open(ctx, pagesKey(id))
	if bb.CodeOf(err) == bb.CodeNotFound {
		return nil, false, nil
	} else if err != nil {
		return nil, false, fmt.Errorf("open replay pages of session %s: %w", id, err)
	}
	defer rc.Close()
	var pages []pageInfo
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&pages); err != nil {
		return nil, false, fmt.Errorf("read replay pages of session %s: %w", id, err)
	}
	return pages, false, nil
}

// page returns one ended page of a session of the project, by its API id.
func (s *Service) page(ctx context.Context, projectID, id, pageID string) (pageInfo, error) {
	n, ok := ParsePageID(pageID)
	if !ok {
		return pageInfo{}, bb.Errorf(bb.CodeNotFound, "Page %q not found: page ids are \"0\", \"1\", …", truncate(pageID))
	}
	pages, live, err := s.pages(ctx, projectID, id)
	if err != nil {
		return pageInfo{}, err
	}
	for _, p := range pages {
		if p.ID == n {
			if live {
				return pageInfo{}, bb.Errorf(bb.CodeConflict, "The video of page %d is made once the session has ended", n)
			}
			return p, nil
		}
	}
	return pageInfo{}, bb.Errorf(bb.CodeNotFound, "Page %d of this session has no video", n)
}

// Replays lists the recorded pages of a session (GET /v1/sessions/{id}/replays).
func (s *Service) Replays(ctx context.Context, projectID, id string) ([]bb.ReplayPage, error) {
	pages, _, err := s.pages(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	out := make([]bb.ReplayPage, 0, len(pages))
	for _, p := range pages {
		out = append(out, p.wire())
	}
	return out, nil
}

// Playlist returns the HLS VOD playlist of a page, encoding the page first when no one
// has yet, with each segment's URI made segmentBase + its name (GET
// /v1/sessions/{id}/replays/{pageId}).
func (s *Service) Playlist(ctx context.Context, projectID, id, pageID, segmentBase string) ([]byte, error) {
	p, err := s.page(ctx, projectID, id, pageID)
	if err != nil {
		return nil, err
	}
	pl, err := s.playlist(ctx, id, p)
	if err != nil {
		return nil, err
	}
	return RewritePlaylist(pl, segmentBase)
}

// playlist returns the stored playlist of an ended page, encoding it first if needed.
func (s *Service) playlist(ctx context.Context, id string, p pageInfo) ([]byte, error) {
	if err := s.enc.ensure(ctx, id, p); err != nil {
		return nil, err
	}
	return s.readBlob(ctx, pageKey(id, p.ID, "hls/index.m3u8"), 1<<20)
}

// Segment opens one HLS segment of a page: only a name its playlist lists.
func (s *Service) Segment(ctx context.Context, projectID, id, pageID, name string) (io.ReadCloser, error) {
	if !ValidSegmentName(name) {
		return nil, bb.Errorf(bb.CodeNotFound, "Segment not found")
	}
	p, err := s.page(ctx, projectID, id, pageID)
	if err != nil {
		return nil, err
	}
	pl, err := s.readBlob(ctx, pageKey(id, p.ID, "hls/index.m3u8"), 1<<20)
	if bb.CodeOf(err) == bb.CodeNotFound {
		return nil, bb.Errorf(bb.CodeNotFound, "Segment not found: get the page's playlist first")
	} else if err != nil {
		return nil, err
	}
	segs, err := PlaylistSegments(pl)
	if err != nil {
		return nil, fmt.Errorf("stored playlist of session %s page %d: %w", id, p.ID, err)
	}
	for _, seg := range segs {
		if seg == name {
			return s.cfg.Blobs.Open(ctx, pageKey(id, p.ID, "hls/"+name))
		}
	}
	return nil, bb.Errorf(bb.CodeNotFound, "Segment not found")
}

func (s *Service) readBlob(ctx context.Context, key string, limit int64) ([]byte, error) {
	rc, err := s.cfg.Blobs.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read %s: larger than %d bytes", key, limit)
	}
	return b, nil
}

// liveRun returns the run of a session live on this node, or nil.
func (s *Service) liveRun(id string) *run {
	if s.runs == nil {
		return nil
	}
	r, _ := s.runs.Run(id, s).(*run)
	return r
}

// The blob keys of a session's replay, all under the artifacts' sessions/<id>/.
func replayPrefix(id string) string { return "sessions/" + id + "/replays/" }
func pagesKey(id string) string     { return replayPrefix(id) + "pages.json" }
func pageKey(id string, page int, rest string) string {
	return replayPrefix(id) + strconv.Itoa(page) + "/" + rest
}

// truncate keeps an echoed client value short in a message.
func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
