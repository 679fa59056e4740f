package artifacts

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// The Service is a part of every session (bb.SessionPart), and its runs count the
// files they keep outside the browser's directory against the session's disk quota.
var (
	_ bb.SessionPart  = (*Service)(nil)
	_ bb.SessionFiles = (*run)(nil)
)

// run is the artifacts state of one session: its Service's bb.PartRun. While the
// session is live on this node the Manager holds it, and API calls find it through
// Service.liveRun.
type run struct {
	bb.NopPartRun // Ending: nothing for the end record
	a             *Service
	id            string
	projectID     string // for the download events; "" for an earlier run's leftovers
	logs, record  bool   // logSession, recordSession (with the server's default)

	// Set by Started, which ends before the Manager makes the run visible to liveRun.
	dir     string // the browser's directory (its uid owns it: see root)
	stop    func() // the agent's; nil without one
	stopped bool   // stop was called (the Manager calls a run's methods one at a time)

	// syncMu serialises moving finished downloads to blobs; the final move at the end
	// of the session holds it, so that a concurrent GET sees every file.
	syncMu sync.Mutex
	synced map[string]bool // spool download names already in blobs
	final  bool            // Stopped made the final move: nothing more to move

	nameMu    sync.Mutex
	suggested map[string]string // download guid → the name the site suggested (agent)

	gate eventGate // the browser events this session logs

	recMu      sync.Mutex
	recSeq     int
	recBytes   int64
	recLimited bool

	blobMu    sync.Mutex
	blobSizes map[string]int64 // the session's blobs this run stored, by key
}

// hasBlob reports whether the run stored a blob under key.
func (r *run) hasBlob(key string) bool {
	r.blobMu.Lock()
	defer r.blobMu.Unlock()
	_, ok := r.blobSizes[key]
	return ok
}

// noteBlob records that the run stored n bytes under key (replacing what it held).
func (r *run) noteBlob(key string, n int64) {
	r.blobMu.Lock()
	defer r.blobMu.Unlock()
	if r.blobSizes == nil {
		r.blobSizes = map[string]int64{}
	}
	r.blobSizes[key] = n
}

// Check accepts every create: logSession and recordSession need no validation.
func (a *Service) Check(context.Context, string, *bb.CreateSessionRequest) error { return nil }

// Prepare decides, from the session's settings, whether it keeps CDP logs and is
// recorded. Every session gets a run: downloads and uploads are always kept.
func (a *Service) Prepare(_ context.Context, s *bb.Session, _ *bb.CreateSessionRequest, _ *bb.LaunchOptions) (bb.PartRun, error) {
	return &run{
		a:         a,
		id:        s.ID,
		projectID: s.ProjectID,
		logs:      s.Settings.LogSessionEnabled(),
		record:    s.Settings.RecordSessionEnabled(a.cfg.RecordByDefault),
		synced:    map[string]bool{},
	}, nil
}

// Started prepares the session's artifacts: its spool link and, through the Agent, the
// browser's download directory and recording. A failure of the agent is logged, never
// returned: the session runs on without recording rather than not at all.
func (r *run) Started(ctx context.Context, b bb.Browser) error {
	a := r.a
	r.dir = b.Dir()
	if err := a.cfg.Store.MarkArtifacts(ctx, r.id, time.Now()); err != nil {
		a.log.Error("mark session artifacts", "session_id", r.id, "err", err)
	}
	// The link lets Start find the downloads of a session whose server crashed.
	if err := os.Symlink(r.dir, r.spoolLink()); err != nil {
		a.log.Error("create session spool link", "session_id", r.id, "err", err)
	}
	if a.cfg.Agent != nil {
		opts := bb.AgentOptions{
			SessionID:   r.id,
			DownloadDir: r.downloadDir(),
			Record:      r.record,
			Events:      func(ev []bb.RecordingEvent) { a.addRecording(r, ev) },
			Download:    r.noteDownload,
		}
		if r.logs && a.cfg.LogBrowserEvents {
			opts.Log, opts.LogPayloadLimit = r.logEvent, a.cfg.LogPayloadLimit
		}
		stop, err := a.cfg.Agent.Start(ctx, b.DevToolsURL(), opts)
		if err != nil {
			a.log.Warn("session agent failed; no recording or download dir", "session_id", r.id, "err", err)
		} else {
			r.stop = stop
		}
	}
	return nil
}

