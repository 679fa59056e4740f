package browserd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// StorageConfig configures contexts and extensions (ManagerConfig.Storage). Without
// Blobs, the context and extension calls fail with CodeUnavailable.
type StorageConfig struct {
	// Blobs keeps context snapshots (contexts/<id>/<version>/snapshot) and extension
	// zips (extensions/<id>/extension.zip).
	Blobs BlobStore
	// SnapshotKey is the server's SnapshotKeySize-byte key that encrypts context
	// snapshots at rest (AES-256-GCM, snapshot.go). Every node of a cluster needs the
	// same key.
	SnapshotKey []byte
	// WorkDir holds local files of sessions being started and running: the profile a
	// session starts from and its unpacked extensions, under <WorkDir>/<session id>/,
	// and extension uploads being checked. It belongs to the Manager: Reconcile empties
	// it. On the file system of the launcher's run dir, a profile moves into place
	// without a copy.
	WorkDir string
	// SnapshotTimeout bounds the write-back of a context at session end [2m].
	SnapshotTimeout time.Duration
}

// Validate checks the configuration: a snapshot key of the right size and a work dir
// when Blobs is set.
func (c StorageConfig) Validate() error {
	if c.Blobs == nil {
		return nil
	}
	if len(c.SnapshotKey) != SnapshotKeySize {
		return fmt.Errorf("storage: snapshot key must be %d bytes, got %d", SnapshotKeySize, len(c.SnapshotKey))
	}
	if c.WorkDir == "" {
		return errors.New("storage: work dir is required")
	}
	return nil
}

// storageState is the Manager's per-session state for contexts and extensions.
type storageState struct {
	mu   sync.Mutex
	byID map[string]*sessionStorage
}

// sessionStorage is what one session holds: its work dir and the context it writes
// back to at the end.
type sessionStorage struct {
	dir       string
	contextID string
	persist   bool
	done      chan struct{} // closed once the session's write-back is over (or skipped)
}

var errStorageOff = &Error{Code: CodeUnavailable, NoRetry: true,
	Message: "contexts and extensions are not configured on this browserd server"}

