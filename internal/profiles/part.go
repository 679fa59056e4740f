package profiles

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// The Service is the SessionPart of contexts and extensions: Check refuses a create
// that names an unknown one, Prepare lays out the session's files before its browser
// launches, and the run writes the profile back once the browser has stopped.
var _ bb.SessionPart = (*Service)(nil)

// writeBacks is the part's state across sessions: the runs of this node that write
// back to a context, by context, from their session's end (Ending) until their files
// are gone (Ended). A session created on a context waits for them, so that it sees
// what a session released just before it left.
type writeBacks struct {
	mu   sync.Mutex
	runs map[string]map[*run]struct{} // context id → runs writing back
}

// run is one session's files: its work dir and the context it writes back to.
type run struct {
	bb.NopPartRun
	s         *Service
	sessionID string
	projectID string
	contextID string
	persist   bool
	opts      bb.LaunchOptions // the session's launch, for a warm browser after a write-back
	done      chan struct{}    // closed by Ended: the write-back is over (or skipped)
	recorded  bool             // Ending recorded the write-back in the store
}

// Check checks that the context and extension a create request names exist in the
// project: 404 otherwise (spec §3.1), before any session is recorded.
func (s *Service) Check(ctx context.Context, projectID string, req *bb.CreateSessionRequest) error {
	if c := req.Settings.Context; c != nil {
		if _, err := s.projectContext(ctx, projectID, c.ID); err != nil {
			return err
		}
	}
	if req.ExtensionID != "" {
		if _, err := s.projectExtension(ctx, projectID, req.ExtensionID); err != nil {
			return err
		}
	}
	return nil
}

// Prepare names the files a session's browser starts with: the context's profile (as
// it is after any write-back of the same context still running on this node) and the
// unpacked extension, as bb.LaunchFiles. They are made only for a cold launch; the warm
// pool may instead hand out a browser it launched ahead with the same files (the same
// snapshot version). A session with neither has no run.
func (s *Service) Prepare(ctx context.Context, sess *bb.Session, _ *bb.CreateSessionRequest, opts *bb.LaunchOptions) (bb.PartRun, error) {
	c := sess.Settings.Context
	if c == nil && sess.ExtensionID == "" {
		return nil, nil
	}
	r := &run{s: s, sessionID: sess.ID, projectID: sess.ProjectID, done: make(chan struct{})}
	if c != nil {
		r.contextID, r.persist = c.ID, c.Persist
	}
	if err := s.prepare(ctx, sess, r, opts); err != nil {
		r.Ended(ctx) // the Manager ends only the runs it got
		return nil, err
	}
	r.opts = *opts // this part comes last: these are the session's launch options
	r.opts.Files = slices.Clone(opts.Files)
	return r, nil
}

func (s *Service) prepare(ctx context.Context, sess *bb.Session, r *run, opts *bb.LaunchOptions) error {
	if r.contextID != "" {
		if err := s.waitWriteBacks(ctx, r.contextID); err != nil {
			return err
		}
		c, err := s.projectContext(ctx, sess.ProjectID, r.contextID)
		if err != nil {
			return err
		}
		if c.Snapshot != "" { // a context without one starts like any browser
			opts.Files = append(opts.Files, s.contextFiles(c.ID, c.Snapshot))
		}
	}
	if sess.ExtensionID != "" {
		e, err := s.projectExtension(ctx, sess.ProjectID, sess.ExtensionID)
		if err != nil {
			return err
		}
		opts.Files = append(opts.Files, s.extensionFiles(e))
	}
	return nil
}

// contextFiles are the files of a launch from a context's snapshot version.
func (s *Service) contextFiles(id, snapshot string) bb.LaunchFiles {
	return bb.LaunchFiles{
		Key:     contextFilesKey(id),
		Version: snapshot,
		Make: func(ctx context.Context) (bb.MadeFiles, func(), error) {
			dir, cleanup, err := s.launchDir()
			if err != nil {
				return bb.MadeFiles{}, nil, err
			}
			start := time.Now()
			profile, err := s.restoreSnapshot(ctx, id, snapshot, dir)
			if err != nil {
				return bb.MadeFiles{}, cleanup, err
			}
			s.log.Info("context restored", "context_id", id, "snapshot", snapshot, "took", time.Since(start))
			return bb.MadeFiles{Profile: profile}, cleanup, nil
		},
	}
}

