package cdpproxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseHeader(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	tests := []struct {
		name     string
		in       []byte
		maxLen   int64
		want     header
		wantCode closeCode // 0: no error
	}{
		{name: "7-bit text", in: []byte{0x81, 0x05}, want: header{fin: true, op: opText, length: 5, size: 2}},
		{name: "7-bit 125", in: []byte{0x82, 125}, want: header{fin: true, op: opBinary, length: 125, size: 2}},
		{name: "masked", in: []byte{0x81, 0x85, 1, 2, 3, 4}, want: header{fin: true, op: opText, masked: true, key: key, length: 5, size: 6}},
		{name: "16-bit", in: []byte{0x01, 126, 0x01, 0x00}, want: header{op: opText, length: 256, size: 4}},
		{name: "16-bit max", in: []byte{0x80, 126, 0xff, 0xff}, want: header{fin: true, op: opContinuation, length: 65535, size: 4}},
		{name: "64-bit", in: []byte{0x82, 127, 0, 0, 0, 0, 0, 0x80, 0, 0}, want: header{fin: true, op: opBinary, length: 8 << 20, size: 10}},
		{name: "64-bit masked", in: []byte{0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4}, want: header{fin: true, op: opBinary, masked: true, key: key, length: 1 << 32, size: 14}},
		{name: "64-bit msb", in: []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, wantCode: closeProtocolError},
		{name: "close", in: []byte{0x88, 0x02}, want: header{fin: true, op: opClose, length: 2, size: 2}},
		{name: "ping", in: []byte{0x89, 0x00}, want: header{fin: true, op: opPing, size: 2}},
		{name: "pong 125", in: []byte{0x8a, 125}, want: header{fin: true, op: opPong, length: 125, size: 2}},
		{name: "control over 125", in: []byte{0x89, 126, 0, 126}, wantCode: closeProtocolError},
		{name: "fragmented control", in: []byte{0x09, 0x00}, wantCode: closeProtocolError},
		{name: "rsv1 (deflate)", in: []byte{0xc1, 0x05}, wantCode: closeProtocolError},
		{name: "rsv3", in: []byte{0x91, 0x05}, wantCode: closeProtocolError},
		{name: "reserved data opcode", in: []byte{0x83, 0x00}, wantCode: closeProtocolError},
		{name: "reserved control opcode", in: []byte{0x8b, 0x00}, wantCode: closeProtocolError},
		{name: "oversize", in: []byte{0x82, 126, 0x04, 0x01}, maxLen: 1024, wantCode: closeTooBig},
		{name: "at limit", in: []byte{0x82, 126, 0x04, 0x00}, maxLen: 1024, want: header{fin: true, op: opBinary, length: 1024, size: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := headerSize(tt.in[1]); got != len(tt.in) {
				t.Fatalf("headerSize = %d; want %d", got, len(tt.in))
			}
			got, err := parseHeader(tt.in, tt.maxLen)
			if tt.wantCode != 0 {
				fe, ok := errors.AsType[*frameError](err)
				if !ok || fe.code != tt.wantCode {
					t.Fatalf("parseHeader(% x) error = %v; want close code %d", tt.in, err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseHeader(% x): %v", tt.in, err)
			}
			if diff := cmp.Diff(got, tt.want, cmp.AllowUnexported(header{})); diff != "" {
				t.Errorf("parseHeader(% x) mismatch (-got +want):\n%s", tt.in, diff)
			}
			if enc := appendHeader(nil, got); !bytes.Equal(enc, tt.in) {
				t.Errorf("appendHeader = % x; want % x", enc, tt.in)
			}
		})
	}
}

func TestReadHeaderShort(t *testing.T) {
	for _, in := range []string{"", "\x81", "\x81\xfe\x00", "\x82\x7f\x00\x00\x00", "\x81\x85\x01\x02"} {
		r := bufio.NewReader(strings.NewReader(in))
		if _, _, err := readHeader(r, 0, nil); err == nil {
			t.Errorf("readHeader(% x) succeeded; want an error", in)
		}
	}
}

func TestReadHeaderFlushesBeforeBlocking(t *testing.T) {
	flushed := 0
	r := bufio.NewReader(io.MultiReader(strings.NewReader("\x81"), strings.NewReader("\x05")))
	h, raw, err := readHeader(r, 0, func() error { flushed++; return nil })
	if err != nil || h.length != 5 || !bytes.Equal(raw, []byte{0x81, 0x05}) {
		t.Fatalf("readHeader = %+v, % x, %v", h, raw, err)
	}
	if flushed == 0 {
		t.Error("readHeader did not flush before waiting for input")
	}
}

func TestMask(t *testing.T) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	// RFC 6455 §5.7: a masked "Hello".
	got := []byte("Hello")
	mask(key, 0, got)
	if want := []byte{0x7f, 0x9f, 0x4d, 0x51, 0x58}; !bytes.Equal(got, want) {
		t.Fatalf("mask(Hello) = % x; want % x", got, want)
	}
	// Masking in pieces at any offsets equals masking at once, for every length.
	for n := range 40 {
		plain := make([]byte, n)
		for i := range plain {
			plain[i] = byte(i * 7)
		}
		whole := bytes.Clone(plain)
		mask(key, 0, whole)
		for split := 0; split <= n; split++ {
			parts := bytes.Clone(plain)
			pos := mask(key, 0, parts[:split])
			mask(key, pos, parts[split:])
			if !bytes.Equal(parts, whole) {
				t.Fatalf("n=%d split=%d: piecewise mask differs", n, split)
			}
		}
		mask(key, 0, whole)
		if !bytes.Equal(whole, plain) {
			t.Fatalf("n=%d: unmask(mask(x)) != x", n)
		}
	}
}

func TestClosePayload(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	tests := []struct {
		name       string
		code       closeCode
		reason     string
		wantReason string
	}{
		{name: "short", code: closeNormal, reason: "idle timeout", wantReason: "idle timeout"},
		{name: "empty", code: closeGoingAway, wantReason: ""},
		{name: "cut at rune boundary", code: closeInternalError, reason: long, wantReason: strings.Repeat("é", 61)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := appendCloseFrame(nil, tt.code, tt.reason)
			h, err := parseHeader(frame[:2], 0)
			if err != nil || h.op != opClose || h.masked || int(h.length) != len(frame)-2 {
				t.Fatalf("close frame header = %+v, %v", h, err)
			}
			code, reason, err := parseClosePayload(frame[2:])
			if err != nil || code != tt.code || reason != tt.wantReason {
				t.Errorf("close payload = %d %q %v; want %d %q", code, reason, err, tt.code, tt.wantReason)
			}
			if len(frame)-2 > maxControlPayload {
				t.Errorf("close payload is %d bytes; want ≤ 125", len(frame)-2)
			}
		})
	}
	if code, _, err := parseClosePayload(nil); err != nil || code != 1005 {
		t.Errorf("empty close payload = %d, %v; want 1005", code, err)
	}
	if _, _, err := parseClosePayload([]byte{3}); err == nil {
		t.Error("1-byte close payload accepted")
	}
}

// FuzzReadFrame reads frames from arbitrary bytes the way the relay does (seeds in
// testdata/fuzz/FuzzReadFrame): no input may panic, and every header that parses
// re-encodes to an equal header.
func FuzzReadFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), 16)
		w := bufio.NewWriter(io.Discard)
		flush := w.Flush
		for range 64 {
			h, raw, err := readHeader(r, 1<<20, flush)
			if err != nil {
				return
			}
			again, err := parseHeader(appendHeader(nil, h), 0)
			again.size = h.size
			if err != nil || again != h {
				t.Fatalf("header %+v re-encodes to %+v, %v", h, again, err)
			}
			if len(raw) != h.size {
				t.Fatalf("raw header is %d bytes; header says %d", len(raw), h.size)
			}
			if err := forward(w, r, h, raw, flush, peerClient, nil); err != nil {
				return
			}
		}
	})
}
