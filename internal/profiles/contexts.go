package profiles

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// snapshotBlob is the name of a snapshot's blob under its version prefix.
const snapshotBlob = "snapshot"

// orphanAge is how old a snapshot version that no context points at must be before a
// later write-back deletes it: versions younger than that may be a concurrent write.
const orphanAge = time.Hour

// CreateContext creates a context in the key's project and returns it with a fresh
// key pair (spec §6.1). A name already used in the project is a 409 that must not be
// retried.
func (s *Service) CreateContext(ctx context.Context, keyProjectID string, req bb.CreateContextRequest) (*bb.Context, bb.ContextKeys, error) {
	if err := bb.CheckProject(keyProjectID, req.ProjectID); err != nil {
		return nil, bb.ContextKeys{}, err
	}
	name, err := bb.NormalizeContextName(req.Name)
	if err != nil {
		return nil, bb.ContextKeys{}, err
	}
	keys, err := newContextKeys()
	if err != nil {
		return nil, bb.ContextKeys{}, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	c := &bb.Context{ID: bb.NewID(), ProjectID: keyProjectID, Name: name, CreatedAt: now, UpdatedAt: now}
	if err := s.cfg.Store.CreateContext(ctx, c); err != nil {
		return nil, bb.ContextKeys{}, err
	}
	return c, keys, nil
}

// Context returns a context of the project, or CodeNotFound (also for another
// project's context).
func (s *Service) Context(ctx context.Context, keyProjectID, id string) (*bb.Context, error) {
	return s.projectContext(ctx, keyProjectID, id)
}

func (s *Service) projectContext(ctx context.Context, projectID, id string) (*bb.Context, error) {
	notFound := bb.Errorf(bb.CodeNotFound, "Context %s not found", safeName(id))
	if !bb.ValidID(id) {
		return nil, notFound
	}
	c, err := s.cfg.Store.Context(ctx, id)
	if bb.CodeOf(err) == bb.CodeNotFound || (err == nil && c.ProjectID != projectID) {
		return nil, notFound
	} else if err != nil {
		return nil, err
	}
	return c, nil
}

// RenewContextKeys serves the deprecated PUT /v1/contexts/{id} (spec §6.3): it returns
// a fresh key pair for the context and changes nothing else.
func (s *Service) RenewContextKeys(ctx context.Context, keyProjectID, id string) (*bb.Context, bb.ContextKeys, error) {
	c, err := s.Context(ctx, keyProjectID, id)
	if err != nil {
		return nil, bb.ContextKeys{}, err
	}
	keys, err := newContextKeys()
	if err != nil {
		return nil, bb.ContextKeys{}, err
	}
	return c, keys, nil
}

// DeleteContext deletes a context and its snapshots (spec §6.4). Running sessions on it
// keep their browser state; their write-back finds the context gone and is dropped.
func (s *Service) DeleteContext(ctx context.Context, keyProjectID, id string) error {
	if _, err := s.projectContext(ctx, keyProjectID, id); err != nil {
		return err
	}
	if _, err := s.cfg.Store.DeleteContext(ctx, id); bb.CodeOf(err) == bb.CodeNotFound {
		return bb.Errorf(bb.CodeNotFound, "Context %s not found", id)
	} else if err != nil {
		return err
	}
	if w := s.warm; w != nil { // its data must not linger in warm browsers
		w.FilesGone(contextFilesKey(id))
	}
	if err := s.cfg.Blobs.DeletePrefix(ctx, "contexts/"+id+"/"); err != nil {
		return fmt.Errorf("delete snapshots of context %s: %w", id, err)
	}
	return nil
}

// restoreSnapshot unpacks a snapshot version of a context into <dir>/profile and
// returns that directory.
func (s *Service) restoreSnapshot(ctx context.Context, id, snapshot, dir string) (string, error) {
	profile := filepath.Join(dir, "profile")
	if err := os.Mkdir(profile, 0o700); err != nil {
		return "", err
	}
	rc, err := s.cfg.Blobs.Open(ctx, snapshot+snapshotBlob)
	if err != nil {
		return "", fmt.Errorf("open snapshot of context %s: %w", id, err)
	}
	err = readSnapshot(rc, s.cfg.SnapshotKey, id, profile)
	rc.Close() // read-only
	if err != nil {
		return "", fmt.Errorf("restore context %s from %s: %w", id, snapshot, err)
	}
	return profile, nil
}

// saveContext writes the profile in dir as a new snapshot version of the context and
// then points the context at it, in one store transaction. A write cut short (an
// error, a crash, kill -9) leaves the pointer, and so the earlier snapshot, as it was.
// When two sessions write back to one context, the one whose write finishes last wins
// (docs/COMPATIBILITY.md). A context deleted meanwhile gets nothing.
func (s *Service) saveContext(ctx context.Context, id, dir string) (*bb.Context, error) {
	if limit := s.cfg.SessionMax; limit >= 0 { // what grew past the quota since the Manager's last check
		if size, _ := bb.DiskUsage(dir, limit); size > limit {
			return nil, fmt.Errorf("write snapshot of context %s: the profile passed the session disk quota (%s)", id, sizeText(size))
		}
	}
	prefix := "contexts/" + id + "/" + bb.NewID() + "/"
	n, err := s.putSnapshot(ctx, prefix+snapshotBlob, id, dir)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("write snapshot of context %s: %w", id, err), s.deleteBlobs(prefix))
	}
	if err := s.checkContextDisk(ctx, id, n); err != nil { // the earlier snapshot stays
		return nil, errors.Join(err, s.deleteBlobs(prefix))
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	var old string
	c, err := s.cfg.Store.UpdateContext(ctx, id, func(c *bb.Context) error {
		old = c.Snapshot
		c.Snapshot, c.SnapshotSize, c.SnapshotAt, c.UpdatedAt = prefix, n, now, now
		return nil
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("record snapshot of context %s: %w", id, err), s.deleteBlobs(prefix))
	}
	if old != "" {
		if err := s.deleteBlobs(old); err != nil {
			s.log.Warn("delete replaced snapshot", "context_id", id, "err", err)
		}
	}
	s.sweepSnapshots(ctx, id, prefix)
	return c, nil
}

