package cdp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

// fakeBrowser serves one DevTools websocket per connection to serve, and returns its
// ws:// URL. serve runs on the server's goroutine; the connection closes when it returns.
func fakeBrowser(t *testing.T, serve func(ctx context.Context, ws *websocket.Conn)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return // Accept has answered
		}
		defer ws.CloseNow()
		ws.SetReadLimit(-1)
		serve(r.Context(), ws)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/devtools/browser/x"
}

// readRequest reads one command from the client.
func readRequest(ctx context.Context, ws *websocket.Conn) (request, json.RawMessage, error) {
	_, b, err := ws.Read(ctx)
	if err != nil {
		return request{}, nil, err
	}
	var r struct {
		request
		Params json.RawMessage `json:"params"`
	}
	err = json.Unmarshal(b, &r)
	return r.request, r.Params, err
}

// drain reads until the connection ends, which answers the client's close handshake.
func drain(ctx context.Context, ws *websocket.Conn) {
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			return
		}
	}
}

func write(ctx context.Context, ws *websocket.Conn, s string) error {
	return ws.Write(ctx, websocket.MessageText, []byte(s))
}

// echo answers every command with its method, session and params.
func echo(ctx context.Context, ws *websocket.Conn) {
	for {
		r, p, err := readRequest(ctx, ws)
		if err != nil {
			return
		}
		res, _ := json.Marshal(map[string]any{"method": r.Method, "session": r.SessionID, "params": p})
		if r.Method == "Fail.me" {
			res = nil
		}
		msg := `{"id":` + strconv.FormatInt(r.ID, 10) + `,"result":` + string(res)
		if res == nil {
			msg = `{"id":` + strconv.FormatInt(r.ID, 10) + `,"error":{"code":-32601,"message":"'Fail.me' wasn't found"}`
		}
		if r.SessionID != "" {
			msg += `,"sessionId":"` + r.SessionID + `"`
		}
		if write(ctx, ws, msg+"}") != nil {
			return
		}
	}
}

