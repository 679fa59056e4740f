package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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
}

// Service keeps what sessions leave behind — CDP logs, downloads, uploads and rrweb
// recordings — and deletes it when its retention expires. It implements SessionHooks.
type Service struct {
	cfg    Config
	log    *slog.Logger
	logs   *logWriter
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	live map[string]*liveArtifacts
}

// liveArtifacts is the state of a session that runs on this node.
type liveArtifacts struct {
	id           string
	dir          string // the browser's directory (its uid owns it: see root)
	logs, record bool
	started      chan struct{} // closed when SessionStarted is done with it
	stop         func()        // the agent's; nil without one; set before started closes

	// syncMu serialises moving finished downloads to blobs; the final move at the end
	// of the session holds it, so that a concurrent GET sees every file.
	syncMu sync.Mutex
	synced map[string]bool // spool download names already in blobs

	recMu      sync.Mutex
	recSeq     int
	recBytes   int64
	recLimited bool
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
	a := &Service{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel, live: make(map[string]*liveArtifacts)}
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
		la := &liveArtifacts{id: e.Name(), dir: spool, synced: map[string]bool{}}
		if err := a.syncDownloads(ctx, la); err != nil {
			a.log.Error("recover downloads", "session_id", la.id, "err", err)
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

// Close stops the agents still running, writes the queued logs and stops.
func (a *Service) Close() error {
	a.mu.Lock()
	var stops []func()
	for _, la := range a.live {
		select {
		case <-la.started:
			if la.stop != nil {
				stops = append(stops, la.stop)
			}
		default: // SessionStarted still owns it; its agent ends with the browser
		}
	}
	a.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	a.cancel()
	a.wg.Wait()
	return nil
}

// SessionStarted prepares a session's artifacts: its spool directories and, through
// the Agent, the browser's download directory and recording. A failure of the agent is
// logged: the session runs on without recording rather than not at all.
func (a *Service) SessionStarted(ctx context.Context, s *bb.Session, b bb.Browser) {
	la := &liveArtifacts{
		id:      s.ID,
		dir:     b.Dir(),
		logs:    s.Settings.LogSessionEnabled(),
		record:  s.Settings.RecordSessionEnabled(a.cfg.RecordByDefault),
		synced:  map[string]bool{},
		started: make(chan struct{}),
	}
	defer close(la.started)
	a.mu.Lock()
	a.live[s.ID] = la
	a.mu.Unlock()
	if err := a.cfg.Store.MarkArtifacts(ctx, s.ID, time.Now()); err != nil {
		a.log.Error("mark session artifacts", "session_id", s.ID, "err", err)
	}
	// The link lets Start find the downloads of a session whose server crashed.
	if err := os.Symlink(b.Dir(), filepath.Join(a.cfg.SpoolDir, s.ID)); err != nil {
		a.log.Error("create session spool link", "session_id", s.ID, "err", err)
	}
	if a.cfg.Agent != nil {
		stop, err := a.cfg.Agent.Start(ctx, b.DevToolsURL(), bb.AgentOptions{
			SessionID:   s.ID,
			DownloadDir: la.downloadDir(),
			Record:      la.record,
			Events:      func(ev []bb.RecordingEvent) { a.addRecording(la, ev) },
		})
		if err != nil {
			a.log.Warn("session agent failed; no recording or download dir", "session_id", s.ID, "err", err)
		} else {
			la.stop = stop
		}
	}
}

// SessionEnded stops the session's agent, writes its queued logs and moves its
// finished downloads to blobs.
func (a *Service) SessionEnded(ctx context.Context, sessionID string) {
	a.mu.Lock()
	la := a.live[sessionID]
	a.mu.Unlock()
	if la == nil {
		return
	}
	select {
	case <-la.started:
	case <-ctx.Done():
		return // the next Start moves the spool
	}
	if la.stop != nil {
		la.stop()
	}
	a.logs.flush(ctx, sessionID, true)
	la.syncMu.Lock()
	err := a.syncDownloads(ctx, la)
	if err == nil {
		err = os.Remove(filepath.Join(a.cfg.SpoolDir, sessionID)) // the link; Close removes the dir
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
	}
	la.syncMu.Unlock()
	if err != nil {
		// The spool stays; the next Start moves what is left.
		a.log.Error("save session downloads", "session_id", sessionID, "err", err)
	}
	a.mu.Lock()
	delete(a.live, sessionID)
	a.mu.Unlock()
}

// Live returns what the gateway needs to know of a session running on this node.
func (a *Service) Live(sessionID string) (bb.LiveSession, bool) {
	a.mu.Lock()
	la := a.live[sessionID]
	a.mu.Unlock()
	if la == nil {
		return bb.LiveSession{}, false
	}
	return bb.LiveSession{DownloadDir: la.downloadDir(), UploadDir: la.uploadDir(), Logs: la.logs, LogPayloadLimit: a.cfg.LogPayloadLimit}, true
}

// RecordCDP queues one command and its response for the session's logs. It never
// blocks: when the queue is full the exchange is dropped and counted, and the log
// gets a marker entry saying how many were lost.
func (a *Service) RecordCDP(ex bb.CDPExchange) { a.logs.enqueue(ex) }

func (la *liveArtifacts) downloadDir() string { return filepath.Join(la.dir, "downloads") }
func (la *liveArtifacts) uploadDir() string   { return filepath.Join(la.dir, "uploads") }

func (a *Service) liveSession(id string) *liveArtifacts {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.live[id]
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

// SessionDirs returns the directories where the Service keeps a live session's files.
func (a *Service) SessionDirs(id string) []string {
	return []string{filepath.Join(a.cfg.SpoolDir, id)}
}

// SessionBlobBytes returns the bytes of a session's blobs: the downloads copied there
// (the browser may delete its spooled copy and download again), uploads, recording.
func (a *Service) SessionBlobBytes(ctx context.Context, id string) (int64, error) {
	blobs, err := a.cfg.Blobs.List(ctx, blobPrefix(id))
	var n int64
	for _, b := range blobs {
		n += b.Size
	}
	return n, err
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
