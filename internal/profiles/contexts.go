package browserd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// snapshotBlob is the name of a snapshot's blob under its version prefix.
const snapshotBlob = "snapshot"

// orphanAge is how old a snapshot version that no context points at must be before a
// later write-back deletes it: versions younger than that may be a concurrent write.
const orphanAge = time.Hour

// CreateContextRequest is a decoded POST /v1/contexts body (spec §6.1).
type CreateContextRequest struct {
	ProjectID string
	Name      string // trimmed; "" for none
}

// DecodeCreateContextRequest decodes and validates a POST /v1/contexts body. An empty
// body is {}; unknown fields are ignored; errors are CodeInvalid.
func DecodeCreateContextRequest(body []byte) (CreateContextRequest, error) {
	var req CreateContextRequest
	fields, err := decodeObject(body, "body")
	if err != nil {
		return req, err
	}
	if v, ok := fields["projectId"]; ok && !isNull(v) {
		if err := decodeField(v, "projectId", "a string", &req.ProjectID); err != nil {
			return req, err
		}
	}
	if v, ok := fields["name"]; ok && !isNull(v) {
		if err := decodeField(v, "name", "a string", &req.Name); err != nil {
			return req, err
		}
		if req.Name, err = NormalizeContextName(req.Name); err != nil {
			return req, err
		}
	}
	return req, nil
}

// CreateContext creates a context in the key's project and returns it with a fresh
// key pair (spec §6.1). A name already used in the project is a 409 that must not be
// retried.
func (m *Manager) CreateContext(ctx context.Context, keyProjectID string, req CreateContextRequest) (*Context, ContextKeys, error) {
	if _, err := m.storageOn(); err != nil {
		return nil, ContextKeys{}, err
	}
	if err := checkProject(keyProjectID, req.ProjectID); err != nil {
		return nil, ContextKeys{}, err
	}
	name, err := NormalizeContextName(req.Name)
	if err != nil {
		return nil, ContextKeys{}, err
	}
	keys, err := newContextKeys()
	if err != nil {
		return nil, ContextKeys{}, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	c := &Context{ID: NewID(), ProjectID: keyProjectID, Name: name, CreatedAt: now, UpdatedAt: now}
	if err := m.store.CreateContext(ctx, c); err != nil {
		return nil, ContextKeys{}, err
	}
	return c, keys, nil
}

// Context returns a context of the project, or CodeNotFound (also for another
// project's context).
func (m *Manager) Context(ctx context.Context, keyProjectID, id string) (*Context, error) {
	if _, err := m.storageOn(); err != nil {
		return nil, err
	}
	return m.projectContext(ctx, keyProjectID, id)
}

func (m *Manager) projectContext(ctx context.Context, projectID, id string) (*Context, error) {
	notFound := Errorf(CodeNotFound, "Context %s not found", safeName(id))
	if !ValidID(id) {
		return nil, notFound
	}
	c, err := m.store.Context(ctx, id)
	if CodeOf(err) == CodeNotFound || (err == nil && c.ProjectID != projectID) {
		return nil, notFound
	} else if err != nil {
		return nil, err
	}
	return c, nil
}

// RenewContextKeys serves the deprecated PUT /v1/contexts/{id} (spec §6.3): it returns
// a fresh key pair for the context and changes nothing else.
func (m *Manager) RenewContextKeys(ctx context.Context, keyProjectID, id string) (*Context, ContextKeys, error) {
	c, err := m.Context(ctx, keyProjectID, id)
	if err != nil {
		return nil, ContextKeys{}, err
	}
	keys, err := newContextKeys()
	if err != nil {
		return nil, ContextKeys{}, err
	}
	return c, keys, nil
}

// DeleteContext deletes a context and its snapshots (spec §6.4). Running sessions on it
// keep their browser state; their write-back finds the context gone and is dropped.
func (m *Manager) DeleteContext(ctx context.Context, keyProjectID, id string) error {
	cfg, err := m.storageOn()
	if err != nil {
		return err
	}
	if _, err := m.projectContext(ctx, keyProjectID, id); err != nil {
		return err
	}
	if _, err := m.store.DeleteContext(ctx, id); CodeOf(err) == CodeNotFound {
		return Errorf(CodeNotFound, "Context %s not found", id)
	} else if err != nil {
		return err
	}
	if err := cfg.Blobs.DeletePrefix(ctx, "contexts/"+id+"/"); err != nil {
		return fmt.Errorf("delete snapshots of context %s: %w", id, err)
	}
	return nil
}

// restoreContext unpacks the context's current snapshot into <dir>/profile and returns
// that directory, or "" when the context has no snapshot yet. A snapshot replaced (and
// deleted) between reading the pointer and opening it is retried with the new pointer.
func (m *Manager) restoreContext(ctx context.Context, projectID, id, dir string) (string, error) {
	cfg, err := m.storageOn()
	if err != nil {
		return "", err
	}
	for attempt := 0; ; attempt++ {
		c, err := m.projectContext(ctx, projectID, id)
		if err != nil {
			return "", err
		}
		if c.Snapshot == "" {
			return "", nil
		}
		profile := filepath.Join(dir, "profile")
		if err := os.RemoveAll(profile); err != nil {
			return "", err
		}
		if err := os.Mkdir(profile, 0o700); err != nil {
			return "", err
		}
		rc, err := cfg.Blobs.Open(ctx, c.Snapshot+snapshotBlob)
		if CodeOf(err) == CodeNotFound && attempt < 3 {
			continue
		} else if err != nil {
			return "", fmt.Errorf("open snapshot of context %s: %w", id, err)
		}
		err = readSnapshot(rc, cfg.SnapshotKey, id, profile)
		rc.Close() // read-only
		if err != nil {
			return "", fmt.Errorf("restore context %s from %s: %w", id, c.Snapshot, err)
		}
		return profile, nil
	}
}

// saveContext writes the profile in dir as a new snapshot version of the context and
// then points the context at it, in one store transaction. A write cut short (an
// error, a crash, kill -9) leaves the pointer, and so the earlier snapshot, as it was.
// When two sessions write back to one context, the one whose write finishes last wins
// (docs/COMPATIBILITY.md). A context deleted meanwhile gets nothing.
func (m *Manager) saveContext(ctx context.Context, id, dir string) (*Context, error) {
	cfg, err := m.storageOn()
	if err != nil {
		return nil, err
	}
	if limit := m.cfg.Disk.SessionMax; limit >= 0 { // disk.go: what grew past the quota since the last check
		if size, err := DiskUsage(dir, limit); errors.Is(err, errOverQuota) {
			return nil, fmt.Errorf("write snapshot of context %s: the profile passed the session disk quota (%s)", id, sizeText(size))
		}
	}
	prefix := "contexts/" + id + "/" + NewID() + "/"
	n, err := putSnapshot(ctx, cfg, prefix+snapshotBlob, id, dir)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("write snapshot of context %s: %w", id, err), m.deleteBlobs(cfg, prefix))
	}
	if err := m.checkContextDisk(ctx, id, n); err != nil { // disk.go: the earlier snapshot stays
		return nil, errors.Join(err, m.deleteBlobs(cfg, prefix))
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	var old string
	c, err := m.store.UpdateContext(ctx, id, func(c *Context) error {
		old = c.Snapshot
		c.Snapshot, c.SnapshotSize, c.SnapshotAt, c.UpdatedAt = prefix, n, now, now
		return nil
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("record snapshot of context %s: %w", id, err), m.deleteBlobs(cfg, prefix))
	}
	if old != "" {
		if err := m.deleteBlobs(cfg, old); err != nil {
			m.log.Warn("delete replaced snapshot", "context_id", id, "err", err)
		}
	}
	m.sweepSnapshots(ctx, cfg, id, prefix)
	return c, nil
}

