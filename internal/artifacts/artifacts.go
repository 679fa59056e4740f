package artifacts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// Config configures a Service. Zero limits take the defaults in brackets.
type Config struct {
	Store bb.ArtifactStore
	// Sessions looks sessions up, for access checks and their settings.
	Sessions interface {
		Session(ctx context.Context, id string) (*bb.Session, error)
	}
	Blobs bb.BlobStore
	// Agent sets up each session's browser (download dir, recording); nil does neither.
	Agent  bb.Agent
	Logger *slog.Logger
	// SpoolDir holds a link <id> → the browser's directory (Browser.Dir) for every live
	// session: there the browser saves to downloads/ and reads uploads/. Files move to
	// Blobs when the session ends; Start moves what an earlier run left behind, before
	// the launcher's Reap removes the browsers' directories.
	SpoolDir string
	// RecordByDefault is recordSession's default when a create omits it (Browserbase: true).
	RecordByDefault bool
	// LogPayloadLimit cuts each logged CDP message to this many bytes [64 KiB].
	LogPayloadLimit int
	// LogSessionLimit bounds the logged bytes of one session; later logs are dropped
	// after a marker entry [32 MiB].
	LogSessionLimit int64
	// LogBrowserEvents puts the browser's events (network, console, navigation, targets,
	// downloads) in the logs of sessions that keep logs, heard by the Agent (events.go).
	LogBrowserEvents bool
	// LogQueueLimit bounds the bytes waiting to be written, over all sessions [64 MiB].
	LogQueueLimit int64
	// RecordingLimit bounds the recorded bytes of one session [64 MiB].
	RecordingLimit int64
	// UploadLimit is the largest upload [100 MiB].
	UploadLimit int64
	// Retention deletes a session's artifacts this long after it ended; 0 keeps them.
	Retention time.Duration
	// RetentionInterval is how often expired artifacts are looked for [10m].
	RetentionInterval time.Duration
	// Events, when set, is told of every download saved (sessions.downloads.completed,
	// for webhooks). Its Emit must not block.
	Events bb.EventSink
}

// Service keeps what sessions leave behind — CDP logs, downloads, uploads and rrweb
// recordings — and deletes it when its retention expires. It is a bb.SessionPart
// (part.go): the state of a session live on this node is its run, which the Manager
// holds and SetRuns finds, so the Service keeps no map of live sessions.
type Service struct {
	cfg    Config
	log    *slog.Logger
	logs   *logWriter
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	runs   Runs // set once by SetRuns, before serving; nil: no session is live here
}

// Runs finds the run of a part for a session live on this node (bb.Manager.Run). The
// Service looks its runs up through it to serve API calls about live sessions.
type Runs interface {
	Run(sessionID string, p bb.SessionPart) bb.PartRun
}

// New returns a Service. Call Start before use and Close at the end.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Sessions == nil || cfg.Blobs == nil || cfg.SpoolDir == "" {
		return nil, errors.New("artifacts: store, sessions, blobs and spool dir are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	if cfg.LogPayloadLimit <= 0 {
		cfg.LogPayloadLimit = 64 << 10
	}
	def(&cfg.LogSessionLimit, 32<<20)
	def(&cfg.LogQueueLimit, 64<<20)
	def(&cfg.RecordingLimit, 64<<20)
	def(&cfg.UploadLimit, 100<<20)
	if cfg.RetentionInterval <= 0 {
		cfg.RetentionInterval = 10 * time.Minute
	}
	dir, err := filepath.Abs(cfg.SpoolDir)
	if err != nil {
		return nil, fmt.Errorf("artifacts: spool dir: %w", err)
	}
	cfg.SpoolDir = dir
	ctx, cancel := context.WithCancel(context.Background())
	a := &Service{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel}
	a.logs = newLogWriter(cfg.Store, cfg.Logger, cfg.LogPayloadLimit, cfg.LogSessionLimit, cfg.LogQueueLimit)
	return a, nil
}

// Start moves the downloads an earlier run left in the spool to blobs, then starts
// the log writer and the retention loop.
func (a *Service) Start(ctx context.Context) error {
	if err := os.MkdirAll(a.cfg.SpoolDir, 0o700); err != nil {
		return fmt.Errorf("artifacts: %w", err)
	}
	entries, err := os.ReadDir(a.cfg.SpoolDir)
	if err != nil {
		return fmt.Errorf("artifacts: read spool: %w", err)
	}
	for _, e := range entries {
		if !bb.ValidID(e.Name()) {
			continue
		}
		spool := filepath.Join(a.cfg.SpoolDir, e.Name())
		r := &run{a: a, id: e.Name(), dir: spool, synced: map[string]bool{}}
		if err := a.syncDownloads(ctx, r); err != nil {
			a.log.Error("recover downloads", "session_id", r.id, "err", err)
		}
		if err := os.RemoveAll(spool); err != nil { // a link: only the link goes
			return fmt.Errorf("artifacts: %w", err)
		}
	}
	a.wg.Go(func() { a.logs.run(a.ctx) })
	if a.cfg.Retention > 0 {
		a.wg.Go(a.retentionLoop)
	}
	return nil
}

