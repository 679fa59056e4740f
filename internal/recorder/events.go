package recorder

import (
	"bytes"
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
	params := m.Params
	if lim := a.opts.LogPayloadLimit; lim > 0 && len(params) > lim {
		params = bytes.Clone(params[:lim])
	}
	a.opts.Log(bb.BrowserEvent{
		SessionID: a.opts.SessionID, TargetID: targetID, CDPSessionID: m.SessionID,
		Method: m.Method, Params: params, Size: len(m.Params), At: time.Now(),
	})
}