// putSnapshot streams the encrypted snapshot of dir into the blob key.
func putSnapshot(ctx context.Context, cfg StorageConfig, key, contextID, dir string) (int64, error) {
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	var werr error
	wg.Go(func() { // ends when the snapshot is written or the reader side is closed
		werr = writeSnapshot(pw, cfg.SnapshotKey, contextID, dir)
		pw.CloseWithError(werr) // nil: EOF for Put
	})
	n, err := cfg.Blobs.Put(ctx, key, pr)
	pr.CloseWithError(errors.New("blob put ended")) // unblocks the writer if Put stopped early
	wg.Wait()
	if err != nil {
		return 0, err // the writer's error, if any, follows from this one
	}
	if werr != nil {
		return 0, werr
	}
	return n, nil
}

func (m *Manager) deleteBlobs(cfg StorageConfig, prefix string) error {
	// Cleanup runs even when the caller's ctx is done.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), 30*time.Second)
	defer cancel()
	return cfg.Blobs.DeletePrefix(ctx, prefix)
}

// sweepSnapshots deletes snapshot versions of the context that nothing points at and
// that are older than orphanAge: left by a write cut short by a crash after its blob
// was stored but before the pointer moved.
func (m *Manager) sweepSnapshots(ctx context.Context, cfg StorageConfig, id, current string) {
	blobs, err := cfg.Blobs.List(ctx, "contexts/"+id+"/")
	if err != nil {
		m.log.Warn("list snapshots", "context_id", id, "err", err)
		return
	}
	for _, b := range blobs {
		version, _, ok := strings.Cut(strings.TrimPrefix(b.Key, "contexts/"+id+"/"), "/")
		prefix := "contexts/" + id + "/" + version + "/"
		if !ok || prefix == current || time.Since(b.ModTime) < orphanAge {
			continue
		}
		if err := m.deleteBlobs(cfg, prefix); err != nil {
			m.log.Warn("delete orphaned snapshot", "context_id", id, "err", err)
		}
	}
}
