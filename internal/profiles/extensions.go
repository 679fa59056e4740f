package profiles

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	bb "github.com/browserd/browserd"
)

// maxFileNameLength bounds an extension's fileName, in bytes.
const maxFileNameLength = 255

// extensionZipKey is the blob key of an extension's zip under its prefix.
const extensionZipKey = "extension.zip"

// CreateExtension checks an uploaded extension zip (CheckExtensionZip) and stores it
// in the key's project (spec §6.5). fileName is the uploaded file's name; r is read to
// its end, or until it passes bb.MaxExtensionSize (bb.CodeTooLarge).
func (s *Service) CreateExtension(ctx context.Context, keyProjectID, fileName string, r io.Reader) (*bb.Extension, error) {
	fileName, err := cleanFileName(fileName)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.cfg.WorkDir, 0o700); err != nil {
		return nil, fmt.Errorf("extension upload: %w", err)
	}
	// The zip's directory is at its end: it is spooled to a file to be checked.
	f, err := os.CreateTemp(s.cfg.WorkDir, "extension-upload-*.zip")
	if err != nil {
		return nil, fmt.Errorf("extension upload: %w", err)
	}
	defer func() {
		f.Close()           // read-only by now, or failed
		os.Remove(f.Name()) // a temporary file; Start removes it after a crash
	}()
	src := &errReader{r: io.LimitReader(r, bb.MaxExtensionSize+1)}
	n, err := io.Copy(f, src)
	if src.err != nil {
		if _, ok := errors.AsType[*bb.Error](src.err); ok {
			return nil, src.err // such as the HTTP layer's own size limit
		}
		return nil, &bb.Error{Code: bb.CodeInvalid, Message: "the uploaded file could not be read", Err: src.err}
	} else if err != nil {
		return nil, fmt.Errorf("extension upload: %w", err)
	}
	if n > bb.MaxExtensionSize {
		return nil, bb.Errorf(bb.CodeTooLarge, "the extension must not be larger than %d bytes", bb.MaxExtensionSize)
	}
	if n == 0 {
		return nil, bb.Errorf(bb.CodeInvalid, "the file is empty; upload a zip with manifest.json at its root")
	}
	if _, err := CheckExtensionZip(f, n); err != nil {
		return nil, err
	}
	if err := s.checkProjectDisk(ctx, keyProjectID, n); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("extension upload: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	e := &bb.Extension{ID: bb.NewID(), ProjectID: keyProjectID, FileName: fileName, CreatedAt: now, UpdatedAt: now, Size: n}
	e.Blob = "extensions/" + e.ID + "/"
	if _, err := s.cfg.Blobs.Put(ctx, e.Blob+extensionZipKey, f); err != nil {
		return nil, errors.Join(fmt.Errorf("store extension: %w", err), s.deleteBlobs(e.Blob))
	}
	if err := s.cfg.Store.CreateExtension(ctx, e); err != nil {
		return nil, errors.Join(err, s.deleteBlobs(e.Blob))
	}
	return e, nil
}

// cleanFileName returns the base name of an uploaded file; "" becomes
// "extension.zip" (the field must not be empty, spec §2.10).
func cleanFileName(name string) (string, error) {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSpace(name)
	if !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", bb.Errorf(bb.CodeInvalid, "the file name must be printable text")
	}
	if len(name) > maxFileNameLength {
		return "", bb.Errorf(bb.CodeInvalid, "the file name must not be longer than %d bytes", maxFileNameLength)
	}
	if name == "" || name == "." || name == ".." {
		name = "extension.zip"
	}
	return name, nil
}

// Extension returns an extension of the project, or bb.CodeNotFound (also for another
// project's).
func (s *Service) Extension(ctx context.Context, keyProjectID, id string) (*bb.Extension, error) {
	return s.projectExtension(ctx, keyProjectID, id)
}

func (s *Service) projectExtension(ctx context.Context, projectID, id string) (*bb.Extension, error) {
	notFound := bb.Errorf(bb.CodeNotFound, "Extension %s not found", safeName(id))
	if !bb.ValidID(id) {
		return nil, notFound
	}
	e, err := s.cfg.Store.Extension(ctx, id)
	if bb.CodeOf(err) == bb.CodeNotFound || (err == nil && e.ProjectID != projectID) {
		return nil, notFound
	} else if err != nil {
		return nil, err
	}
	return e, nil
}

// DeleteExtension deletes an extension (spec §6.7). Sessions running with it keep it:
// each has its own unpacked copy.
func (s *Service) DeleteExtension(ctx context.Context, keyProjectID, id string) error {
	e, err := s.projectExtension(ctx, keyProjectID, id)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Store.DeleteExtension(ctx, id); bb.CodeOf(err) == bb.CodeNotFound {
		return bb.Errorf(bb.CodeNotFound, "Extension %s not found", id)
	} else if err != nil {
		return err
	}
	if w := s.warm; w != nil {
		w.FilesGone(extensionFilesKey(id))
	}
	if err := s.cfg.Blobs.DeletePrefix(ctx, e.Blob); err != nil {
		return fmt.Errorf("delete extension %s: %w", id, err)
	}
	return nil
}

// unpackExtensionFiles unpacks the extension into <dir>/extensions/<id> and returns
// that directory.
func (s *Service) unpackExtensionFiles(ctx context.Context, e *bb.Extension, dir string) (string, error) {
	id := e.ID
	rc, err := s.cfg.Blobs.Open(ctx, e.Blob+extensionZipKey)
	if err != nil {
		return "", fmt.Errorf("open extension %s: %w", id, err)
	}
	defer rc.Close() // read-only
	ra, size, done, err := readerAt(rc, dir)
	if err != nil {
		return "", fmt.Errorf("read extension %s: %w", id, err)
	}
	defer done()
	out := filepath.Join(dir, "extensions", e.ID)
	if err := os.MkdirAll(out, 0o700); err != nil {
		return "", err
	}
	if err := unpackExtension(ra, size, out); err != nil {
		return "", fmt.Errorf("unpack extension %s: %w", id, err)
	}
	return out, nil
}

// readerAt returns random access to a blob: the blob itself when it is a local file,
// else a copy spooled into dir. done releases the copy.
func readerAt(rc io.Reader, dir string) (ra io.ReaderAt, size int64, done func(), err error) {
	if f, ok := rc.(interface {
		io.ReaderAt
		Stat() (fs.FileInfo, error)
	}); ok {
		fi, err := f.Stat()
		if err != nil {
			return nil, 0, nil, err
		}
		return f, fi.Size(), func() {}, nil
	}
	f, err := os.CreateTemp(dir, "extension-*.zip")
	if err != nil {
		return nil, 0, nil, err
	}
	done = func() {
		f.Close()           // only read after the copy
		os.Remove(f.Name()) // in the session's work dir, which goes too
	}
	n, err := io.Copy(f, io.LimitReader(rc, bb.MaxExtensionSize+1))
	if err != nil {
		done()
		return nil, 0, nil, err
	}
	return f, n, done, nil
}

// errReader remembers the first read error of r.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}
