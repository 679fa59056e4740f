package recorder

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdp"
)

// networkEnable are the params of the agent's Network.enable. Chromium keeps response
// bodies for each session that enabled Network, for Network.getResponseBody; the agent
// never asks for one (the logs keep no bodies), so it asks Chromium to keep next to
// nothing for it. A client's own Network.enable keeps its own buffers.
var networkEnable = map[string]any{"maxTotalBufferSize": 1024, "maxResourceBufferSize": 1024, "maxPostDataSize": 0}

// loggedEvent reports whether the logs keep the event method, heard on a page session.
// The target and download events, heard on the browser's session, are decided in
// onEvent.
func loggedEvent(method string) bool {
	switch method {
	case "Network.requestWillBeSent", "Network.responseReceived", "Network.loadingFinished", "Network.loadingFailed",
		"Runtime.consoleAPICalled", "Runtime.exceptionThrown",
		"Page.frameNavigated", "Page.loadEventFired", "Page.domContentEventFired",
		"Page.javascriptDialogOpening":
		return true
	}
	return false
}

// logEvent hands an event to the logs, for targetID ("" for the browser). It runs on the
// read goroutine, so it copies nothing it need not: params over the payload limit are
// cut, and a copy of the cut part lets the large buffer go.
func (a *agent) logEvent(m cdp.Event, targetID string) {
	if a.opts.Log == nil {
		return
	}
	if (m.Method == "Runtime.consoleAPICalled" || m.Method == "Runtime.exceptionThrown") && a.fromRecorder(m) {
		return
	}
	params := m.Params
	if lim := a.opts.LogPayloadLimit; lim > 0 && len(params) > lim {
		params = bytes.Clone(params[:lim])
	}
	a.opts.Log(bb.BrowserEvent{
		SessionID: a.opts.SessionID, TargetID: targetID, CDPSessionID: m.SessionID,
		Method: m.Method, Params: params, Size: len(m.Params), At: time.Now(),
	})
}

// recorderWorld is in the params of the Runtime.executionContextCreated of the
// recorder's isolated world.
var recorderWorld = []byte(`"name":"` + world + `"`)

// noteContext follows the recorder's own execution contexts (one per frame of a recorded
// page), whose console messages and exceptions are browserd's, not the page's: the logs
// leave them out. It runs on the read goroutine, for the Runtime context events.
func (a *agent) noteContext(m cdp.Event) {
	switch m.Method {
	case "Runtime.executionContextCreated":
		if !bytes.Contains(m.Params, recorderWorld) {
			return
		}
		var p struct {
			Context struct {
				ID   int    `json:"id"`
				Name string `json:"name"`
			} `json:"context"`
		}
		if json.Unmarshal(m.Params, &p) != nil || p.Context.Name != world {
			return
		}
		if a.own[m.SessionID] == nil {
			a.own[m.SessionID] = map[int]bool{}
		}
		a.own[m.SessionID][p.Context.ID] = true
	case "Runtime.executionContextDestroyed":
		if own := a.own[m.SessionID]; len(own) > 0 {
			if id, ok := contextID(m.Params); ok {
				delete(own, id)
			}
		}
	case "Runtime.executionContextsCleared":
		delete(a.own, m.SessionID)
	}
}

// fromRecorder reports whether a console message or exception came from the recorder's
// world.
func (a *agent) fromRecorder(m cdp.Event) bool {
	own := a.own[m.SessionID]
	if len(own) == 0 {
		return false
	}
	id, ok := contextID(m.Params)
	return ok && own[id]
}

// contextKey is the member name of an execution context id: a key of consoleAPICalled's
// params, of exceptionThrown's exceptionDetails and of executionContextDestroyed's params.
// Inside a JSON string a quote is escaped, so the text can only be a member name.
var contextKey = []byte(`"executionContextId":`)

// contextID returns the first executionContextId in params.
func contextID(params []byte) (int, bool) {
	i := bytes.Index(params, contextKey)
	if i < 0 {
		return 0, false
	}
	i += len(contextKey)
	for i < len(params) && params[i] == ' ' {
		i++
	}
	j := i
	for j < len(params) && j-i < 10 && params[j] >= '0' && params[j] <= '9' {
		j++
	}
	id, err := strconv.Atoi(string(params[i:j]))
	return id, err == nil
}
