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

// extensionZipKey is the blob key of an extension's zip under its prefix.
const extensionZipKey = "extension.zip"