func dialT(t *testing.T, url string, opts Options) *Conn {
	t.Helper()
	c, err := Dial(t.Context(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestCall(t *testing.T) {
	c := dialT(t, fakeBrowser(t, echo), Options{})
	tests := []struct {
		name, session, method string
		params                any
		want                  string
	}{
		{name: "browser", method: "Browser.getVersion", want: `{"method":"Browser.getVersion","params":null,"session":""}`},
		{name: "flattened session", session: "S1", method: "Runtime.evaluate", params: map[string]any{"expression": "1+1"},
			want: `{"method":"Runtime.evaluate","params":{"expression":"1+1"},"session":"S1"}`},
		{name: "raw params", method: "Page.navigate", params: json.RawMessage(`{"url":"about:blank"}`),
			want: `{"method":"Page.navigate","params":{"url":"about:blank"},"session":""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw json.RawMessage
			if err := c.Call(t.Context(), tt.session, tt.method, tt.params, &raw); err != nil {
				t.Fatal(err)
			}
			if got := string(raw); got != tt.want {
				t.Errorf("result = %s; want %s", got, tt.want)
			}
			var decoded struct{ Method string }
			if err := c.Call(t.Context(), tt.session, tt.method, tt.params, &decoded); err != nil || decoded.Method != tt.method {
				t.Errorf("decoded result = %+v, %v; want method %s", decoded, err, tt.method)
			}
			if err := c.Call(t.Context(), tt.session, tt.method, tt.params, nil); err != nil {
				t.Errorf("Call without a result: %v", err)
			}
		})
	}
}

func TestCallError(t *testing.T) {
	c := dialT(t, fakeBrowser(t, echo), Options{})
	err := c.Call(t.Context(), "", "Fail.me", nil, nil)
	e, ok := errors.AsType[*Error](err)
	if !ok {
		t.Fatalf("Call = %v; want a *cdp.Error", err)
	}
	if diff := cmp.Diff(e, &Error{Code: -32601, Message: "'Fail.me' wasn't found"}); diff != "" {
		t.Errorf("error (-got +want):\n%s", diff)
	}
	if !strings.HasPrefix(err.Error(), "Fail.me: ") {
		t.Errorf("error %q does not name the method", err)
	}
	if c.Call(t.Context(), "", "Still.works", nil, nil) != nil {
		t.Error("the connection did not survive an error answer")
	}
}

// reverse reads three commands, then answers them last first, each after an event
// naming it.
func reverse(ctx context.Context, ws *websocket.Conn) {
	var ids []string
	for range 3 {
		r, _, err := readRequest(ctx, ws)
		if err != nil {
			return
		}
		ids = append(ids, strconv.FormatInt(r.ID, 10))
	}
	for i := 2; i >= 0; i-- {
		_ = write(ctx, ws, `{"method":"Test.event","params":{"before":`+ids[i]+`},"sessionId":"S"}`)
		_ = write(ctx, ws, `{"id":`+ids[i]+`,"result":{"n":`+ids[i]+`}}`)
	}
	drain(ctx, ws)
}

// TestOutOfOrder: answers are matched to commands by id, whatever their order.
func TestOutOfOrder(t *testing.T) {
	c := dialT(t, fakeBrowser(t, reverse), Options{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[int64]bool{}
	for range 3 {
		wg.Go(func() {
			var res struct{ N int64 }
			if err := c.Call(t.Context(), "", "Test.call", nil, &res); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got[res.N] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if diff := cmp.Diff(got, map[int64]bool{1: true, 2: true, 3: true}); diff != "" {
		t.Errorf("answers (-got +want):\n%s", diff)
	}
}

// TestEventOrder: events and the callbacks of Send run on the read goroutine in the
// order the browser sent them.
func TestEventOrder(t *testing.T) {
	var mu sync.Mutex
	var order []string
	c := dialT(t, fakeBrowser(t, reverse), Options{OnEvent: func(e Event) {
		mu.Lock()
		order = append(order, e.SessionID+" "+e.Method+" "+string(e.Params))
		mu.Unlock()
	}})
	answered := make(chan struct{}, 3)
	for i := range 3 {
		err := c.Send(t.Context(), "", "Test.call", nil, func(raw json.RawMessage, err error) {
			mu.Lock()
			order = append(order, "answer "+strconv.Itoa(i+1)+" "+string(raw))
			mu.Unlock()
			answered <- struct{}{}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		<-answered
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		`S Test.event {"before":3}`, `answer 3 {"n":3}`,
		`S Test.event {"before":2}`, `answer 2 {"n":2}`,
		`S Test.event {"before":1}`, `answer 1 {"n":1}`,
	}
	if diff := cmp.Diff(order, want); diff != "" {
		t.Errorf("order (-got +want):\n%s", diff)
	}
}

// TestDrop: when the browser drops the connection, waiting commands fail with
// ErrClosed, Done is closed, and later commands fail at once.
func TestDrop(t *testing.T) {
	url := fakeBrowser(t, func(ctx context.Context, ws *websocket.Conn) {
		for range 2 {
			if _, _, err := readRequest(ctx, ws); err != nil {
				return
			}
		}
		// Both commands are waiting: drop the connection without answering.
	})
	c := dialT(t, url, Options{})
	sendDone := make(chan error, 1)
	if err := c.Send(t.Context(), "", "Never.answered", nil, func(_ json.RawMessage, err error) { sendDone <- err }); err != nil {
		t.Fatal(err)
	}
	err := c.Call(t.Context(), "S", "Never.answered", nil, nil)
	if !errors.Is(err, ErrClosed) {
		t.Errorf("Call = %v; want ErrClosed", err)
	}
	if err := <-sendDone; !errors.Is(err, ErrClosed) {
		t.Errorf("Send's callback got %v; want ErrClosed", err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed")
	}
	if err := c.Err(); !errors.Is(err, ErrClosed) {
		t.Errorf("Err = %v; want ErrClosed", err)
	}
	if err := c.Call(t.Context(), "", "After.end", nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Call after the end = %v; want ErrClosed", err)
	}
	if err := c.Send(t.Context(), "", "After.end", nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after the end = %v; want ErrClosed", err)
	}
}

// TestClose: Close ends the read goroutine; commands waiting fail, Err says closed.
func TestClose(t *testing.T) {
	c := dialT(t, fakeBrowser(t, func(ctx context.Context, ws *websocket.Conn) {
		_, _, _ = readRequest(ctx, ws)
		_, _, _ = ws.Read(ctx) // the close frame; then the handshake's reply
	}), Options{})
	if c.Err() != nil {
		t.Errorf("Err on an open connection = %v", c.Err())
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Call(context.Background(), "", "Never.answered", nil, nil) }()
	time.Sleep(50 * time.Millisecond) // let the command be written
	c.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("Call during Close = %v; want ErrClosed", err)
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err after Close = %v; want ErrClosed", c.Err())
	}
}

// TestCallContext: a Call whose ctx ends returns its error; the late answer is dropped
// and the connection goes on.
func TestCallContext(t *testing.T) {
	release := make(chan struct{})
	url := fakeBrowser(t, func(ctx context.Context, ws *websocket.Conn) {
		slow, _, err := readRequest(ctx, ws)
		if err != nil {
			return
		}
		<-release
		_ = write(ctx, ws, `{"id":`+strconv.FormatInt(slow.ID, 10)+`,"result":{"late":true}}`)
		echo(ctx, ws)
	})
	c := dialT(t, url, Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := c.Call(ctx, "", "Slow.call", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Call = %v; want DeadlineExceeded", err)
	}
	close(release)
	var res struct{ Method string }
	if err := c.Call(t.Context(), "", "Next.call", nil, &res); err != nil || res.Method != "Next.call" {
		t.Errorf("next Call = %+v, %v; want its own answer", res, err)
	}
}

// TestReadLimit: a message over the limit ends the connection, or with OnOversize is
// reported (size and first bytes) and skipped.
func TestReadLimit(t *testing.T) {
	const limit = 64 << 10
	big := `{"method":"Runtime.bindingCalled","params":{"payload":"` + strings.Repeat("x", 3*limit) + `"}}`
	serve := func(ctx context.Context, ws *websocket.Conn) {
		r, _, err := readRequest(ctx, ws)
		if err != nil {
			return
		}
		_ = write(ctx, ws, `{"method":"Small.event","params":{}}`)
		_ = write(ctx, ws, big)
		_ = write(ctx, ws, `{"id":`+strconv.FormatInt(r.ID, 10)+`,"result":{}}`)
		drain(ctx, ws)
	}
	t.Run("ends the connection", func(t *testing.T) {
		c := dialT(t, fakeBrowser(t, serve), Options{ReadLimit: limit})
		err := c.Call(t.Context(), "", "Test.call", nil, nil)
		if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "read limit") {
			t.Errorf("Call = %v; want ErrClosed for the read limit", err)
		}
	})
	t.Run("OnOversize", func(t *testing.T) {
		var sizes []int64
		var heads []string
		var events []string
		c := dialT(t, fakeBrowser(t, serve), Options{ReadLimit: limit,
			OnEvent: func(e Event) { events = append(events, e.Method) },
			OnOversize: func(size int64, head []byte) {
				sizes = append(sizes, size)
				heads = append(heads, string(head))
			}})
		if err := c.Call(t.Context(), "", "Test.call", nil, nil); err != nil {
			t.Fatal(err)
		}
		// The answer came after both: the callbacks have run (the read goroutine's
		// writes happen before the answer's channel send).
		if len(sizes) != 1 || sizes[0] != int64(len(big)) || heads[0] != big[:headSize] {
			t.Errorf("OnOversize got sizes %v, heads of %d; want one call with %d and the first %d bytes", sizes, len(heads), len(big), headSize)
		}
		if diff := cmp.Diff(events, []string{"Small.event"}); diff != "" {
			t.Errorf("events (-got +want):\n%s", diff)
		}
	})
	t.Run("default fits a large message", func(t *testing.T) {
		c := dialT(t, fakeBrowser(t, serve), Options{})
		if err := c.Call(t.Context(), "", "Test.call", nil, nil); err != nil {
			t.Fatal(err)
		}
	})
}

// TestAbort: a callback ends the connection with Abort; Err wraps its cause.
func TestAbort(t *testing.T) {
	errBacklog := errors.New("backlog")
	var c *Conn
	ready := make(chan struct{})
	url := fakeBrowser(t, func(ctx context.Context, ws *websocket.Conn) {
		_ = write(ctx, ws, `{"method":"Too.many"}`)
		drain(ctx, ws)
	})
	c = dialT(t, url, Options{OnEvent: func(Event) {
		<-ready
		c.Abort(errBacklog)
	}})
	close(ready)
	<-c.Done()
	if err := c.Err(); !errors.Is(err, errBacklog) || !errors.Is(err, ErrClosed) {
		t.Errorf("Err = %v; want ErrClosed and the cause", err)
	}
}

// TestLargeAnswer: an answer over the reuse size comes out whole, and a small one after
// it is not overwritten by the next read.
func TestLargeAnswer(t *testing.T) {
	data := strings.Repeat("A", 3*reuseLimit)
	url := fakeBrowser(t, func(ctx context.Context, ws *websocket.Conn) {
		for {
			r, _, err := readRequest(ctx, ws)
			if err != nil {
				return
			}
			id := strconv.FormatInt(r.ID, 10)
			res := `{"data":"` + id + `"}`
			if r.Method == "Page.captureScreenshot" {
				res = `{"data":"` + data + `"}`
			}
			if write(ctx, ws, `{"id":`+id+`,"result":`+res+`}`) != nil {
				return
			}
		}
	})
	c := dialT(t, url, Options{})
	var shot, small1, small2 json.RawMessage
	if err := c.Call(t.Context(), "", "Page.captureScreenshot", nil, &shot); err != nil {
		t.Fatal(err)
	}
	if err := c.Call(t.Context(), "", "Small.one", nil, &small1); err != nil {
		t.Fatal(err)
	}
	if err := c.Call(t.Context(), "", "Small.two", nil, &small2); err != nil {
		t.Fatal(err)
	}
	if string(shot) != `{"data":"`+data+`"}` || string(small1) != `{"data":"2"}` || string(small2) != `{"data":"3"}` {
		t.Errorf("answers: %d bytes, %s, %s; want %d bytes, {\"data\":\"2\"}, {\"data\":\"3\"}", len(shot), small1, small2, len(data)+11)
	}
}

func TestDialError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	_, err := Dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http"), Options{})
	if err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("Dial = %v; want an error with HTTP 404", err)
	}
}
