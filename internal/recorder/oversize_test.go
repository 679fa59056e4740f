package recorder

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdp"
)

// TestConnOversize: a message over the limit is read through without being kept
// (onOversize gets its size and first bytes), and the connection goes on with the next
// ones; a binding call of the page's recorder leaves a marker in the recording.
func TestConnOversize(t *testing.T) {
	const limit = 64 << 10
	big := `{"method":"Runtime.bindingCalled","params":{"name":"browserdRecord","payload":"` + strings.Repeat("x", 3*limit) + `"}}`
	after := `{"method":"Runtime.bindingCalled","params":{"name":"browserdRecord","payload":"[{\"type\":3,\"timestamp\":7,\"data\":{\"after\":true}}]"}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ws.SetReadLimit(-1)
		for _, m := range []string{big, after} {
			if ws.Write(r.Context(), websocket.MessageText, []byte(m)) != nil {
				return
			}
		}
		ws.Read(r.Context()) // until the client closes
	}))
	defer srv.Close()
	var got sink
	a := &agent{r: New(Config{MaxMessageBytes: limit}), opts: bb.AgentOptions{Record: true, Events: got.add}, log: New(Config{}).log, kick: make(chan struct{}, 1)}
	var mu sync.Mutex
	var sizes []int64
	var heads []string
	c, err := cdp.Dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http"), cdp.Options{ReadLimit: limit, OnEvent: a.onEvent,
		OnOversize: func(size int64, head []byte) {
			mu.Lock()
			sizes, heads = append(sizes, size), append(heads, string(head))
			mu.Unlock()
			a.onOversize(size, head)
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	waitFor(t, "the message after the large one", func() bool {
		a.flush()
		return got.find(func(e bb.RecordingEvent) bool { return bytes.Contains(e.Data, []byte(`"after"`)) })
	})
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 1 || sizes[0] != int64(len(big)) || !strings.HasPrefix(big, heads[0]) || !strings.HasPrefix(heads[0], string(bindingCalled)) {
		t.Errorf("onOversize got sizes %v, heads %q; want one call with %d and the message's first bytes", sizes, heads, len(big))
	}
	if !got.find(func(e bb.RecordingEvent) bool {
		return e.Type == bb.RRWebCustom && bytes.Contains(e.Data, []byte(`"browserd.eventsDropped"`))
	}) {
		t.Error("no browserd.eventsDropped marker in the recording")
	}
}
