package liveview

import (
	"bytes"
	"encoding/json"
	"math"
	"net/url"
	"strings"
	"unicode/utf8"

	bb "github.com/browserd/browserd"
)

// Limits on viewer messages.
const (
	maxViewerMessage = 128 << 10 // bytes, a pasted text included
	maxInsertText    = 64 << 10
	maxKeyField      = 64
	maxURL           = 8 << 10
	maxCoordinate    = 1 << 20 // CSS pixels; far beyond any viewport
	maxViewportSide  = 8192    // device pixels of the viewer's canvas
)

// viewerMsg is a message from the live view page to the server, decoded and checked
// by decodeViewerMessage. Which fields are set depends on Type:
//
//	viewport {width, height}              the viewer's canvas in device pixels
//	ack      {seq}                        a frame was drawn
//	mouse    {event: down|up|move, x, y, button, buttons, clickCount, modifiers, seq?}
//	wheel    {x, y, dx, dy, modifiers}
//	key      {event: down|up, key, code, keyCode, text?, location, repeat, modifiers, seq?}
//	text     {text}                       insert text (paste, IME)
//	switch   {id}                         show another tab
//	navigate {url}; history {delta: -1|1}; reload
//	pause; resume                         the viewer is hidden / visible again
//	ping     {seq}                        answered with pong
type viewerMsg struct {
	Type       string  `json:"type"`
	Seq        int64   `json:"seq"`
	Width      int     `json:"width"`
	Height     int     `json:"height"`
	Event      string  `json:"event"`
	X          float64 `json:"x"`
	Y          float64 `json:"y"`
	DX         float64 `json:"dx"`
	DY         float64 `json:"dy"`
	Button     string  `json:"button"`
	Buttons    int     `json:"buttons"`
	ClickCount int     `json:"clickCount"`
	Modifiers  int     `json:"modifiers"`
	Key        string  `json:"key"`
	Code       string  `json:"code"`
	KeyCode    int     `json:"keyCode"`
	Location   int     `json:"location"`
	Repeat     bool    `json:"repeat"`
	Text       string  `json:"text"`
	ID         string  `json:"id"`
	URL        string  `json:"url"`
	Delta      int     `json:"delta"`
}

// input reports whether m drives the page (refused on read-only views).
func (m *viewerMsg) input() bool {
	switch m.Type {
	case "mouse", "wheel", "key", "text", "navigate", "history", "reload":
		return true
	}
	return false
}

// decodeViewerMessage decodes and checks one viewer message. Bad input is a
// CodeInvalid error.
func decodeViewerMessage(b []byte) (viewerMsg, error) {
	var m viewerMsg
	if len(b) > maxViewerMessage {
		return m, bb.Errorf(bb.CodeInvalid, "message larger than %d bytes", maxViewerMessage)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return viewerMsg{}, bb.Errorf(bb.CodeInvalid, "message is not a JSON object of the viewer protocol")
	}
	if dec.More() {
		return viewerMsg{}, bb.Errorf(bb.CodeInvalid, "one JSON object per message")
	}
	if err := m.check(); err != nil {
		return viewerMsg{}, err
	}
	return m, nil
}

func invalid(format string, args ...any) error { return bb.Errorf(bb.CodeInvalid, format, args...) }

func (m *viewerMsg) check() error {
	if m.Modifiers < 0 || m.Modifiers > 15 {
		return invalid("modifiers must be 0..15")
	}
	switch m.Type {
	case "viewport":
		if m.Width < 1 || m.Height < 1 || m.Width > maxViewportSide || m.Height > maxViewportSide {
			return invalid("viewport sides must be 1..%d", maxViewportSide)
		}
	case "ack", "ping", "pause", "resume", "reload":
	case "mouse":
		switch m.Event {
		case "down", "up", "move":
		default:
			return invalid("mouse event must be down, up or move")
		}
		switch m.Button {
		case "none", "left", "middle", "right", "back", "forward":
		case "":
			m.Button = "none"
		default:
			return invalid("mouse button must be none, left, middle, right, back or forward")
		}
		if m.Buttons < 0 || m.Buttons > 31 || m.ClickCount < 0 || m.ClickCount > 3 {
			return invalid("buttons must be 0..31 and clickCount 0..3")
		}
		return checkPoint(m.X, m.Y)
	case "wheel":
		if err := checkPoint(m.X, m.Y); err != nil {
			return err
		}
		if !finite(m.DX) || !finite(m.DY) || math.Abs(m.DX) > maxCoordinate || math.Abs(m.DY) > maxCoordinate {
			return invalid("wheel deltas out of range")
		}
	case "key":
		if m.Event != "down" && m.Event != "up" {
			return invalid("key event must be down or up")
		}
		if !shortText(m.Key) || !shortText(m.Code) || !shortText(m.Text) {
			return invalid("key, code and text must be valid UTF-8 of at most %d bytes", maxKeyField)
		}
		if m.KeyCode < 0 || m.KeyCode > 255 || m.Location < 0 || m.Location > 3 {
			return invalid("keyCode must be 0..255 and location 0..3")
		}
	case "text":
		if m.Text == "" || len(m.Text) > maxInsertText || !utf8.ValidString(m.Text) {
			return invalid("text must be valid UTF-8 of 1..%d bytes", maxInsertText)
		}
	case "switch":
		if !validTargetID(m.ID) {
			return invalid("id must be a target id")
		}
	case "navigate":
		u, err := navigableURL(m.URL)
		if err != nil {
			return err
		}
		m.URL = u
	case "history":
		if m.Delta != -1 && m.Delta != 1 {
			return invalid("history delta must be -1 or 1")
		}
	default:
		return invalid("unknown message type %q", m.Type)
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func checkPoint(x, y float64) error {
	if !finite(x) || !finite(y) || math.Abs(x) > maxCoordinate || math.Abs(y) > maxCoordinate {
		return invalid("x and y must be numbers within ±%d", maxCoordinate)
	}
	return nil
}

func shortText(s string) bool { return len(s) <= maxKeyField && utf8.ValidString(s) }

// validTargetID reports whether s looks like a CDP target id (32 hex digits in
// practice; up to 64 characters of [0-9A-Za-z-] accepted).
func validTargetID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-') {
			return false
		}
	}
	return true
}

// navigableURL returns the URL a viewer typed, normalized: http, https and about:blank
// only (a viewer must not open file: or chrome: pages in the session's browser); a
// bare host gets https://.
func navigableURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > maxURL || !utf8.ValidString(raw) {
		return "", invalid("url must be 1..%d bytes of UTF-8", maxURL)
	}
	if raw == "about:blank" {
		return raw, nil
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", invalid("url must be an http(s) URL or about:blank")
	}
	return u.String(), nil
}
