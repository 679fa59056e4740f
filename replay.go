package browserd

import "time"

// A ReplayPage is one recorded page (tab) of a session's video replay (spec §3.10,
// GET /v1/sessions/{id}/replays): its id ("0", "1", … in the order the session opened
// them) and the wall-clock span the video covers. internal/replays records them;
// internal/httpapi serves them, so the type lives here, between the two.
type ReplayPage struct {
	PageID     string
	Start, End time.Time
}

// RecordingDownloadStatus is the state of one page's MP4 (spec §3.10).
type RecordingDownloadStatus string

// The states of a recording download, as the API spells them.
const (
	DownloadNotRequested RecordingDownloadStatus = "NOT_REQUESTED"
	DownloadPending      RecordingDownloadStatus = "PENDING"
	DownloadCompleted    RecordingDownloadStatus = "COMPLETED"
	DownloadFailed       RecordingDownloadStatus = "FAILED"
)

// A RecordingDownload is the MP4 of one recorded page (POST and GET
// /v1/sessions/{id}/recording/downloads). CompletedAt and Token are set only when the
// status is COMPLETED: Token is the signed, expiring grant the download URL carries.
type RecordingDownload struct {
	PageID      string
	Status      RecordingDownloadStatus
	CompletedAt time.Time
	Token       string
}
