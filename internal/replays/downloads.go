package replays

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	bb "github.com/browserd/browserd"
)

// downloadState is a page's download.json: what POST …/recording/downloads asked for
// and how it went. It lives in the blob store, so every node of a cluster sees it.
type downloadState struct {
	Status      bb.RecordingDownloadStatus `json:"status"`
	UpdatedAt   time.Time                  `json:"updatedAt"`
	CompletedAt time.Time                  `json:"completedAt,omitzero"`
}

// downloadPurpose is the Signer purpose of download tokens.
const downloadPurpose = "replay-download"

// RequestDownloads asks for the MP4 of every recorded page of an ended session (POST
// /v1/sessions/{id}/recording/downloads): pages never asked for, and pages whose MP4
// failed, become PENDING and are encoded in the background; COMPLETED and PENDING
// ones are left as they are. It returns every page's state.
func (s *Service) RequestDownloads(ctx context.Context, projectID, id string) ([]bb.RecordingDownload, error) {
	pages, live, err := s.pages(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	if live && len(pages) > 0 {
		return nil, bb.Errorf(bb.CodeConflict, "Recording downloads are made once the session has ended")
	}
	out := make([]bb.RecordingDownload, 0, len(pages))
	for _, p := range pages {
		st, err := s.downloadState(ctx, id, p)
		if err != nil {
			return nil, err
		}
		if st.Status == bb.DownloadNotRequested || st.Status == bb.DownloadFailed {
			st = downloadState{Status: bb.DownloadPending, UpdatedAt: time.Now().UTC()}
			if err := s.putDownloadState(ctx, id, p, st); err != nil {
				return nil, err
			}
			s.wg.Go(func() { s.makeDownload(id, p) })
		}
		out = append(out, s.wireDownload(id, p, st))
	}
	return out, nil
}

// makeDownload encodes a page (unless done) and records the outcome.
func (s *Service) makeDownload(id string, p pageInfo) {
	st := downloadState{Status: bb.DownloadCompleted}
	if err := s.enc.ensure(s.ctx, id, p); err != nil {
		if s.ctx.Err() != nil {
			return // shutting down: stays PENDING until it is stale (downloadState)
		}
		st.Status = bb.DownloadFailed
	}
	st.UpdatedAt = time.Now().UTC()
	if st.Status == bb.DownloadCompleted {
		st.CompletedAt = st.UpdatedAt
	}
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	if err := s.putDownloadState(ctx, id, p, st); err != nil {
		s.log.Error("store recording download state", "session_id", id, "page", p.ID, "err", err)
	}
}

// Downloads returns every recorded page's MP4 state (GET …/recording/downloads).
func (s *Service) Downloads(ctx context.Context, projectID, id string) ([]bb.RecordingDownload, error) {
	pages, _, err := s.pages(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	out := make([]bb.RecordingDownload, 0, len(pages))
	for _, p := range pages {
		st, err := s.downloadState(ctx, id, p)
		if err != nil {
			return nil, err
		}
		out = append(out, s.wireDownload(id, p, st))
	}
	return out, nil
}

// downloadState reads a page's state. A PENDING one that no encode on this node holds
// and that is older than twice EncodeTimeout was left by a node that stopped: FAILED,
// so that a POST asks again.
func (s *Service) downloadState(ctx context.Context, id string, p pageInfo) (downloadState, error) {
	b, err := s.readBlob(ctx, pageKey(id, p.ID, "download.json"), 4096)
	if bb.CodeOf(err) == bb.CodeNotFound {
		return downloadState{Status: bb.DownloadNotRequested}, nil
	} else if err != nil {
		return downloadState{}, err
	}
	var st downloadState
	if err := json.Unmarshal(b, &st); err != nil {
		return downloadState{}, fmt.Errorf("download state of session %s page %d: %w", id, p.ID, err)
	}
	if st.Status == bb.DownloadPending && !s.enc.running(id, p) && time.Since(st.UpdatedAt) > 2*s.cfg.EncodeTimeout {
		st.Status = bb.DownloadFailed
	}
	return st, nil
}

func (s *Service) putDownloadState(ctx context.Context, id string, p pageInfo, st downloadState) error {
	b, _ := json.Marshal(st) // plain values encode
	if _, err := s.cfg.Blobs.Put(ctx, pageKey(id, p.ID, "download.json"), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("store download state of session %s page %d: %w", id, p.ID, err)
	}
	return nil
}

// wireDownload is a page's state for the API, with a fresh download token when COMPLETED.
func (s *Service) wireDownload(id string, p pageInfo, st downloadState) bb.RecordingDownload {
	d := bb.RecordingDownload{PageID: strconv.Itoa(p.ID), Status: st.Status}
	if st.Status == bb.DownloadCompleted {
		d.CompletedAt = st.CompletedAt
		exp := time.Now().Add(s.cfg.DownloadTTL).Unix()
		d.Token = s.cfg.Signer.Sign(downloadPurpose, "rd1."+id+"."+d.PageID+"."+strconv.FormatInt(exp, 10))
	}
	return d
}

// maxTokenLen bounds a download token read from a URL.
const maxTokenLen = 256

// OpenDownload opens the MP4 of a page for the bearer of a download token, which is
// bound to the session and the page and expires (DownloadTTL): no API key is needed,
// so that the downloadUrl works in a browser or with curl. Anything else is 404.
func (s *Service) OpenDownload(ctx context.Context, id, pageID, token string) (io.ReadCloser, error) {
	notFound := bb.Errorf(bb.CodeNotFound, "Download not found or its URL expired: list the downloads again for a fresh one")
	n, ok := ParsePageID(pageID)
	if !ok || !bb.ValidID(id) || len(token) > maxTokenLen {
		return nil, notFound
	}
	msg, ok := s.cfg.Signer.Verify(downloadPurpose, token)
	if !ok {
		return nil, notFound
	}
	rest, ok := strings.CutPrefix(msg, "rd1."+id+"."+strconv.Itoa(n)+".")
	if !ok {
		return nil, notFound
	}
	exp, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || time.Now().Unix() > exp {
		return nil, notFound
	}
	rc, err := s.cfg.Blobs.Open(ctx, pageKey(id, n, "video.mp4"))
	if bb.CodeOf(err) == bb.CodeNotFound {
		return nil, notFound
	}
	return rc, err
}