// storageOn returns the storage configuration, or CodeUnavailable when it is off.
func (m *Manager) storageOn() (StorageConfig, error) {
	c := m.cfg.Storage
	if c.Blobs == nil {
		return c, errStorageOff
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// checkSessionRefs checks that the context and extension a create request names exist
// in the project: 404 otherwise (spec §3.1), before any session is recorded.
func (m *Manager) checkSessionRefs(ctx context.Context, projectID string, req CreateSessionRequest) error {
	if req.Settings.Context == nil && req.ExtensionID == "" {
		return nil
	}
	if _, err := m.storageOn(); err != nil {
		return err
	}
	if c := req.Settings.Context; c != nil {
		if _, err := m.projectContext(ctx, projectID, c.ID); err != nil {
			return err
		}
	}
	if req.ExtensionID != "" {
		if _, err := m.projectExtension(ctx, projectID, req.ExtensionID); err != nil {
			return err
		}
	}
	return nil
}

// prepareSessionStorage gets a session's files ready before its browser launches: the
// context's profile (after any write-back of the same context still running on this
// node) and the unpacked extension, and sets opts.Profile and opts.Extensions. Either
// makes the launch cold: a warm browser has neither. The caller drops it (dropStorage)
// when it fails.
func (m *Manager) prepareSessionStorage(ctx context.Context, s *Session, opts *LaunchOptions) error {
	c := s.Settings.Context
	if c == nil && s.ExtensionID == "" {
		return nil
	}
	cfg, err := m.storageOn()
	if err != nil {
		return err
	}
	st := &sessionStorage{dir: filepath.Join(cfg.WorkDir, s.ID), done: make(chan struct{})}
	if c != nil {
		st.contextID, st.persist = c.ID, c.Persist
	}
	if err := os.MkdirAll(st.dir, 0o700); err != nil {
		return fmt.Errorf("session work dir: %w", err)
	}
	m.storage.mu.Lock()
	if m.storage.byID == nil {
		m.storage.byID = make(map[string]*sessionStorage)
	}
	m.storage.byID[s.ID] = st
	m.storage.mu.Unlock()

	if c != nil {
		if err := m.waitWriteBacks(ctx, c.ID); err != nil {
			return err
		}
		start := time.Now()
		profile, err := m.restoreContext(ctx, s.ProjectID, c.ID, st.dir)
		if err != nil {
			return err
		}
		opts.Profile = profile
		if profile != "" {
			m.log.Info("context restored", "session_id", s.ID, "context_id", c.ID, "took", time.Since(start))
		}
	}
	if s.ExtensionID != "" {
		dir, err := m.unpackSessionExtension(ctx, s.ProjectID, s.ExtensionID, st.dir)
		if err != nil {
			return err
		}
		opts.Extensions = append(opts.Extensions, dir)
	}
	return nil
}

// dropStorage forgets a session's storage state and removes its work dir.
func (m *Manager) dropStorage(id string) {
	m.storage.mu.Lock()
	st := m.storage.byID[id]
	delete(m.storage.byID, id)
	m.storage.mu.Unlock()
	if st == nil {
		return
	}
	close(st.done)
	if err := os.RemoveAll(st.dir); err != nil {
		m.log.Error("remove session work dir", "session_id", id, "err", err)
	}
}

// waitWriteBacks waits until the sessions on this node that have ended and write back
// to the context have done so, so that a session started right after another one was
// released sees its state. Sessions still running are not waited for.
func (m *Manager) waitWriteBacks(ctx context.Context, contextID string) error {
	var waits []chan struct{}
	m.mu.Lock()
	m.storage.mu.Lock()
	for id, st := range m.storage.byID {
		if ls := m.live[id]; st.contextID == contextID && st.persist && ls != nil && ls.ending {
			waits = append(waits, st.done)
		}
	}
	m.storage.mu.Unlock()
	m.mu.Unlock()
	for _, done := range waits {
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("wait for the write-back of context %s: %w", contextID, ctx.Err())
		}
	}
	return nil
}

// storagePart is the SessionPart for contexts and extensions: a session's profile
// restored before launch and written back after its browser stopped, and its extension
// unpacked.
type storagePart struct{ m *Manager }

// storageRun is the storage state of one session that has a context or an extension.
type storageRun struct {
	NopPartRun
	m  *Manager
	id string
}

// Check refuses a context or extension the project does not have (404), before the
// session is recorded.
func (p *storagePart) Check(ctx context.Context, projectID string, req *CreateSessionRequest) error {
	return p.m.checkSessionRefs(ctx, projectID, *req)
}

// Prepare restores the context's profile and unpacks the extension (see
// prepareSessionStorage); nil for a session with neither.
func (p *storagePart) Prepare(ctx context.Context, s *Session, _ *CreateSessionRequest, opts *LaunchOptions) (PartRun, error) {
	if s.Settings.Context == nil && s.ExtensionID == "" {
		return nil, nil
	}
	if err := p.m.prepareSessionStorage(ctx, s, opts); err != nil {
		p.m.dropStorage(s.ID)
		return nil, err
	}
	return &storageRun{m: p.m, id: s.ID}, nil
}

// Stopped writes the profile back to a persisted context, unless the session ended in
// ERROR: a crashed browser may have left a damaged profile, and the earlier snapshot
// stays.
func (r *storageRun) Stopped(_ context.Context, b Browser, status SessionStatus) {
	m := r.m
	m.storage.mu.Lock()
	st := m.storage.byID[r.id]
	m.storage.mu.Unlock()
	if st == nil || !st.persist {
		return
	}
	if status == StatusError {
		m.log.Warn("context not saved: the session ended in error", "session_id", r.id, "context_id", st.contextID)
	} else if err := m.saveSessionContext(r.id, b, st); err != nil {
		m.log.Error("save context", "session_id", r.id, "context_id", st.contextID, "err", err)
	}
}

// Ended removes the session's work dir; the context's write-back is over.
func (r *storageRun) Ended(context.Context) { r.m.dropStorage(r.id) }

// saveSessionContext stops the session's browser and writes its profile back.
func (m *Manager) saveSessionContext(id string, b Browser, st *sessionStorage) error {
	cfg, err := m.storageOn()
	if err != nil {
		return err
	}
	timeout := cfg.SnapshotTimeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	// m.ctx: a shutdown that runs out of time abandons the write, which leaves the
	// earlier snapshot in place.
	ctx, cancel := context.WithTimeout(m.ctx, timeout)
	defer cancel()
	pb, ok := b.(ProfileBrowser)
	if !ok {
		return fmt.Errorf("the browser (%T) can't keep its profile after it stops", b)
	}
	if err := pb.Stop(ctx); err != nil {
		return err
	}
	start := time.Now()
	c, err := m.saveContext(ctx, st.contextID, pb.ProfileDir())
	if err != nil {
		return err
	}
	m.log.Info("context saved", "session_id", id, "context_id", st.contextID, "bytes", c.SnapshotSize, "took", time.Since(start))
	return nil
}

// cleanWorkDir removes what an earlier run left in the work dir (Reconcile).
func (m *Manager) cleanWorkDir() error {
	dir := m.cfg.Storage.WorkDir
	if m.cfg.Storage.Blobs == nil || dir == "" {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("clean work dir: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("clean work dir: %w", err)
		}
	}
	return nil
}
