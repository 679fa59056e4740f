package liveview

import (
	"strconv"
	"time"

	"github.com/browserd/browserd/internal/cdp"
)

// input passes a viewer's mouse, wheel, keyboard or navigation to the shown tab.
// Commands are not waited for; one with a seq is answered {"type":"input", seq, ms}
// when the browser has handled it.
func (v *viewer) input(m viewerMsg) {
	if v.readOnly {
		if !v.warnedRO {
			v.warnedRO = true
			v.send(map[string]any{"type": "error", "message": "this live view is read-only"})
		}
		return
	}
	if v.session == "" {
		return
	}
	method, params := inputCommand(m)
	if m.Type == "history" {
		v.history(m.Delta)
		return
	}
	tag := ""
	if m.Seq != 0 {
		tag = strconv.FormatInt(m.Seq, 10)
		v.inputs[tag] = inputStart{seq: m.Seq, at: time.Now()}
	}
	if err := v.cdp.start(v.ctx, v.session, method, params, tag); err != nil {
		delete(v.inputs, tag)
		v.log.Debug("input failed", "method", method, "err", err)
	}
}

func (v *viewer) inputDone(e cdp.Event) {
	in, ok := v.inputs[e.SessionID]
	if !ok {
		return
	}
	delete(v.inputs, e.SessionID)
	v.send(map[string]any{"type": "input", "seq": in.seq,
		"ms": float64(time.Since(in.at).Microseconds()) / 1000, "failed": len(e.Params) > 0})
}

// inputCommand maps an input message to its CDP command (Input.*, Page.*).
func inputCommand(m viewerMsg) (string, map[string]any) {
	switch m.Type {
	case "mouse":
		typ := map[string]string{"down": "mousePressed", "up": "mouseReleased", "move": "mouseMoved"}[m.Event]
		return "Input.dispatchMouseEvent", map[string]any{"type": typ, "x": m.X, "y": m.Y, "modifiers": m.Modifiers,
			"button": m.Button, "buttons": m.Buttons, "clickCount": m.ClickCount}
	case "wheel":
		return "Input.dispatchMouseEvent", map[string]any{"type": "mouseWheel", "x": m.X, "y": m.Y,
			"deltaX": m.DX, "deltaY": m.DY, "modifiers": m.Modifiers}
	case "key":
		// As Puppeteer does: a key with text is keyDown (it types), others rawKeyDown.
		typ := "keyUp"
		if m.Event == "down" {
			typ = "rawKeyDown"
			if m.Text != "" {
				typ = "keyDown"
			}
		}
		p := map[string]any{"type": typ, "modifiers": m.Modifiers, "key": m.Key, "code": m.Code,
			"windowsVirtualKeyCode": m.KeyCode, "nativeVirtualKeyCode": m.KeyCode,
			"location": m.Location, "autoRepeat": m.Repeat, "isKeypad": m.Location == 3}
		if typ == "keyDown" {
			p["text"], p["unmodifiedText"] = m.Text, m.Text
		}
		return "Input.dispatchKeyEvent", p
	case "text":
		return "Input.insertText", map[string]any{"text": m.Text}
	case "navigate":
		return "Page.navigate", map[string]any{"url": m.URL}
	case "reload":
		return "Page.reload", map[string]any{}
	}
	return "", nil
}

// history goes back (-1) or forward (1) in the shown tab.
func (v *viewer) history(delta int) {
	var h struct {
		CurrentIndex int `json:"currentIndex"`
		Entries      []struct {
			ID int `json:"id"`
		} `json:"entries"`
	}
	if err := v.call("Page.getNavigationHistory", nil, &h); err != nil {
		return
	}
	if i := h.CurrentIndex + delta; i >= 0 && i < len(h.Entries) {
		_ = v.cdp.start(v.ctx, v.session, "Page.navigateToHistoryEntry", map[string]any{"entryId": h.Entries[i].ID}, "")
	}
}
