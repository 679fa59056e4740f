package artifacts

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	bb "github.com/browserd/browserd"
)

// partialSuffix marks a download Chromium is still writing; it renames the file to
// its final name when the download completes.
const partialSuffix = ".crdownload"

// DownloadName is the name of a downloaded file in the archive of GET
// /v1/sessions/{id}/downloads: the original name with -<unix ms> before the extension
// (spec §3.6: report.pdf → report-1719265797164.pdf). A name that is only an extension
// (".env") keeps it in front.
func DownloadName(name string, unixMilli int64) string {
	ext := path.Ext(name)
	base := strings.TrimSuffix(name, ext)
	if base == "" {
		base, ext = name, ""
	}
	return base + "-" + strconv.FormatInt(unixMilli, 10) + ext
}

// syncDownloads copies the finished downloads in r's directory that are not in blobs
// yet to sessions/<id>/downloads/<DownloadName>. The caller holds r.syncMu or owns r.
//
// The directory belongs to the browser's uid, which may have put links or other
// special files there: everything is opened through an os.Root of it (no path leaves
// it, whatever links say), files without following a link at their end, and only
// regular files are read.
func (a *Service) syncDownloads(ctx context.Context, r *run) error {
	root, err := os.OpenRoot(r.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	defer root.Close()
	d, err := root.Open("downloads")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	entries, err := d.ReadDir(-1)
	d.Close() // read-only
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if r.synced[name] || !e.Type().IsRegular() || strings.HasSuffix(name, partialSuffix) {
			continue
		}
		// Linux allows any byte but / in a name, and a site suggests any name; keys (and
		// archive entries) get a clean one.
		clean, err := bb.SanitizeUploadName(r.downloadName(name))
		if err != nil {
			clean = "download"
		}
		if err := a.saveDownload(ctx, r, root, "downloads/"+name, clean); err != nil {
			return err
		}
		r.synced[name] = true
	}
	return nil
}

// saveDownload stores the regular file rel of root as the session's download clean.
func (a *Service) saveDownload(ctx context.Context, r *run, root *os.Root, rel, clean string) error {
	// O_NONBLOCK: a FIFO put in place of a file must not hang the server.
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("open download: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return nil // swapped for something else since ReadDir: not a download
	}
	name := DownloadName(clean, info.ModTime().UnixMilli())
	key := blobPrefix(r.id) + "downloads/" + name
	for i := 2; r.hasBlob(key); i++ { // two downloads of one name in one millisecond
		ext := path.Ext(clean)
		name = DownloadName(strings.TrimSuffix(clean, ext)+"-"+strconv.Itoa(i)+ext, info.ModTime().UnixMilli())
		key = blobPrefix(r.id) + "downloads/" + name
	}
	if !bb.ValidBlobKey(key) {
		return fmt.Errorf("download %q: no valid blob key", name)
	}
	n, err := a.cfg.Blobs.Put(ctx, key, f)
	if err != nil {
		return fmt.Errorf("save download %q: %w", name, err)
	}
	r.noteBlob(key, n)
	if a.cfg.Events != nil && r.projectID != "" {
		a.cfg.Events.Emit(bb.Event{Type: bb.EventDownloadCompleted, ProjectID: r.projectID, SessionID: r.id,
			At: time.Now().UTC(), FileName: name, Size: n})
	}
	return nil
}

// Downloads returns the session's finished downloads, moving those of a live session
// to blobs first. Write the archive with WriteZip.
func (a *Service) Downloads(ctx context.Context, projectID, id string) ([]bb.BlobInfo, error) {
	if _, err := a.session(ctx, projectID, id); err != nil {
		return nil, err
	}
	if err := a.checkPurged(ctx, id, "downloads"); err != nil {
		return nil, err
	}
	if r := a.liveRun(id); r != nil {
		r.syncMu.Lock()
		var err error
		if !r.final { // after the final move, the directory is going away
			err = a.syncDownloads(ctx, r)
		}
		r.syncMu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("save downloads of session %s: %w", id, err)
		}
	}
	return a.cfg.Blobs.List(ctx, blobPrefix(id)+"downloads/")
}

// WriteZip writes files (from Downloads) as a ZIP archive, each under its base name.
// No files give a valid empty archive (22 bytes).
func (a *Service) WriteZip(ctx context.Context, w io.Writer, files []bb.BlobInfo) error {
	zw := zip.NewWriter(w)
	for _, f := range files {
		if err := a.addToZip(ctx, zw, f); err != nil {
			return err
		}
	}
	return zw.Close()
}

func (a *Service) addToZip(ctx context.Context, zw *zip.Writer, f bb.BlobInfo) error {
	r, err := a.cfg.Blobs.Open(ctx, f.Key)
	if err != nil {
		return fmt.Errorf("open %s: %w", f.Key, err)
	}
	defer r.Close()
	// Stored, not deflated: downloads are often compressed already, and the archive
	// streams without CPU spikes.
	zf, err := zw.CreateHeader(&zip.FileHeader{Name: path.Base(f.Key), Method: zip.Store, Modified: f.ModTime})
	if err != nil {
		return err
	}
	_, err = io.Copy(zf, r)
	return err
}
