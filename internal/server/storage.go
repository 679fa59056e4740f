package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"

	bb "github.com/browserd/browserd"
)

// settingSnapshotKey names the server-wide key that encrypts context snapshots.
const settingSnapshotKey = "context_snapshot_key"

// storageConfig returns the Manager's contexts and extensions configuration: blobs in
// the given store, the snapshot key kept in the database (created on first use, like
// the signing secret, so every node of a cluster shares it) and the work dir
// <data-dir>/work, next to the launcher's run dir so that a restored profile moves
// into place without a copy.
func storageConfig(ctx context.Context, st bb.KeyStore, blobs bb.BlobStore, dataDir string) (bb.StorageConfig, error) {
	init := make([]byte, bb.SnapshotKeySize)
	_, _ = rand.Read(init) // never fails (crypto/rand aborts instead)
	key, err := st.SettingOrInit(ctx, settingSnapshotKey, init)
	if err != nil {
		return bb.StorageConfig{}, fmt.Errorf("context snapshot key: %w", err)
	}
	c := bb.StorageConfig{Blobs: blobs, SnapshotKey: key, WorkDir: filepath.Join(dataDir, "work")}
	return c, c.Validate()
}