// extensionFiles are the files of a launch with an extension.
func (s *Service) extensionFiles(e *bb.Extension) bb.LaunchFiles {
	return bb.LaunchFiles{
		Key:     extensionFilesKey(e.ID),
		Version: e.Blob,
		Make: func(ctx context.Context) (bb.MadeFiles, func(), error) {
			dir, cleanup, err := s.launchDir()
			if err != nil {
				return bb.MadeFiles{}, nil, err
			}
			out, err := s.unpackExtensionFiles(ctx, e, dir)
			if err != nil {
				return bb.MadeFiles{}, cleanup, err
			}
			return bb.MadeFiles{Extensions: []string{out}}, cleanup, nil
		},
	}
}

func contextFilesKey(id string) string   { return "context " + id }
func extensionFilesKey(id string) string { return "extension " + id }

// launchDir makes a directory for one launch's files under WorkDir; cleanup removes it.
func (s *Service) launchDir() (string, func(), error) {
	if err := os.MkdirAll(s.cfg.WorkDir, 0o700); err != nil {
		return "", nil, fmt.Errorf("launch files dir: %w", err)
	}
	dir, err := os.MkdirTemp(s.cfg.WorkDir, "launch-")
	if err != nil {
		return "", nil, fmt.Errorf("launch files dir: %w", err)
	}
	return dir, func() {
		if err := os.RemoveAll(dir); err != nil {
			s.log.Error("remove launch files dir", "dir", dir, "err", err)
		}
	}, nil
}

// waitWriteBacks waits until the sessions that have ended and write back to the
// context have done so, so that a session started right after another one was released
// sees its state: those of this node through their runs, those of other nodes of a
// cluster through the store's records (which lapse when their node dies). Sessions
// still running are not waited for. A store that does not answer is not waited for:
// the create goes on with the snapshot there is.
func (s *Service) waitWriteBacks(ctx context.Context, contextID string) error {
	s.writeBacks.mu.Lock()
	var waits []chan struct{}
	for r := range s.writeBacks.runs[contextID] {
		waits = append(waits, r.done)
	}
	s.writeBacks.mu.Unlock()
	for _, done := range waits {
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("wait for the write-back of context %s: %w", contextID, ctx.Err())
		}
	}
	for logged := false; ; logged = true {
		n, err := s.cfg.Store.ContextWriteBacks(ctx, contextID)
		if err != nil {
			s.log.Warn("context write-backs of other nodes not known; not waited for", "context_id", contextID, "err", err)
			return nil
		}
		if n == 0 {
			return nil
		}
		if !logged {
			s.log.Info("waiting for a context write-back on another node", "context_id", contextID, "write_backs", n)
		}
		select {
		case <-time.After(writeBackPoll):
		case <-ctx.Done():
			return fmt.Errorf("wait for the write-back of context %s: %w", contextID, ctx.Err())
		}
	}
}

// writeBackPoll is how often a create reads whether another node's write-back of its
// context is over.
const writeBackPoll = 100 * time.Millisecond

// writeBackMargin is how long a write-back record outlives SnapshotTimeout: a node
// that dies while writing back holds creates on the context up to both.
const writeBackMargin = 30 * time.Second

// storeTimeout bounds the write-back record's store calls, made on a session's end path.
const storeTimeout = 5 * time.Second

