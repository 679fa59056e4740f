package browserd

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// SessionLog is one CDP command a client sent through the gateway, with the browser's
// response, or one event of the browser that browserd's agent heard (spec §2.6: method
// is a "CDP method/event name"; an event has a Request holding its params and no
// Response).
type SessionLog struct {
	SessionID string
	// Seq orders the logs of a session; the store assigns it.
	Seq    int64
	Method string
	// PageID numbers the targets (tabs, workers) of a browserd session in the order they
	// first appear in its logs, by a client's command or a browser event: 0 is the browser
	// itself. A tab's commands and events share its number (docs/COMPATIBILITY.md).
	PageID int
	// CDPSessionID is the flat-mode CDP sessionId of the message, "" for the browser; an
	// event's is the agent's own session, not a client's.
	CDPSessionID string
	FrameID      string
	LoaderID     string
	Request      *LogMessage
	Response     *LogMessage // nil when the browser never answered
}

// LogMessage is one side of a SessionLog.
type LogMessage struct {
	// Body is the command's params or the response's result (an error response's
	// {"error":…}), always a JSON object; TruncatedBody when the message was too large.
	Body json.RawMessage
	// Raw is the message as it crossed the gateway, cut with TruncationMarker when longer
	// than the configured limit.
	Raw       string
	Timestamp time.Time
}

// RecordingEvent is one rrweb event of a session's recording (spec §2.7).
type RecordingEvent struct {
	Type      int             `json:"type"`
	Timestamp int64           `json:"timestamp"` // ms since the Unix epoch
	Data      json.RawMessage `json:"data"`
}

// rrweb event types (spec §2.7).
const (
	RRWebFullSnapshot        = 2
	RRWebIncrementalSnapshot = 3
	RRWebMeta                = 4
	RRWebCustom              = 5
)

// CDPExchange is one client command and the browser's response as the CDP gateway saw
// them: copies cut to the payload limit, decoded later off the relay's path.
type CDPExchange struct {
	SessionID string
	// Method and CDPSessionID come from the command; the gateway reads them even when
	// the copy is cut.
	Method       string
	CDPSessionID string
	Request      []byte // the client's message, at most the payload limit
	RequestSize  int    // its whole size
	RequestAt    time.Time
	Response     []byte // nil when no response came (the connection ended first)
	ResponseSize int
	ResponseAt   time.Time
}

// BrowserEvent is one CDP event of a session's browser that browserd's own agent heard
// on its own connection, for the session's logs: clients see their own events only,
// and the logs carry the browser's network, console, navigation, target and download
// events whatever the clients enabled.
type BrowserEvent struct {
	SessionID string
	// TargetID is the target the event concerns, "" for the browser itself: the logs
	// number pages by target, so that a tab's events and the commands clients send it
	// share one pageId although they travel on different CDP sessions.
	TargetID string
	// CDPSessionID is the agent's flat session the event came on, "" for the browser's.
	CDPSessionID string
	Method       string
	// Params are the event's params, at most the log payload limit of them.
	Params []byte
	// Size is the whole size of the params.
	Size int
	At   time.Time
}

// TruncationMarker ends the rawBody of a logged message that was cut.
const TruncationMarker = "…[truncated by browserd]"

// LiveSession is what the CDP gateway needs to know about a live session.
type LiveSession struct {
	DownloadDir string
	UploadDir   string
	// Logs says whether the session keeps CDP logs (logSession).
	Logs bool
	// LogPayloadLimit is how much of each message the gateway needs to copy.
	LogPayloadLimit int
}

// UploadPathPrefix is where uploaded files appear to CDP clients (spec §3.9): the
// gateway maps DOM.setFileInputFiles paths under it to the session's upload directory.
const UploadPathPrefix = "/tmp/.uploads/"

// maxUploadName is the longest file name (bytes) most file systems accept.
const maxUploadName = 255

// SanitizeUploadName returns the file name an upload is stored under: the last
// element of name (after any / or \, as some clients send paths), with control
// characters and invalid UTF-8 replaced by "_" and surrounding spaces trimmed. Empty
// names, "." and "..", and names longer than 255 bytes give a CodeInvalid error.
func SanitizeUploadName(name string) (string, error) {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for i := 0; i < len(name); {
		r, n := utf8.DecodeRuneInString(name[i:])
		if (r == utf8.RuneError && n <= 1) || unicode.IsControl(r) || r == unicode.ReplacementChar ||
			unicode.Is(unicode.Cf, r) { // format characters (bidi overrides) disguise names
			b.WriteByte('_')
		} else {
			b.WriteString(name[i : i+n])
		}
		i += n
	}
	name = strings.TrimSpace(b.String())
	switch {
	case name == "" || name == "." || name == "..":
		return "", Errorf(CodeInvalid, "the uploaded file needs a file name")
	case len(name) > maxUploadName:
		return "", Errorf(CodeInvalid, "the uploaded file's name must not be longer than %d bytes", maxUploadName)
	}
	return name, nil
}