// putSnapshot streams the encrypted snapshot of dir into the blob key.
func (s *Service) putSnapshot(ctx context.Context, key, contextID, dir string) (int64, error) {
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	var werr error
	wg.Go(func() { // ends when the snapshot is written or the reader side is closed
		werr = writeSnapshot(pw, s.cfg.SnapshotKey, contextID, dir)
		pw.CloseWithError(werr) // nil: EOF for Put
	})
	n, err := s.cfg.Blobs.Put(ctx, key, pr)
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

// sweepSnapshots deletes snapshot versions of the context that nothing points at and
// that are older than orphanAge: left by a write cut short by a crash after its blob
// was stored but before the pointer moved.
func (s *Service) sweepSnapshots(ctx context.Context, id, current string) {
	blobs, err := s.cfg.Blobs.List(ctx, "contexts/"+id+"/")
	if err != nil {
		s.log.Warn("list snapshots", "context_id", id, "err", err)
		return
	}
	for _, b := range blobs {
		version, _, ok := strings.Cut(strings.TrimPrefix(b.Key, "contexts/"+id+"/"), "/")
		prefix := "contexts/" + id + "/" + version + "/"
		if !ok || prefix == current || time.Since(b.ModTime) < orphanAge {
			continue
		}
		if err := s.deleteBlobs(prefix); err != nil {
			s.log.Warn("delete orphaned snapshot", "context_id", id, "err", err)
		}
	}
}

// newContextKeys returns fresh ContextKeys.
func newContextKeys() (bb.ContextKeys, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return bb.ContextKeys{}, fmt.Errorf("generate context key pair: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return bb.ContextKeys{}, fmt.Errorf("encode context public key: %w", err)
	}
	return bb.ContextKeys{
		PublicKey:                string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		CipherAlgorithm:          "AES-256-CBC",
		InitializationVectorSize: 16,
		UploadURL:                bb.ContextUploadURL,
	}, nil
}