// SetRuns tells the Service where its runs are: the Manager that has it among its
// parts. The Manager takes its parts when it is built, so this is called once, after
// bb.NewManager and before the Service serves any API call or gateway connection;
// until then no session is live here for the Service.
func (a *Service) SetRuns(r Runs) { a.runs = r }

// Close writes the queued logs and stops the log writer and the retention loop. Close
// the Manager first: ending its sessions stops their agents and moves their downloads.
func (a *Service) Close() error {
	a.cancel()
	a.wg.Wait()
	return nil
}

// RecordCDP queues one command and its response for the session's logs. It never
// blocks: when the queue is full the exchange is dropped and counted, and the log
// gets a marker entry saying how many were lost.
func (a *Service) RecordCDP(ex bb.CDPExchange) { a.logs.enqueue(ex) }

// liveRun returns the run of a session live on this node, or nil.
func (a *Service) liveRun(id string) *run {
	if a.runs == nil {
		return nil
	}
	r, _ := a.runs.Run(id, a).(*run)
	return r
}

// session returns a session of the project, or CodeNotFound (also for another
// project's), like Manager.Session.
func (a *Service) session(ctx context.Context, projectID, id string) (*bb.Session, error) {
	if !bb.ValidID(id) {
		return nil, bb.Errorf(bb.CodeNotFound, "Session not found")
	}
	s, err := a.cfg.Sessions.Session(ctx, id)
	if bb.CodeOf(err) == bb.CodeNotFound || (err == nil && s.ProjectID != projectID) {
		return nil, bb.Errorf(bb.CodeNotFound, "Session not found")
	} else if err != nil {
		return nil, err
	}
	return s, nil
}

// checkPurged fails with CodeUnprocessable when the session's artifacts were deleted.
func (a *Service) checkPurged(ctx context.Context, id, what string) error {
	_, purged, err := a.cfg.Store.ArtifactsState(ctx, id)
	if err != nil {
		return fmt.Errorf("artifacts of session %s: %w", id, err)
	}
	if purged {
		return bb.Errorf(bb.CodeUnprocessable, "The %s of this session were deleted when its retention period expired", what)
	}
	return nil
}

// blobPrefix is where a session's blobs live; nothing else is under it.
func blobPrefix(sessionID string) string { return "sessions/" + sessionID + "/" }

// retentionLoop deletes expired artifacts now and then every RetentionInterval.
func (a *Service) retentionLoop() {
	t := time.NewTicker(a.cfg.RetentionInterval)
	defer t.Stop()
	for {
		if n, err := a.PurgeExpired(a.ctx, time.Now()); err != nil {
			if a.ctx.Err() != nil {
				return
			}
			a.log.Error("delete expired artifacts", "err", err)
		} else if n > 0 {
			a.log.Info("deleted expired artifacts", "sessions", n)
		}
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PurgeExpired deletes the artifacts (blobs under the session's own prefix, then its
// logs) of every session that ended more than Retention before now, and returns how
// many sessions it purged. Retention 0 purges nothing.
func (a *Service) PurgeExpired(ctx context.Context, now time.Time) (int, error) {
	if a.cfg.Retention <= 0 {
		return 0, nil
	}
	n := 0
	for {
		ids, err := a.cfg.Store.ExpiredArtifacts(ctx, now.Add(-a.cfg.Retention), 100)
		if err != nil || len(ids) == 0 {
			return n, err
		}
		for _, id := range ids {
			if !bb.ValidID(id) { // a key prefix from anything else could reach other sessions
				return n, fmt.Errorf("expired artifacts: invalid session id %q", id)
			}
			if err := a.cfg.Blobs.DeletePrefix(ctx, blobPrefix(id)); err != nil {
				return n, fmt.Errorf("delete blobs of session %s: %w", id, err)
			}
			if err := a.cfg.Store.PurgeArtifacts(ctx, id, now); err != nil {
				return n, fmt.Errorf("purge artifacts of session %s: %w", id, err)
			}
			n++
		}
	}
}
