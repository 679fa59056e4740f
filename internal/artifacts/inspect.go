package artifacts

import (
	"context"
	"io"
	"strings"

	bb "github.com/browserd/browserd"
)

// This file serves the dashboard's session inspector (internal/liveview): a session's
// logs a page at a time, and its downloads and uploads one file at a time. The checks
// are the API's (Logs, Downloads): another project's session is not found.

// MaxLogPage is the most logs LogPage returns at once.
const MaxLogPage = 5000

// LogPage returns up to limit (1..MaxLogPage) of a session's logs whose Seq is above
// afterSeq, in Seq order; fewer than limit when there are no more. It answers what
// Logs answers for an unknown session, logSession:false or expired artifacts.
func (a *Service) LogPage(ctx context.Context, projectID, id string, afterSeq int64, limit int) ([]bb.SessionLog, error) {
	if limit < 1 || limit > MaxLogPage || afterSeq < 0 {
		return nil, bb.Errorf(bb.CodeInvalid, "limit must be 1 to %d and after not negative", MaxLogPage)
	}
	if err := a.logsReadable(ctx, projectID, id); err != nil {
		return nil, err
	}
	if afterSeq == 0 && a.liveRun(id) != nil {
		a.logs.flush(ctx, id, false) // the first page shows the commands sent so far
	}
	return a.cfg.Store.SessionLogs(ctx, id, afterSeq, limit)
}

// Uploads returns the files uploaded to a session (POST /v1/sessions/{id}/uploads).
func (a *Service) Uploads(ctx context.Context, projectID, id string) ([]bb.BlobInfo, error) {
	if _, err := a.session(ctx, projectID, id); err != nil {
		return nil, err
	}
	if err := a.checkPurged(ctx, id, "uploads"); err != nil {
		return nil, err
	}
	return a.cfg.Blobs.List(ctx, blobPrefix(id)+"uploads/")
}

// File opens one of a session's downloads (kind "downloads") or uploads ("uploads")
// by its file name, as Downloads and Uploads list it; CodeNotFound otherwise.
func (a *Service) File(ctx context.Context, projectID, id, kind, name string) (io.ReadCloser, error) {
	if (kind != "downloads" && kind != "uploads") || name == "" || strings.ContainsAny(name, `/\`) || !bb.ValidBlobKey(name) {
		return nil, bb.Errorf(bb.CodeNotFound, "no such file")
	}
	if _, err := a.session(ctx, projectID, id); err != nil {
		return nil, err
	}
	if err := a.checkPurged(ctx, id, kind); err != nil {
		return nil, err
	}
	return a.cfg.Blobs.Open(ctx, blobPrefix(id)+kind+"/"+name)
}
