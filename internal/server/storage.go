package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"path/filepath"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/profiles"
)

// settingSnapshotKey names the server-wide key that encrypts context snapshots.
const settingSnapshotKey = "context_snapshot_key"

// profilesStore is what newProfiles needs of the database: the snapshot key's setting
// and the contexts' and extensions' records.
type profilesStore interface {
	bb.KeyStore
	profiles.Store
}

// newProfiles returns the contexts and extensions service: blobs in the given store,
// the snapshot key kept in the database (created on first use, like the signing
// secret, so every node of a cluster shares it) and the work dir <data-dir>/work, next
// to the launcher's run dir so that a restored profile moves into place without a copy.
func newProfiles(ctx context.Context, cfg Config, st profilesStore, blobs bb.BlobStore, logger *slog.Logger) (*profiles.Service, error) {
	init := make([]byte, profiles.SnapshotKeySize)
	_, _ = rand.Read(init) // never fails (crypto/rand aborts instead)
	key, err := st.SettingOrInit(ctx, settingSnapshotKey, init)
	if err != nil {
		return nil, fmt.Errorf("context snapshot key: %w", err)
	}
	return profiles.New(profiles.Config{Store: st, Blobs: blobs, SnapshotKey: key, WorkDir: filepath.Join(cfg.DataDir, "work"),
		SessionMax: cfg.SessionDiskMax, ProjectMax: cfg.ProjectDiskMax, Logger: logger})
}
