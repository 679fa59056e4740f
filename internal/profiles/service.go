package profiles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bb "github.com/browserd/browserd"
)

// Store is what the Service needs of the session store: contexts, extensions and the
// sum of what a project keeps, for its quota. *sqlite.DB implements it.
type Store interface {
	bb.ContextStore
	bb.ExtensionStore
	// The write-backs in progress, so that a create on any node of a cluster waits for
	// one another node is still doing (part.go).
	bb.ContextWriteBackStore
	// ProjectStorageBytes returns the bytes of a project's extensions and context
	// snapshots.
	ProjectStorageBytes(ctx context.Context, projectID string) (int64, error)
}

// Config configures a Service. Zero values take the defaults in brackets.
type Config struct {
	// Store keeps the contexts' and extensions' records. Required.
	Store Store
	// Blobs keeps context snapshots (contexts/<id>/<version>/snapshot) and extension
	// zips (extensions/<id>/extension.zip). Required.
	Blobs bb.BlobStore
	// SnapshotKey is the server's SnapshotKeySize-byte key that encrypts context
	// snapshots at rest (AES-256-GCM, snapshot.go). Every node of a cluster needs the
	// same key.
	SnapshotKey []byte
	// WorkDir holds local files of sessions being started and running: the profile a
	// session starts from and its unpacked extensions, under <WorkDir>/<session id>/,
	// and extension uploads being checked. It belongs to the Service: Start empties
	// it. On the file system of the launcher's run dir, a profile moves into place
	// without a copy. Required.
	WorkDir string
	// SnapshotTimeout bounds the write-back of a context at session end [2m].
	SnapshotTimeout time.Duration
	// ProjectMax bounds what a project keeps: its extensions and context snapshots
	// together [bb.DefaultProjectDiskMax]; <0 disables it. An upload or write-back
	// that would pass it is refused (security-review F8).
	ProjectMax int64
	// SessionMax is the session disk quota [bb.DefaultSessionDiskMax]; <0 disables it.
	// A profile that grew past it is not written back (the Manager ends such a session
	// in ERROR anyway, but the last growth may come after its last check).
	SessionMax int64
	// Logger gets the write-back events [discard].
	Logger *slog.Logger
}

// A Service serves contexts and extensions and prepares the sessions that use them.
// Create it with New; call Start before the Manager's Reconcile, and Close after the
// Manager's Close.
type Service struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // cancelled by Close: abandons the write-backs still running
	cancel context.CancelFunc

	writeBacks writeBacks // part.go
	warm       WarmPool   // set by SetWarmPool before sessions start; nil for none
}

// WarmPool keeps browsers launched ahead of demand, some with a context's profile or
// an extension (the bb.Manager's warm pool). The Service tells it when such files
// change or go, so that no create gets an old snapshot and no deleted context's data
// lingers in a waiting browser.
type WarmPool interface {
	FilesChanged(bb.LaunchFiles)
	FilesGone(key string)
	Prewarm(bb.LaunchOptions)
}

// SetWarmPool connects the Service to the warm pool of the Manager it is a part of;
// call it before the Manager's Reconcile (the Manager is created after its parts).
func (s *Service) SetWarmPool(w WarmPool) { s.warm = w }

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("profiles: a store is required")
	case cfg.Blobs == nil:
		return nil, errors.New("profiles: a blob store is required")
	case len(cfg.SnapshotKey) != SnapshotKeySize:
		return nil, fmt.Errorf("profiles: snapshot key must be %d bytes, got %d", SnapshotKeySize, len(cfg.SnapshotKey))
	case cfg.WorkDir == "":
		return nil, errors.New("profiles: work dir is required")
	}
	if cfg.SnapshotTimeout <= 0 {
		cfg.SnapshotTimeout = 2 * time.Minute
	}
	if cfg.ProjectMax == 0 {
		cfg.ProjectMax = bb.DefaultProjectDiskMax
	}
	if cfg.SessionMax == 0 {
		cfg.SessionMax = bb.DefaultSessionDiskMax
	}
	s := &Service{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Start removes what an earlier run left in the work dir: profiles and extensions of
// sessions that are gone, uploads cut short. Call it once, before the Manager's
// Reconcile and before serving.
func (s *Service) Start(ctx context.Context) error {
	entries, err := os.ReadDir(s.cfg.WorkDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("clean work dir: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.cfg.WorkDir, e.Name())); err != nil {
			return fmt.Errorf("clean work dir: %w", err)
		}
	}
	return nil
}

// Close abandons the write-backs still running, which leaves their contexts' earlier
// snapshots in place. Call it after the Manager's Close, which waits for them.
func (s *Service) Close() error {
	s.cancel()
	return nil
}

// checkProjectDisk refuses adding n bytes to a project that would pass ProjectMax:
// CodeTooLarge, not to be retried.
func (s *Service) checkProjectDisk(ctx context.Context, projectID string, n int64) error {
	limit := s.cfg.ProjectMax
	if limit < 0 {
		return nil
	}
	used, err := s.cfg.Store.ProjectStorageBytes(ctx, projectID)
	if err != nil {
		return fmt.Errorf("project storage: %w", err)
	}
	if used+n > limit {
		return &bb.Error{Code: bb.CodeTooLarge, NoRetry: true, Message: fmt.Sprintf(
			"The project's storage quota (%d MiB for extensions and contexts) would be exceeded: %d MiB are used. Delete extensions or contexts first.",
			limit>>20, used>>20)}
	}
	return nil
}

// checkContextDisk refuses replacing a context's snapshot with one of n bytes when the
// project would pass ProjectMax.
func (s *Service) checkContextDisk(ctx context.Context, id string, n int64) error {
	c, err := s.cfg.Store.Context(ctx, id)
	if err != nil {
		return err
	}
	return s.checkProjectDisk(ctx, c.ProjectID, n-c.SnapshotSize)
}

// deleteBlobs deletes the blobs under prefix, even when the caller's ctx is done.
func (s *Service) deleteBlobs(prefix string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.cfg.Blobs.DeletePrefix(ctx, prefix)
}

// sizeText writes n bytes in MiB, or KiB when less than 1 MiB (as the Manager's disk
// quota messages do).
func sizeText(n int64) string {
	if n < 1<<20 {
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n>>20, 10) + " MiB"
}
