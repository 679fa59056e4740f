package cdpproxy

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// artifacts is what the gateway needs of session artifacts; *bb.Artifacts satisfies it.
type artifacts interface {
	// Live says where a live session's files are and whether it keeps CDP logs.
	Live(sessionID string) (bb.LiveSession, bool)
	// RecordCDP queues a command and its response for the logs; it must not block.
	RecordCDP(ex bb.CDPExchange)
}

// maxPending bounds the commands a connection waits for answers to, for the logs;
// beyond it commands are logged without waiting for their responses.
const maxPending = 4096

// pendingCommand is a logged command waiting for its response.
type pendingCommand struct {
	method, cdpSession string
	raw                []byte // cut to the payload limit
	size               int
	at                 time.Time
}

// cdpLog pairs one connection's commands with their responses for the session logs.
type cdpLog struct {
	sink      artifacts
	sessionID string
	limit     int

	mu      sync.Mutex
	pending map[int64]pendingCommand
}

// command notes a client command. It copies at most limit bytes of it.
func (l *cdpLog) command(msg []byte, cmd command) {
	p := pendingCommand{
		method:     string(cmd.method),
		cdpSession: string(cmd.sessionID),
		raw:        bytes.Clone(msg[:min(len(msg), l.limit)]),
		size:       len(msg),
		at:         time.Now(),
	}
	if !cmd.hasID {
		l.emit(p, nil, 0, time.Time{})
		return
	}
	l.mu.Lock()
	if len(l.pending) >= maxPending {
		l.mu.Unlock()
		l.emit(p, nil, 0, time.Time{})
		return
	}
	l.pending[cmd.id] = p
	l.mu.Unlock()
}

// browser sees each browser message (cut to the limit); size is its whole size.
func (l *cdpLog) browser(msg []byte, size int64) {
	id, ok := responseID(msg)
	if !ok {
		return
	}
	l.mu.Lock()
	p, ok := l.pending[id]
	delete(l.pending, id)
	l.mu.Unlock()
	if ok {
		l.emit(p, bytes.Clone(msg), int(size), time.Now())
	}
}

// end logs the commands that never got a response (Browser.close, or the connection ended).
func (l *cdpLog) end() {
	l.mu.Lock()
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	for _, p := range pending {
		l.emit(p, nil, 0, time.Time{})
	}
}

func (l *cdpLog) emit(p pendingCommand, res []byte, size int, at time.Time) {
	l.sink.RecordCDP(bb.CDPExchange{
		SessionID: l.sessionID, Method: p.method, CDPSessionID: p.cdpSession,
		Request: p.raw, RequestSize: p.size, RequestAt: p.at,
		Response: res, ResponseSize: size, ResponseAt: at,
	})
}

// Methods whose paths the gateway maps into the session's directories.
var (
	downloadMethods = [][]byte{[]byte("Browser.setDownloadBehavior"), []byte("Page.setDownloadBehavior")}
	uploadMethod    = []byte("DOM.setFileInputFiles")
)

// rewrite maps the paths of download and upload commands to the session's own
// directories (docs/COMPATIBILITY.md, "Downloads" and "Uploads"): every downloadPath
// becomes the session's download dir, behavior "default" becomes "allow" there, and
// files under /tmp/.uploads/ become the session's uploads. It returns the new message
// and true, or false to leave msg as it is.
func rewrite(msg []byte, method []byte, live bb.LiveSession) ([]byte, bool) {
	switch {
	case live.DownloadDir != "" && (bytes.Equal(method, downloadMethods[0]) || bytes.Equal(method, downloadMethods[1])):
		return editParams(msg, func(params map[string]json.RawMessage) bool {
			var behavior string
			if json.Unmarshal(params["behavior"], &behavior) != nil {
				return false
			}
			switch behavior {
			case "default":
				params["behavior"] = json.RawMessage(`"allow"`)
			case "allow", "allowAndName":
			default: // deny, or something Chromium will refuse anyway
				return false
			}
			params["downloadPath"] = mustJSON(live.DownloadDir)
			return true
		})
	case live.UploadDir != "" && bytes.Equal(method, uploadMethod):
		return editParams(msg, func(params map[string]json.RawMessage) bool {
			var files []string
			if json.Unmarshal(params["files"], &files) != nil {
				return false
			}
			changed := false
			for i, f := range files {
				name, ok := strings.CutPrefix(f, bb.UploadPathPrefix)
				if !ok {
					continue
				}
				// Only names an upload can have; anything else (sub-directories, "..")
				// stays as it is and names no uploaded file.
				if clean, err := bb.SanitizeUploadName(name); err == nil && clean == name {
					files[i] = filepath.Join(live.UploadDir, name)
					changed = true
				}
			}
			if changed {
				params["files"] = mustJSON(files)
			}
			return changed
		})
	}
	return nil, false
}

// editParams decodes msg's params, lets edit change them, and re-encodes msg with every
// other member kept as it was.
func editParams(msg []byte, edit func(map[string]json.RawMessage) bool) ([]byte, bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal(msg, &top) != nil {
		return nil, false
	}
	var params map[string]json.RawMessage
	if json.Unmarshal(top["params"], &params) != nil || params == nil || !edit(params) {
		return nil, false
	}
	p, err := json.Marshal(params)
	if err != nil {
		return nil, false
	}
	top["params"] = p
	out, err := json.Marshal(top)
	if err != nil {
		return nil, false
	}
	return out, true
}

// mustJSON encodes strings and string slices, which always encode.
func mustJSON[T string | []string](v T) json.RawMessage {
	b, _ := json.Marshal(v) // cannot fail for these types
	return b
}

// hooksFor returns the relay hooks of a connection: Browser.close detection always;
// path mapping for a session Config.Artifacts knows; logging when it keeps logs, which
// also limits what the browser observer copies to the payload limit.
func (g *Gateway) hooksFor(c *conn, cfg *relayConfig) hooks {
	h := hooks{client: c.inspectClient}
	if g.cfg.Artifacts == nil {
		return h
	}
	live, ok := g.cfg.Artifacts.Live(c.sessionID)
	if !ok {
		return h
	}
	c.live = live
	if live.Logs && live.LogPayloadLimit > 0 {
		c.log = &cdpLog{sink: g.cfg.Artifacts, sessionID: c.sessionID, limit: live.LogPayloadLimit, pending: map[int64]pendingCommand{}}
		h.browser = func(op opcode, msg []byte, size int64) {
			if op == opText {
				c.log.browser(msg, size)
			}
		}
		cfg.observeMax = int64(live.LogPayloadLimit)
	}
	return h
}

var (
	setDownloadBehavior = []byte("setDownloadBehavior")
	setFileInputFiles   = []byte("setFileInputFiles")
)

// inspectArtifacts logs a client command and maps its paths. Without logs, only the
// messages that may name a path are parsed.
func (c *conn) inspectArtifacts(msg []byte) ([]byte, bool) {
	mayRewrite := (c.live.DownloadDir != "" && bytes.Contains(msg, setDownloadBehavior)) ||
		(c.live.UploadDir != "" && bytes.Contains(msg, setFileInputFiles))
	if c.log == nil && !mayRewrite {
		return nil, false
	}
	cmd, ok := scanCommand(msg)
	if !ok {
		return nil, false
	}
	if c.log != nil {
		c.log.command(msg, cmd)
	}
	if !mayRewrite {
		return nil, false
	}
	return rewrite(msg, cmd.method, c.live)
}