// Stopped runs once every process of the browser is gone: it stops the agent, writes
// the session's queued logs and moves its finished downloads to blobs. The spool link
// goes once they are saved; on an error it stays, and the next Start moves what is left.
func (r *run) Stopped(ctx context.Context, _ bb.Browser, _ bb.SessionStatus) {
	// Not the Manager's ctx alone: a shutdown still saves what the session left.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	a := r.a
	r.stopAgent()
	if n := r.gate.takeDropped(); n > 0 { // no event comes after the agent stopped
		r.markRateDrops(n, time.Now())
	}
	a.logs.flush(ctx, r.id, true)
	r.syncMu.Lock()
	err := a.syncDownloads(ctx, r)
	if err == nil {
		err = r.removeSpoolLink() // Close removes the directory itself
	}
	r.final = true
	r.syncMu.Unlock()
	if err != nil {
		a.log.Error("save session downloads", "session_id", r.id, "err", err)
	}
}

// Ended frees what a run that never got to Stopped holds: the create failed after
// Started, and the browser's directory is gone with its downloads. No client could
// connect to the session, so it has no logs.
func (r *run) Ended(context.Context) {
	if r.dir == "" || r.final {
		return // never started, or Stopped did it all
	}
	r.stopAgent()
	if err := r.removeSpoolLink(); err != nil {
		r.a.log.Error("remove session spool link", "session_id", r.id, "err", err)
	}
}

func (r *run) stopAgent() {
	if r.stop != nil && !r.stopped {
		r.stopped = true
		r.stop()
	}
}

func (r *run) spoolLink() string { return filepath.Join(r.a.cfg.SpoolDir, r.id) }

func (r *run) removeSpoolLink() error {
	if err := os.Remove(r.spoolLink()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// maxSuggested bounds the download names a run remembers: a page can start downloads
// without end, and names beyond it are only the guid's.
const maxSuggested = 10000

// noteDownload remembers the name a site suggested for the download guid, for a file
// the browser saves under its guid (a client's "allowAndName").
func (r *run) noteDownload(guid, name string) {
	r.nameMu.Lock()
	defer r.nameMu.Unlock()
	if r.suggested == nil {
		r.suggested = map[string]string{}
	}
	if len(r.suggested) < maxSuggested {
		r.suggested[guid] = name
	}
}

// downloadName is the name a downloaded file goes by: the site's for a file saved under
// its guid, else the file's own.
func (r *run) downloadName(file string) string {
	r.nameMu.Lock()
	defer r.nameMu.Unlock()
	if s, ok := r.suggested[file]; ok && s != "" {
		return s
	}
	return file
}

func (r *run) downloadDir() string { return filepath.Join(r.dir, "downloads") }
func (r *run) uploadDir() string   { return filepath.Join(r.dir, "uploads") }

// SessionDirs returns the directories where the Service keeps the session's files.
func (r *run) SessionDirs() []string { return []string{r.spoolLink()} }

// SessionBlobBytes returns the bytes of the session's blobs: the downloads copied there
// (the browser may delete its spooled copy and download again), uploads, recording.
// A live session's blobs are all stored by its run on this node, which counts them as
// it stores them: the quota holds without a List, also while a remote blob store (S3)
// is unreachable and the writes wait in its spool.
func (r *run) SessionBlobBytes(context.Context) (int64, error) {
	r.blobMu.Lock()
	defer r.blobMu.Unlock()
	var n int64
	for _, size := range r.blobSizes {
		n += size
	}
	return n, nil
}

// Live returns what the gateway needs to know of a session running on this node.
func (a *Service) Live(sessionID string) (bb.LiveSession, bool) {
	r := a.liveRun(sessionID)
	if r == nil {
		return bb.LiveSession{}, false
	}
	return bb.LiveSession{DownloadDir: r.downloadDir(), UploadDir: r.uploadDir(), Logs: r.logs, LogPayloadLimit: a.cfg.LogPayloadLimit}, true
}
