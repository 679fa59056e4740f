package liveview

import (
	"strings"
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/google/go-cmp/cmp"
)

func TestDecodeViewerMessage(t *testing.T) {
	tests := []struct {
		name, in string
		want     viewerMsg
		wantErr  string
	}{
		{name: "viewport", in: `{"type":"viewport","width":1280,"height":720}`, want: viewerMsg{Type: "viewport", Width: 1280, Height: 720}},
		{name: "ack", in: `{"type":"ack","seq":12}`, want: viewerMsg{Type: "ack", Seq: 12}},
		{name: "mouse", in: `{"type":"mouse","event":"down","x":10.5,"y":3,"button":"left","buttons":1,"clickCount":2,"modifiers":8,"seq":3}`,
			want: viewerMsg{Type: "mouse", Event: "down", X: 10.5, Y: 3, Button: "left", Buttons: 1, ClickCount: 2, Modifiers: 8, Seq: 3}},
		{name: "mouse move without button", in: `{"type":"mouse","event":"move","x":1,"y":2}`,
			want: viewerMsg{Type: "mouse", Event: "move", X: 1, Y: 2, Button: "none"}},
		{name: "wheel", in: `{"type":"wheel","x":1,"y":2,"dx":0,"dy":-120}`, want: viewerMsg{Type: "wheel", X: 1, Y: 2, DY: -120}},
		{name: "key", in: `{"type":"key","event":"down","key":"é","code":"KeyE","keyCode":69,"text":"é"}`,
			want: viewerMsg{Type: "key", Event: "down", Key: "é", Code: "KeyE", KeyCode: 69, Text: "é"}},
		{name: "text", in: `{"type":"text","text":"pasted"}`, want: viewerMsg{Type: "text", Text: "pasted"}},
		{name: "switch", in: `{"type":"switch","id":"57595AC86FCF417D96CD0E9639B1232E"}`, want: viewerMsg{Type: "switch", ID: "57595AC86FCF417D96CD0E9639B1232E"}},
		{name: "navigate bare host", in: `{"type":"navigate","url":"example.com/a?b=1"}`, want: viewerMsg{Type: "navigate", URL: "https://example.com/a?b=1"}},
		{name: "navigate http", in: `{"type":"navigate","url":" http://127.0.0.1:8080/ "}`, want: viewerMsg{Type: "navigate", URL: "http://127.0.0.1:8080/"}},
		{name: "navigate blank", in: `{"type":"navigate","url":"about:blank"}`, want: viewerMsg{Type: "navigate", URL: "about:blank"}},
		{name: "history", in: `{"type":"history","delta":-1}`, want: viewerMsg{Type: "history", Delta: -1}},
		{name: "unknown fields ignored", in: `{"type":"ping","seq":5,"extra":[1,2]}`, want: viewerMsg{Type: "ping", Seq: 5}},

		{name: "not json", in: `hello`, wantErr: "not a JSON object"},
		{name: "two objects", in: `{"type":"ping"}{"type":"ping"}`, wantErr: "one JSON object"},
		{name: "unknown type", in: `{"type":"exec"}`, wantErr: "unknown message type"},
		{name: "no type", in: `{}`, wantErr: "unknown message type"},
		{name: "viewport too large", in: `{"type":"viewport","width":100000,"height":10}`, wantErr: "viewport"},
		{name: "viewport zero", in: `{"type":"viewport","width":0,"height":10}`, wantErr: "viewport"},
		{name: "mouse event", in: `{"type":"mouse","event":"click","x":1,"y":1}`, wantErr: "mouse event"},
		{name: "mouse button", in: `{"type":"mouse","event":"down","button":"fourth","x":1,"y":1}`, wantErr: "mouse button"},
		{name: "mouse far away", in: `{"type":"mouse","event":"down","x":1e300,"y":1}`, wantErr: "x and y"},
		{name: "click count", in: `{"type":"mouse","event":"down","x":1,"y":1,"clickCount":9}`, wantErr: "clickCount"},
		{name: "modifiers", in: `{"type":"mouse","event":"move","x":1,"y":1,"modifiers":64}`, wantErr: "modifiers"},
		{name: "key event", in: `{"type":"key","event":"press","key":"a"}`, wantErr: "key event"},
		{name: "key too long", in: `{"type":"key","event":"down","key":"` + strings.Repeat("a", 65) + `"}`, wantErr: "at most"},
		{name: "key code", in: `{"type":"key","event":"down","key":"a","keyCode":300}`, wantErr: "keyCode"},
		{name: "empty text", in: `{"type":"text","text":""}`, wantErr: "text must be"},
		{name: "bad switch id", in: `{"type":"switch","id":"../x"}`, wantErr: "target id"},
		{name: "file url", in: `{"type":"navigate","url":"file:///etc/passwd"}`, wantErr: "http(s)"},
		{name: "chrome url", in: `{"type":"navigate","url":"chrome://settings"}`, wantErr: "http(s)"},
		{name: "javascript url", in: `{"type":"navigate","url":"javascript:alert(1)"}`, wantErr: "http(s)"},
		{name: "history delta", in: `{"type":"history","delta":5}`, wantErr: "delta"},
		{name: "wrong type of field", in: `{"type":"mouse","event":"down","x":"1","y":1}`, wantErr: "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeViewerMessage([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || bb.CodeOf(err) != bb.CodeInvalid || !strings.Contains(bb.MessageOf(err), tt.wantErr) {
					t.Errorf("decodeViewerMessage(%s) = %+v, %v; want invalid %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeViewerMessage(%s): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decodeViewerMessage(%s) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
	if _, err := decodeViewerMessage([]byte(`{"type":"text","text":"` + strings.Repeat("a", maxViewerMessage) + `"}`)); bb.CodeOf(err) != bb.CodeInvalid {
		t.Errorf("oversized message: %v; want invalid", err)
	}
}

func TestInputCommand(t *testing.T) {
	tests := []struct {
		in         viewerMsg
		wantMethod string
		want       map[string]any
	}{
		{in: viewerMsg{Type: "mouse", Event: "up", X: 1, Y: 2, Button: "right", ClickCount: 1},
			wantMethod: "Input.dispatchMouseEvent",
			want:       map[string]any{"type": "mouseReleased", "x": 1.0, "y": 2.0, "button": "right", "buttons": 0, "clickCount": 1, "modifiers": 0}},
		{in: viewerMsg{Type: "wheel", X: 1, Y: 2, DY: 100},
			wantMethod: "Input.dispatchMouseEvent",
			want:       map[string]any{"type": "mouseWheel", "x": 1.0, "y": 2.0, "deltaX": 0.0, "deltaY": 100.0, "modifiers": 0}},
		{in: viewerMsg{Type: "key", Event: "down", Key: "Enter", Code: "Enter", KeyCode: 13, Text: "\r"},
			wantMethod: "Input.dispatchKeyEvent",
			want: map[string]any{"type": "keyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13,
				"text": "\r", "unmodifiedText": "\r", "modifiers": 0, "location": 0, "autoRepeat": false, "isKeypad": false}},
		{in: viewerMsg{Type: "key", Event: "up", Key: "a", Code: "KeyA", KeyCode: 65, Modifiers: 2},
			wantMethod: "Input.dispatchKeyEvent",
			want: map[string]any{"type": "keyUp", "key": "a", "code": "KeyA", "windowsVirtualKeyCode": 65, "nativeVirtualKeyCode": 65,
				"modifiers": 2, "location": 0, "autoRepeat": false, "isKeypad": false}},
		{in: viewerMsg{Type: "text", Text: "hi"}, wantMethod: "Input.insertText", want: map[string]any{"text": "hi"}},
		{in: viewerMsg{Type: "navigate", URL: "https://a/"}, wantMethod: "Page.navigate", want: map[string]any{"url": "https://a/"}},
	}
	for _, tt := range tests {
		method, params := inputCommand(tt.in)
		if method != tt.wantMethod {
			t.Errorf("inputCommand(%+v) method = %q; want %q", tt.in, method, tt.wantMethod)
		}
		if diff := cmp.Diff(tt.want, params); diff != "" {
			t.Errorf("inputCommand(%+v) params (-want +got):\n%s", tt.in, diff)
		}
	}
}

func FuzzDecodeViewerMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"viewport","width":1280,"height":720}`,
		`{"type":"mouse","event":"down","x":10.5,"y":3,"button":"left","buttons":1,"clickCount":2,"modifiers":8,"seq":3}`,
		`{"type":"wheel","x":1,"y":2,"dx":0,"dy":-120}`,
		`{"type":"key","event":"down","key":"a","code":"KeyA","keyCode":65,"text":"a"}`,
		`{"type":"text","text":"pasted"}`,
		`{"type":"switch","id":"57595AC86FCF417D96CD0E9639B1232E"}`,
		`{"type":"navigate","url":"example.com"}`,
		`{"type":"history","delta":1}`,
		`{"type":"ack","seq":1}`,
		`[]`, `null`, `{"type":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeViewerMessage(b)
		if err != nil {
			if bb.CodeOf(err) != bb.CodeInvalid {
				t.Errorf("decodeViewerMessage(%q) error code %s; want invalid", b, bb.CodeOf(err))
			}
			return
		}
		// What passes is safe to hand to Chromium.
		if m.input() && m.Type != "history" && m.Type != "reload" {
			if method, _ := inputCommand(m); method == "" {
				t.Errorf("accepted input %+v maps to no command", m)
			}
		}
		if m.Type == "navigate" && !strings.HasPrefix(m.URL, "http://") && !strings.HasPrefix(m.URL, "https://") && m.URL != "about:blank" {
			t.Errorf("accepted navigation to %q", m.URL)
		}
	})
}
