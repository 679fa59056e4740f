package browserd

import (
	"bytes"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
)

// CDP methods that name files on the server, and the one that closes the browser. Every
// path that carries a client's CDP commands to a browser (the gateway, the live view's
// DevTools websocket, WebDriver's goog/cdp/execute) applies ConfineCDPCommand to them.
const (
	MethodBrowserSetDownloadBehavior = "Browser.setDownloadBehavior"
	MethodPageSetDownloadBehavior    = "Page.setDownloadBehavior"
	MethodSetFileInputFiles          = "DOM.setFileInputFiles"
	MethodDispatchDragEvent          = "Input.dispatchDragEvent"
	MethodSendMessageToTarget        = "Target.sendMessageToTarget"
	MethodBrowserClose               = "Browser.close"
)

// ConfinedCDPMethod reports whether ConfineCDPCommand may change or refuse method: a
// client command with such a method must be inspected whole, never relayed unread.
func ConfinedCDPMethod(method string) bool {
	switch method {
	case MethodBrowserSetDownloadBehavior, MethodPageSetDownloadBehavior, MethodSetFileInputFiles, MethodDispatchDragEvent,
		MethodSendMessageToTarget:
		return true
	}
	return false
}

// ConfineCDPCommand applies browserd's rules to a client's CDP command (method already
// decoded, params as sent) so that it reads and writes only the session's own files
// (docs/COMPATIBILITY.md, "Downloads", "Uploads", "What browserd inspects"):
//
//   - *.setDownloadBehavior: downloadPath becomes the session's download directory,
//     whatever the client said; behavior "default" becomes "allow" there.
//   - DOM.setFileInputFiles (and the files of Input.dispatchDragEvent's data):
//     /tmp/.uploads/<name> becomes the session's upload of that name; a path already in
//     the session's upload or download directory stays; any other path refuses the
//     command.
//   - Target.sendMessageToTarget is refused: the command it carries would reach the
//     browser uninspected (clients use flattened sessions instead).
//
// params of these commands must be a JSON object without duplicate keys. For other
// methods it returns nil, nil. Otherwise it returns the params to send instead (always
// re-encoded, so that the browser reads exactly what was checked), or a CodeInvalid or
// CodeForbidden error to answer the client with.
func ConfineCDPCommand(method string, params json.RawMessage, live LiveSession) (json.RawMessage, error) {
	if !ConfinedCDPMethod(method) {
		return nil, nil
	}
	if method == MethodSendMessageToTarget {
		return nil, Errorf(CodeForbidden, "%s is not relayed: attach with flatten:true and send commands with a sessionId", method)
	}
	obj, err := DecodeUniqueObject(params)
	if err != nil {
		return nil, Errorf(CodeInvalid, "%s: params %v", method, err)
	}
	switch method {
	case MethodSetFileInputFiles:
		files, err := confineFiles(method, "params.files", obj["files"], live)
		if err != nil {
			return nil, err
		}
		obj["files"] = files
	case MethodDispatchDragEvent:
		if raw, ok := obj["data"]; ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			data, err := DecodeUniqueObject(raw)
			if err != nil {
				return nil, Errorf(CodeInvalid, "%s: params.data %v", method, err)
			}
			if f, ok := data["files"]; ok {
				files, err := confineFiles(method, "params.data.files", f, live)
				if err != nil {
					return nil, err
				}
				data["files"] = files
			}
			obj["data"] = mustMarshal(data)
		}
	default: // the download methods
		if live.DownloadDir == "" {
			return nil, Errorf(CodeForbidden, "%s: this session has no download directory", method)
		}
		var behavior string
		if err := json.Unmarshal(obj["behavior"], &behavior); err != nil {
			return nil, Errorf(CodeInvalid, "%s: params.behavior must be a string", method)
		}
		if behavior == "default" {
			obj["behavior"] = mustMarshal("allow")
		}
		obj["downloadPath"] = mustMarshal(live.DownloadDir)
	}
	return mustMarshal(obj), nil
}

// confineFiles confines a JSON array of file paths (see confineUpload).
func confineFiles(method, field string, raw json.RawMessage, live LiveSession) (json.RawMessage, error) {
	if live.UploadDir == "" {
		return nil, Errorf(CodeForbidden, "%s: this session has no upload directory", method)
	}
	var files []string
	if err := json.Unmarshal(raw, &files); err != nil {
		return nil, Errorf(CodeInvalid, "%s: %s must be an array of strings", method, field)
	}
	for i, f := range files {
		p, ok := confineUpload(f, live)
		if !ok {
			return nil, Errorf(CodeForbidden, "%s: %q is not an uploaded file; upload it (POST /v1/sessions/{id}/uploads) and use %s<name>",
				method, f, UploadPathPrefix)
		}
		files[i] = p
	}
	return mustMarshal(files), nil
}

// confineUpload maps an upload path to the session's file, or says it names none.
func confineUpload(f string, live LiveSession) (string, bool) {
	if name, ok := strings.CutPrefix(f, UploadPathPrefix); ok {
		// Only names an upload can have: no sub-directories, no "..".
		if clean, err := SanitizeUploadName(name); err == nil && clean == name {
			return filepath.Join(live.UploadDir, name), true
		}
		return "", false
	}
	if !filepath.IsAbs(f) || filepath.Clean(f) != f {
		return "", false
	}
	for _, dir := range []string{live.UploadDir, live.DownloadDir} {
		if dir != "" && strings.HasPrefix(f, dir+string(filepath.Separator)) {
			return f, true
		}
	}
	return "", false
}

// DecodeUniqueObject decodes one strict JSON object whose keys are all different once
// unescaped: of two equal keys, the browser (or chromedriver) and encoding/json may not
// take the same one, so an inspection could check one value and the browser use the
// other.
func DecodeUniqueObject(raw json.RawMessage) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, errString("must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errString("must be a JSON object")
	}
	obj := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errString("must be a JSON object")
		}
		key := tok.(string) // an object's tokens alternate: a key is always a string
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errString("must be a JSON object")
		}
		if _, dup := obj[key]; dup {
			return nil, errString("has the key " + quote(key) + " more than once")
		}
		obj[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, errString("must be a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errString("must be one JSON object")
	}
	return obj, nil
}

type errString string

func (e errString) Error() string { return string(e) }

func quote(s string) string {
	b, _ := json.Marshal(s) // a string always encodes
	return string(b)
}

// mustMarshal encodes values that always encode (strings, string slices, raw maps).
func mustMarshal(v any) json.RawMessage {
	b, _ := json.Marshal(v) // cannot fail for the types above
	return b
}
