package webdriver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	bb "github.com/browserd/browserd"
)

// maxCDPBody bounds the body of a CDP command sent through chromedriver. It is read
// whole to be inspected; larger CDP commands go through connectUrl.
const maxCDPBody = 8 << 20

// cdpCommands are chromedriver's commands that send a CDP command, {"cmd":…,"params":…},
// to the browser (Selenium's execute_cdp_cmd and its older forms).
var cdpCommands = []string{"/goog/cdp/execute", "/chromium/send_command", "/chromium/send_command_and_get_result"}

// isCDPCommand reports whether rest (the escaped path after /session/{id}) may be one of
// cdpCommands, however it is spelled: when in doubt the body is inspected.
func isCDPCommand(rest string) bool {
	p, err := url.PathUnescape(rest)
	if err != nil {
		p = rest
	}
	p = strings.ToLower(p)
	for _, c := range cdpCommands {
		if p == c || strings.ToLower(rest) == c {
			return true
		}
	}
	return false
}

// cdpCommand serves a CDP command sent through chromedriver under the rules of the CDP
// gateway (bb.ConfineCDPCommand, docs/COMPATIBILITY.md "What browserd inspects"): the
// body must be one strict JSON object of valid UTF-8 without duplicate keys; download
// and upload paths are confined to the session's directories, other file paths and
// Target.sendMessageToTarget refused; Browser.close ends the session COMPLETED, as
// through connectUrl. The command then goes to chromedriver like any other.
func (h *Handler) cdpCommand(w http.ResponseWriter, r *http.Request, ws *wdSession, rest string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCDPBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, newError(http.StatusRequestEntityTooLarge, errInvalidArgument,
				fmt.Sprintf("a CDP command through WebDriver may have at most %d bytes; send larger ones through connectUrl", maxCDPBody)))
			return
		}
		writeError(w, invalidArgument("read the CDP command: %v", err))
		return
	}
	out, werr := h.confineCDP(ws, body)
	if werr != nil {
		writeError(w, werr)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(out))
	r.ContentLength = int64(len(out))
	r.Header.Set("Content-Length", strconv.Itoa(len(out)))
	h.command(w, r, ws, rest)
}

// confineCDP checks a {"cmd":…,"params":…} body and returns the one to relay.
func (h *Handler) confineCDP(ws *wdSession, body []byte) ([]byte, *wdError) {
	if !utf8.Valid(body) {
		return nil, invalidArgument("the CDP command is not valid UTF-8")
	}
	top, err := bb.DecodeUniqueObject(body)
	if err != nil {
		return nil, invalidArgument("the CDP command body %v", err)
	}
	var cmd string
	if raw, ok := top["cmd"]; !ok || json.Unmarshal(raw, &cmd) != nil {
		return nil, invalidArgument("the CDP command body needs a string cmd")
	}
	if cmd == bb.MethodBrowserClose {
		// The browser exit that follows ends the session as COMPLETED, not ERROR.
		ws.att.BrowserClosing()
	}
	var live bb.LiveSession
	if h.cfg.Artifacts != nil {
		live, _ = h.cfg.Artifacts.Live(ws.sessionID)
	}
	params, err := bb.ConfineCDPCommand(cmd, top["params"], live)
	if err != nil {
		return nil, invalidArgument("%s", bb.MessageOf(err))
	}
	if params == nil {
		return body, nil
	}
	top["params"] = params
	out, err := json.Marshal(top)
	if err != nil { // raw values that decoded always encode
		return nil, invalidArgument("encode the CDP command: %v", err)
	}
	return out, nil
}
