package chrome

import (
	"net/url"
	"strconv"
	"strings"
)

// devToolsPrefix starts the stderr line in which Chromium announces its browser-level
// DevTools websocket, e.g. "DevTools listening on ws://127.0.0.1:40321/devtools/browser/<id>".
const devToolsPrefix = "DevTools listening on "

// parseDevToolsLine returns the browser-level websocket URL announced by one line of
// Chromium's stderr, and false for every other line.
func parseDevToolsLine(line string) (string, bool) {
	rest, ok := strings.CutPrefix(line, devToolsPrefix)
	if !ok {
		return "", false
	}
	rest = strings.TrimSpace(rest)
	if rest == "" || strings.ContainsFunc(rest, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", false
	}
	u, err := url.Parse(rest)
	if err != nil || u.Scheme != "ws" || u.User != nil || u.Opaque != "" ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Hostname() == "" {
		return "", false
	}
	if port, err := strconv.Atoi(u.Port()); err != nil || port <= 0 || port > 65535 {
		return "", false
	}
	id, ok := strings.CutPrefix(u.Path, "/devtools/browser/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return rest, true
}