// ArtifactStore keeps what sessions leave behind besides files: CDP logs, and which
// sessions have artifacts to delete when their retention expires. Implementations pass
// internal/storetest.
type ArtifactStore interface {
	// MarkArtifacts records that a session has (or will have) artifacts. Idempotent.
	MarkArtifacts(ctx context.Context, sessionID string, at time.Time) error
	// ArtifactsState reports whether the session's artifacts were marked, and whether
	// they were purged.
	ArtifactsState(ctx context.Context, sessionID string) (marked, purged bool, err error)
	// AppendSessionLogs stores logs (of any sessions) in one transaction, numbering
	// each session's logs in order (SessionLog.Seq).
	AppendSessionLogs(ctx context.Context, logs []SessionLog) error
	// SessionLogs returns up to limit of a session's logs whose Seq is above afterSeq,
	// in Seq order; empty when there are no more. Readers page through a session's logs
	// with it (afterSeq 0, then the last Seq returned), never holding them all.
	SessionLogs(ctx context.Context, sessionID string, afterSeq int64, limit int) ([]SessionLog, error)
	// ExpiredArtifacts returns up to limit sessions with unpurged artifacts that ended
	// before endedBefore, oldest first.
	ExpiredArtifacts(ctx context.Context, endedBefore time.Time, limit int) ([]string, error)
	// PurgeArtifacts deletes a session's logs and marks its artifacts purged.
	PurgeArtifacts(ctx context.Context, sessionID string, at time.Time) error
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// BlobStore keeps files by key: downloads, uploads and recording chunks. Keys are
// slash-separated relative paths of ValidBlobKey form. internal/fsblob keeps them in a
// local directory; an S3-compatible store can replace it.
type BlobStore interface {
	// Put stores r's bytes under key, replacing a blob of the same key atomically:
	// readers see the old or the new bytes, never a mix. It returns the size.
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	// Open returns a blob's bytes, or a CodeNotFound error.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// List returns the blobs whose keys start with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]BlobInfo, error)
	// DeletePrefix deletes every blob whose key starts with prefix (which must end
	// with "/"). Deleting nothing is not an error.
	DeletePrefix(ctx context.Context, prefix string) error
}

// ValidBlobKey reports whether key is a clean relative slash path: non-empty segments,
// none "." or "..", no backslash or NUL, at most 1024 bytes.
func ValidBlobKey(key string) bool {
	if key == "" || len(key) > 1024 || key[0] == '/' || key[len(key)-1] == '/' {
		return false
	}
	start := 0
	for i := 0; i <= len(key); i++ {
		if i < len(key) {
			switch key[i] {
			case 0, '\\':
				return false
			case '/':
			default:
				continue
			}
		}
		seg := key[start:i]
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		start = i + 1
	}
	return true
}

// AgentOptions say what browserd's own CDP client does in a session's browser.
type AgentOptions struct {
	SessionID string
	// DownloadDir is where the browser saves downloads (an absolute local path).
	DownloadDir string
	// Record records every page with rrweb; events go to Events.
	Record bool
	// Events receives batches of recorded events, from one goroutine at a time.
	Events func(events []RecordingEvent)
	// Log, when set, gets the browser events the session's logs keep (network requests,
	// console messages and exceptions, navigations, targets attached and detached,
	// downloads begun and ended), from every page, whatever clients enabled. It is called
	// on the agent's read goroutine and must not block.
	Log func(BrowserEvent)
	// LogPayloadLimit cuts the params an event hands to Log to this many bytes (the
	// event's Size keeps the whole); 0 does not cut.
	LogPayloadLimit int
	// Download, when set, is told of every download the browser begins: the name it
	// saves the file under in DownloadDir when a client asked for
	// Browser.setDownloadBehavior "allowAndName" (Playwright does, by default), which is
	// the download's guid, and the name the site suggested. It must not block.
	Download func(guid, suggestedName string)
}

// Agent is browserd's own CDP client in each session's browser (internal/recorder):
// it points downloads at the session's directory, records pages and hears the
// browser's events for the logs.
type Agent interface {
	// Start sets the browser up and returns once downloads are directed, recording
	// (if asked for) is armed in the open pages, and new pages will be recorded. stop
	// ends the agent and waits for it; it is safe to call after the browser is gone.
	Start(ctx context.Context, browserURL string, opts AgentOptions) (stop func(), err error)
}
