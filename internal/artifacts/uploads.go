package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	bb "github.com/browserd/browserd"
)

// UploadLimit returns the largest upload, in bytes.
func (a *Service) UploadLimit() int64 { return a.cfg.UploadLimit }

// errTooLarge is returned by limitReader past its limit.
var errTooLarge = errors.New("upload too large")

type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, errTooLarge
	}
	return n, err
}

// CanUpload checks that a session of the project runs on this node and can take
// uploads, before the body is read: CodeNotFound otherwise.
func (a *Service) CanUpload(ctx context.Context, projectID, id string) error {
	s, err := a.session(ctx, projectID, id)
	if err != nil {
		return err
	}
	if !s.Live() || a.liveRun(id) == nil {
		return bb.Errorf(bb.CodeNotFound, "Session %s is not running", id)
	}
	return nil
}

// Upload stores a file for a session that runs on this node (POST
// /v1/sessions/{id}/uploads) and returns the path CDP clients use for it,
// /tmp/.uploads/<name>. The name is sanitised with SanitizeUploadName. An upload with
// the name of an earlier one replaces it atomically (docs/COMPATIBILITY.md). Errors:
// CodeNotFound (no such session, or it is not running here), CodeInvalid (name),
// CodeTooLarge (over UploadLimit); nothing is stored on error.
func (a *Service) Upload(ctx context.Context, projectID, id, filename string, r io.Reader) (string, error) {
	if err := a.CanUpload(ctx, projectID, id); err != nil {
		return "", err
	}
	lr := a.liveRun(id)
	if lr == nil { // ended since
		return "", bb.Errorf(bb.CodeNotFound, "Session %s is not running", id)
	}
	name, err := bb.SanitizeUploadName(filename)
	if err != nil {
		return "", err
	}
	key := blobPrefix(id) + "uploads/" + name
	if !bb.ValidBlobKey(key) {
		return "", bb.Errorf(bb.CodeInvalid, "the uploaded file's name is not allowed")
	}
	n, err := a.cfg.Blobs.Put(ctx, key, &limitReader{r: r, left: a.cfg.UploadLimit})
	if errors.Is(err, errTooLarge) {
		return "", bb.Errorf(bb.CodeTooLarge, "the uploaded file must not be larger than %d bytes", a.cfg.UploadLimit)
	} else if err != nil {
		return "", fmt.Errorf("store upload: %w", err)
	}
	lr.noteBlob(key, n)
	if err := a.materialize(ctx, key, lr, name); err != nil {
		return "", fmt.Errorf("place upload in the session: %w", err)
	}
	return bb.UploadPathPrefix + name, nil
}

// materialize copies a blob to uploads/<name> in the session's browser directory,
// through a temporary file and a rename, so that the browser never reads a half-written
// file. The directory belongs to the browser's uid: everything goes through an os.Root
// of it, so no link the browser may have planted leads the server's writes elsewhere.
// The file is readable by the browser (0644), which alone sees the directory.
func (a *Service) materialize(ctx context.Context, key string, r *run, name string) error {
	src, err := a.cfg.Blobs.Open(ctx, key)
	if err != nil {
		return err
	}
	defer src.Close()
	root, err := os.OpenRoot(r.dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.MkdirAll("uploads", 0o755); err != nil {
		return err
	}
	tmpName := "uploads/.upload-" + bb.NewID()
	tmp, err := root.OpenFile(tmpName, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}
	defer root.Remove(tmpName) // after a successful rename there is nothing to remove
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil { // whatever the umask
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return root.Rename(tmpName, "uploads/"+name)
}
