package webdriver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// attachOptions are the goog:chromeOptions that still mean something for a browser that
// is already running. Every other one (args, binary, extensions, prefs, localState,
// excludeSwitches, detach, minidumpPath, w3c, the android* ones, a debuggerAddress of the
// client's) configures a launch, which browserd did when it created the session; they are
// dropped (docs/COMPATIBILITY.md "Selenium").
var attachOptions = []string{"mobileEmulation", "perfLoggingPrefs", "windowTypes"}

// droppedCapabilities are top-level capabilities that cannot apply to the session's
// browser: its proxy is the session's (browserSettings/proxies), and WebDriver BiDi
// (webSocketUrl) is not served.
var droppedCapabilities = []string{"proxy", "webSocketUrl"}

// newSessionBody turns a client's New Session body into the one browserd sends to
// chromedriver. It does W3C capability processing for the one browser this endpoint
// serves: the first firstMatch entry whose browserName is absent, "chrome" or "chromium"
// is merged into alwaysMatch (a key in both is an error, as in the W3C algorithm); launch
// options are dropped, and goog:chromeOptions.debuggerAddress is set to the session's
// browser. A body with only the legacy desiredCapabilities is read as alwaysMatch. It
// returns the body and the names of the capabilities it dropped.
func newSessionBody(body []byte, debuggerAddress string) ([]byte, []string, error) {
	var top map[string]json.RawMessage
	if err := decodeObject(body, &top); err != nil {
		return nil, nil, invalidArgument("the New Session body must be a JSON object: %v", err)
	}
	var always map[string]json.RawMessage
	var first []map[string]json.RawMessage
	if raw, ok := top["capabilities"]; ok && !isNull(raw) {
		var caps struct {
			AlwaysMatch json.RawMessage `json:"alwaysMatch"`
			FirstMatch  json.RawMessage `json:"firstMatch"`
		}
		if err := decodeObject(raw, &caps); err != nil {
			return nil, nil, invalidArgument("capabilities must be a JSON object")
		}
		if len(caps.AlwaysMatch) > 0 && !isNull(caps.AlwaysMatch) {
			if err := decodeObject(caps.AlwaysMatch, &always); err != nil {
				return nil, nil, invalidArgument("capabilities.alwaysMatch must be a JSON object")
			}
		}
		if len(caps.FirstMatch) > 0 && !isNull(caps.FirstMatch) {
			var list []json.RawMessage
			if err := json.Unmarshal(caps.FirstMatch, &list); err != nil || len(list) == 0 {
				return nil, nil, invalidArgument("capabilities.firstMatch must be a non-empty JSON array")
			}
			for _, e := range list {
				var m map[string]json.RawMessage
				if err := decodeObject(e, &m); err != nil {
					return nil, nil, invalidArgument("every capabilities.firstMatch entry must be a JSON object")
				}
				first = append(first, m)
			}
		}
	} else if raw, ok := top["desiredCapabilities"]; ok && !isNull(raw) {
		if err := decodeObject(raw, &always); err != nil {
			return nil, nil, invalidArgument("desiredCapabilities must be a JSON object")
		}
	}
	if len(first) == 0 {
		first = []map[string]json.RawMessage{{}}
	}

	var merged map[string]json.RawMessage
	var names []string
	for _, fm := range first {
		m := maps.Clone(always)
		if m == nil {
			m = make(map[string]json.RawMessage)
		}
		for k, v := range fm {
			if _, dup := m[k]; dup {
				return nil, nil, invalidArgument("capability %q is in both alwaysMatch and firstMatch", k)
			}
			m[k] = v
		}
		name, err := browserName(m)
		if err != nil {
			return nil, nil, err
		}
		if name == "" || name == "chrome" || name == "chromium" {
			merged = m
			break
		}
		names = append(names, name)
	}
	if merged == nil {
		return nil, nil, newError(http.StatusInternalServerError, errSessionNotCreated, fmt.Sprintf(
			"this endpoint drives the browserd session's Chromium; no capabilities ask for browserName "+
				"\"chrome\" (got %s)", strings.Join(quoteAll(names), ", ")))
	}

	// chromedriver only knows browserName "chrome"; without one it matches itself.
	delete(merged, "browserName")
	var dropped []string
	for _, k := range droppedCapabilities {
		if _, ok := merged[k]; ok {
			delete(merged, k)
			dropped = append(dropped, k)
		}
	}
	opts := make(map[string]json.RawMessage)
	if raw, ok := merged["goog:chromeOptions"]; ok && !isNull(raw) {
		var client map[string]json.RawMessage
		if err := decodeObject(raw, &client); err != nil {
			return nil, nil, invalidArgument("goog:chromeOptions must be a JSON object")
		}
		for _, k := range slices.Sorted(maps.Keys(client)) {
			if slices.Contains(attachOptions, k) {
				opts[k] = client[k]
			} else {
				dropped = append(dropped, "goog:chromeOptions."+k)
			}
		}
	}
	addr, err := json.Marshal(debuggerAddress)
	if err != nil {
		return nil, nil, fmt.Errorf("encode debuggerAddress: %w", err)
	}
	opts["debuggerAddress"] = addr
	o, err := json.Marshal(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("encode goog:chromeOptions: %w", err)
	}
	merged["goog:chromeOptions"] = o

	out, err := json.Marshal(map[string]any{"capabilities": map[string]any{"alwaysMatch": merged}})
	if err != nil {
		return nil, nil, fmt.Errorf("encode capabilities: %w", err)
	}
	return out, dropped, nil
}

// browserName returns the lower-cased browserName of caps, "" when absent or null.
func browserName(caps map[string]json.RawMessage) (string, error) {
	raw, ok := caps["browserName"]
	if !ok || isNull(raw) {
		return "", nil
	}
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		return "", invalidArgument("browserName must be a string")
	}
	return strings.ToLower(name), nil
}

// rewriteCapabilities edits the capabilities chromedriver returned for the client: the
// debuggerAddress is a loopback address of the server, useless to a remote client (CDP
// clients use the session's connectUrl), so it is removed.
func rewriteCapabilities(caps map[string]json.RawMessage) error {
	raw, ok := caps["goog:chromeOptions"]
	if !ok || isNull(raw) {
		return nil
	}
	var opts map[string]json.RawMessage
	if err := json.Unmarshal(raw, &opts); err != nil {
		return fmt.Errorf("decode goog:chromeOptions: %w", err)
	}
	delete(opts, "debuggerAddress")
	if len(opts) == 0 {
		delete(caps, "goog:chromeOptions")
		return nil
	}
	b, err := json.Marshal(opts)
	if err != nil {
		return fmt.Errorf("encode goog:chromeOptions: %w", err)
	}
	caps["goog:chromeOptions"] = b
	return nil
}

// decodeObject decodes a JSON object (not null, not another type, nothing after it) into v.
func decodeObject(data []byte, v any) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return fmt.Errorf("not a JSON object")
	}
	return json.Unmarshal(data, v)
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func invalidArgument(format string, args ...any) *wdError {
	return newError(http.StatusBadRequest, errInvalidArgument, fmt.Sprintf(format, args...))
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = fmt.Sprintf("%q", n)
	}
	return out
}
