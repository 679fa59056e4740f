package fsblob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	bb "github.com/browserd/browserd"
)

// tmpDir holds files being written, inside the root so that renames stay on one file
// system; keys never start with it.
const tmpDir = ".tmp"

// Store keeps each blob in the file <root>/<key>. It is safe for concurrent use.
type Store struct {
	root string
}

var _ bb.BlobStore = (*Store)(nil)

// New returns a Store rooted at dir, creating it if needed, and removes the temporary
// files of writes an earlier process did not finish.
func New(dir string) (*Store, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fsblob: %w", err)
	}
	if err := os.RemoveAll(filepath.Join(root, tmpDir)); err != nil {
		return nil, fmt.Errorf("fsblob: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(root, tmpDir), 0o700); err != nil {
		return nil, fmt.Errorf("fsblob: %w", err)
	}
	return &Store{root: root}, nil
}

// Existing returns a Store on the existing directory dir without touching it: New
// removes unfinished writes, which a running server may be making. For readers beside
// a server (browserd admin migrate-blobs).
func Existing(dir string) (*Store, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fsblob: %w", err)
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("fsblob: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("fsblob: %s is not a directory", root)
	}
	return &Store{root: root}, nil
}

// Root returns the store's directory.
func (s *Store) Root() string { return s.root }

func (s *Store) path(key string) (string, error) {
	if !bb.ValidBlobKey(key) || key == tmpDir || strings.HasPrefix(key, tmpDir+"/") {
		return "", bb.Errorf(bb.CodeInvalid, "invalid blob key %q", key)
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put writes r to a temporary file, syncs it and renames it to key's file.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	p, err := s.path(key)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return 0, fmt.Errorf("fsblob put %s: %w", key, err)
	}
	f, err := os.CreateTemp(filepath.Join(s.root, tmpDir), "put-*")
	if err != nil {
		return 0, fmt.Errorf("fsblob put %s: %w", key, err)
	}
	defer os.Remove(f.Name()) // after the rename there is nothing left to remove
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("fsblob put %s: %w", key, err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return 0, fmt.Errorf("fsblob put %s: %w", key, err)
	}
	return n, nil
}

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Open opens key's file.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, bb.Errorf(bb.CodeNotFound, "blob %q not found", key)
	} else if err != nil {
		return nil, fmt.Errorf("fsblob open %s: %w", key, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, bb.Errorf(bb.CodeNotFound, "blob %q not found", key)
	}
	return f, nil
}

// List walks the directory that holds prefix's keys.
func (s *Store) List(ctx context.Context, prefix string) ([]bb.BlobInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir := prefix
	if i := strings.LastIndexByte(dir, '/'); i >= 0 {
		dir = dir[:i]
	} else {
		dir = ""
	}
	start := s.root
	if dir != "" {
		p, err := s.path(dir)
		if err != nil {
			return nil, err
		}
		start = p
	}
	var out []bb.BlobInfo
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, rerr := filepath.Rel(s.root, p)
		if rerr != nil {
			return rerr
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if key == tmpDir {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, ierr := d.Info()
		if errors.Is(ierr, fs.ErrNotExist) {
			return nil
		} else if ierr != nil {
			return ierr
		}
		out = append(out, bb.BlobInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fsblob list %s: %w", prefix, err)
	}
	slices.SortFunc(out, func(a, b bb.BlobInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// DeletePrefix removes the directory of prefix, which must name one ("a/b/").
func (s *Store) DeletePrefix(ctx context.Context, prefix string) error {
	dir, ok := strings.CutSuffix(prefix, "/")
	if !ok || path.Clean(dir) != dir {
		return bb.Errorf(bb.CodeInvalid, "blob prefix %q must be a directory ending in /", prefix)
	}
	p, err := s.path(dir)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("fsblob delete %s: %w", prefix, err)
	}
	return nil
}