// Ending counts a session that writes back as in flight, until Ended.
func (r *run) Ending(bb.SessionStatus) func(*bb.Session) {
	if !r.persist {
		return nil
	}
	wb := &r.s.writeBacks
	wb.mu.Lock()
	defer wb.mu.Unlock()
	if wb.runs == nil {
		wb.runs = make(map[string]map[*run]struct{})
	}
	if wb.runs[r.contextID] == nil {
		wb.runs[r.contextID] = make(map[*run]struct{})
	}
	wb.runs[r.contextID][r] = struct{}{}
	// Recorded before the end is written: a client that sees the session ended and
	// creates on another node finds the record there.
	ctx, cancel := context.WithTimeout(r.s.ctx, storeTimeout)
	defer cancel()
	if err := r.s.cfg.Store.BeginContextWriteBack(ctx, r.contextID, r.sessionID, r.s.cfg.SnapshotTimeout+writeBackMargin); err != nil {
		r.s.log.Warn("context write-back not recorded: creates on other nodes will not wait for it", "session_id", r.sessionID, "context_id", r.contextID, "err", err)
	} else {
		r.recorded = true
	}
	return nil
}

// Stopped writes the profile back to a persisted context, unless the session ended in
// ERROR: a crashed browser may have left a damaged profile, and the earlier snapshot
// stays. Every process of the browser is gone by now: as the directory belongs to the
// browser's uid, nothing in it may change while the server reads it (docs/SECURITY.md).
func (r *run) Stopped(ctx context.Context, b bb.Browser, status bb.SessionStatus) {
	if !r.persist {
		return
	}
	if status == bb.StatusError {
		r.s.log.Warn("context not saved: the session ended in error", "session_id", r.sessionID, "context_id", r.contextID)
		return
	}
	if err := r.save(ctx, b); err != nil {
		r.s.log.Error("save context", "session_id", r.sessionID, "context_id", r.contextID, "err", err)
	}
}

// save writes the stopped browser's profile back to the context. ctx is the
// Manager's: a shutdown that runs out of time abandons the write, as does Close, which
// leaves the earlier snapshot in place.
func (r *run) save(ctx context.Context, b bb.Browser) error {
	ctx, cancel := context.WithTimeout(ctx, r.s.cfg.SnapshotTimeout)
	defer cancel()
	defer context.AfterFunc(r.s.ctx, cancel)()
	pb, ok := b.(bb.ProfileBrowser)
	if !ok {
		return fmt.Errorf("the browser (%T) can't keep its profile after it stops", b)
	}
	start := time.Now()
	c, err := r.s.saveContext(ctx, r.contextID, pb.ProfileDir())
	if err != nil {
		return err
	}
	if w := r.s.warm; w != nil {
		// Warm browsers of the old version are replaced, and one like this session's
		// but from the new snapshot is launched: the next create on the context is
		// likely to look like this one.
		files := r.s.contextFiles(c.ID, c.Snapshot)
		w.FilesChanged(files)
		next := r.opts
		next.Files = slices.Clone(next.Files)
		if i := slices.IndexFunc(next.Files, func(f bb.LaunchFiles) bool { return f.Key == files.Key }); i >= 0 {
			next.Files[i] = files
		} else { // first in the order prepare gives, so the launch key is the same
			next.Files = slices.Insert(next.Files, 0, files)
		}
		w.Prewarm(next)
	}
	r.s.log.Info("context saved", "session_id", r.sessionID, "context_id", r.contextID, "bytes", c.SnapshotSize, "took", time.Since(start))
	return nil
}

// Ended ends the session's write-back.
func (r *run) Ended(context.Context) {
	if r.recorded { // before done: a create here that waited for it then finds no record
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.s.ctx), storeTimeout)
		if err := r.s.cfg.Store.EndContextWriteBack(ctx, r.contextID, r.sessionID); err != nil {
			r.s.log.Warn("context write-back record not removed; it lapses by itself", "session_id", r.sessionID, "context_id", r.contextID, "err", err)
		}
		cancel()
	}
	wb := &r.s.writeBacks
	wb.mu.Lock()
	if rs := wb.runs[r.contextID]; rs != nil {
		delete(rs, r)
		if len(rs) == 0 {
			delete(wb.runs, r.contextID)
		}
	}
	wb.mu.Unlock()
	close(r.done)
}
