package browserd

import (
	"context"
	"time"
)

// Extension is an uploaded Chrome extension (spec §2.10, §5.9): a zip with
// manifest.json at its root, loaded unpacked into the browsers of the sessions that
// name it.
type Extension struct {
	ID        string
	ProjectID string
	// FileName is the uploaded file's name, as the client sent it.
	FileName  string
	CreatedAt time.Time
	UpdatedAt time.Time
	// Blob is the blob key prefix that holds the zip ("extensions/<id>/").
	Blob string
	Size int64 // bytes of the zip
}

// ExtensionStore keeps extensions. Implementations pass internal/storetest.
type ExtensionStore interface {
	// CreateExtension inserts e; an existing id is CodeConflict.
	CreateExtension(ctx context.Context, e *Extension) error
	// Extension returns an extension by id, or a CodeNotFound error.
	Extension(ctx context.Context, id string) (*Extension, error)
	// DeleteExtension deletes an extension and returns it as it was, or CodeNotFound.
	DeleteExtension(ctx context.Context, id string) (*Extension, error)
}

// Limits of an extension upload (spec §5.9; docs/COMPATIBILITY.md). They are part of
// the API's contract: internal/httpapi bounds the upload's body with MaxExtensionSize,
// internal/profiles checks the zip against all three.
const (
	// MaxExtensionSize is the largest zip accepted (Browserbase: 100 MB).
	MaxExtensionSize = 100 << 20
	// MaxExtensionFiles bounds the entries of the zip (a zip bomb may hold millions).
	MaxExtensionFiles = 10_000
	// MaxExtensionUnpacked bounds the sum of the entries' uncompressed sizes.
	MaxExtensionUnpacked = 512 << 20
)

// ExtensionManifest holds the fields of manifest.json that browserd checks
// (internal/profiles.CheckExtensionZip).
type ExtensionManifest struct {
	ManifestVersion int    `json:"manifest_version"`
	Name            string `json:"name"`
	Version         string `json:"version"`
}
