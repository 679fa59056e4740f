package cdpproxy

import (
	"bufio"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"
)

// readFrame reads one whole frame, unmasking its payload.
func readFrame(r *bufio.Reader) (header, []byte, error) {
	h, _, err := readHeader(r, 0, nil)
	if err != nil {
		return h, nil, err
	}
	if _, err := r.Discard(h.size); err != nil {
		return h, nil, err
	}
	p := make([]byte, h.length)
	if _, err := io.ReadFull(r, p); err != nil {
		return h, nil, err
	}
	if h.masked {
		mask(h.key, 0, p)
	}
	return h, p, nil
}

// maskedFrame returns a client frame.
func maskedFrame(op opcode, payload string) []byte {
	h := header{fin: true, op: op, masked: true, key: [4]byte{9, 8, 7, 6}, length: int64(len(payload))}
	p := []byte(payload)
	mask(h.key, 0, p)
	return append(appendHeader(nil, h), p...)
}

// TestIdleTimeout checks the idle timer on the fake clock: a client message restarts
// it, a ping does not, and silence closes the client with 1000 "idle timeout".
func TestIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = 10 * time.Minute
		client, relayClient := net.Pipe()
		relayBrowser, browser := net.Pipe()
		rl := newRelay(relayConfig{maxMessage: 1 << 20, idle: idle, writeTimeout: time.Minute, closeWait: 2 * time.Second},
			hooks{}, relayClient, bufio.NewReader(relayClient), relayBrowser, bufio.NewReader(relayBrowser))
		done := make(chan endCause, 1)
		go func() {
			done <- rl.run(func() (closeCode, string) { return closeInternalError, "browser connection lost" })
		}()
		go func() { _, _ = io.Copy(io.Discard, browser) }() // ends when the relay closes its side

		type frame struct {
			h       header
			payload []byte
		}
		frames := make(chan frame, 4)
		go func() {
			r := bufio.NewReader(client)
			for {
				h, p, err := readFrame(r)
				if err != nil {
					close(frames)
					return
				}
				frames <- frame{h, p}
			}
		}()
		start := time.Now()
		time.Sleep(5 * time.Minute)
		if _, err := client.Write(maskedFrame(opText, `{"id":1,"method":"Page.enable"}`)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(idle - time.Second) // 1s before the restarted timer
		if _, err := client.Write(maskedFrame(opPing, "")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		select {
		case f := <-frames:
			t.Fatalf("got %+v before the idle timeout", f.h)
		default:
		}
		time.Sleep(time.Second)
		synctest.Wait()
		f, ok := <-frames
		if !ok || f.h.op != opClose {
			t.Fatalf("got %+v, ok=%t; want a close frame", f.h, ok)
		}
		code, reason, err := parseClosePayload(f.payload)
		if err != nil || code != closeNormal || reason != "idle timeout" {
			t.Errorf("close = %d %q %v; want 1000 \"idle timeout\"", code, reason, err)
		}
		if d := time.Since(start); d != 5*time.Minute+idle {
			t.Errorf("closed after %v; want %v", d, 5*time.Minute+idle)
		}
		client.Close()
		c := <-done
		if c.what != "idle timeout" || c.code != closeNormal {
			t.Errorf("end cause = %+v; want idle timeout, 1000", c)
		}
	})
}
