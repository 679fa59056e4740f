package cdpproxy

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"unicode/utf8"
)

// opcode is a websocket frame opcode (RFC 6455 §5.2).
type opcode byte

const (
	opContinuation opcode = 0x0
	opText         opcode = 0x1
	opBinary       opcode = 0x2
	opClose        opcode = 0x8
	opPing         opcode = 0x9
	opPong         opcode = 0xA
)

// control reports whether o is a control opcode (close, ping, pong).
func (o opcode) control() bool { return o&0x8 != 0 }

// valid reports whether o is defined by RFC 6455; the others are reserved.
func (o opcode) valid() bool {
	switch o {
	case opContinuation, opText, opBinary, opClose, opPing, opPong:
		return true
	}
	return false
}

// closeCode is a websocket close status code (RFC 6455 §7.4).
type closeCode uint16

const (
	closeNormal          closeCode = 1000
	closeGoingAway       closeCode = 1001
	closeProtocolError   closeCode = 1002
	closeUnsupported     closeCode = 1003 // a data type the endpoint does not accept
	closeInvalidData     closeCode = 1007 // a text message that is not UTF-8
	closePolicyViolation closeCode = 1008
	closeTooBig          closeCode = 1009
	closeInternalError   closeCode = 1011
)

const (
	maxControlPayload = 125
	maxCloseReason    = maxControlPayload - 2
	maxHeaderSize     = 14 // 2 + 8 (64-bit length) + 4 (mask key)
)

// header is a parsed frame header.
type header struct {
	fin    bool
	rsv    byte // the RSV1-3 bits, in place (0x70); we negotiate no extension, so 0
	op     opcode
	masked bool
	key    [4]byte
	length int64 // payload length
	size   int   // encoded header length in bytes
}

// frameError is a protocol violation by a peer; code is the close code it earns.
type frameError struct {
	code closeCode
	msg  string
}

func (e *frameError) Error() string { return fmt.Sprintf("websocket: %s (close %d)", e.msg, e.code) }

// headerSize returns the encoded size of a header from its second byte.
func headerSize(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// parseHeader decodes a complete encoded header b (len(b) == headerSize(b[1])).
// It checks what RFC 6455 requires of every frame when no extension is negotiated;
// masking rules depend on the direction and are the caller's. Payloads longer than
// maxLen (≤0: no limit) are refused with 1009.
func parseHeader(b []byte, maxLen int64) (header, error) {
	h := header{
		fin:    b[0]&0x80 != 0,
		rsv:    b[0] & 0x70,
		op:     opcode(b[0] & 0x0f),
		masked: b[1]&0x80 != 0,
		size:   len(b),
	}
	p := 2
	switch n := b[1] & 0x7f; n {
	case 126:
		h.length = int64(binary.BigEndian.Uint16(b[2:]))
		p += 2
	case 127:
		u := binary.BigEndian.Uint64(b[2:])
		if u > math.MaxInt64 {
			return h, &frameError{closeProtocolError, "64-bit payload length has its most significant bit set"}
		}
		h.length = int64(u)
		p += 8
	default:
		h.length = int64(n)
	}
	if h.masked {
		copy(h.key[:], b[p:p+4])
	}
	switch {
	case h.rsv != 0:
		return h, &frameError{closeProtocolError, "reserved bits set without a negotiated extension"}
	case !h.op.valid():
		return h, &frameError{closeProtocolError, fmt.Sprintf("reserved opcode %#x", byte(h.op))}
	case h.op.control() && !h.fin:
		return h, &frameError{closeProtocolError, "fragmented control frame"}
	case h.op.control() && h.length > maxControlPayload:
		return h, &frameError{closeProtocolError, "control frame payload over 125 bytes"}
	case maxLen > 0 && h.length > maxLen:
		return h, &frameError{closeTooBig, fmt.Sprintf("frame of %d bytes exceeds the limit of %d", h.length, maxLen)}
	}
	return h, nil
}

// readHeader reads the next frame header from r without consuming it: it returns the
// header and its raw bytes, which stay valid until the next call on r. The caller
// forwards raw as is and then discards h.size bytes. Before r blocks for input, flush
// (if not nil) is called so that nothing waits in a write buffer meanwhile.
func readHeader(r *bufio.Reader, maxLen int64, flush func() error) (header, []byte, error) {
	if r.Buffered() < 2 && flush != nil {
		if err := flush(); err != nil {
			return header{}, nil, err
		}
	}
	b, err := r.Peek(2)
	if err != nil {
		return header{}, nil, err
	}
	n := headerSize(b[1])
	if r.Buffered() < n && flush != nil {
		if err := flush(); err != nil {
			return header{}, nil, err
		}
	}
	raw, err := r.Peek(n)
	if err != nil {
		return header{}, nil, err
	}
	h, err := parseHeader(raw, maxLen)
	return h, raw, err
}

// appendHeader appends the minimal encoding of h to dst.
func appendHeader(dst []byte, h header) []byte {
	b0 := byte(h.op) | h.rsv
	if h.fin {
		b0 |= 0x80
	}
	var b1 byte
	if h.masked {
		b1 = 0x80
	}
	switch {
	case h.length <= 125:
		dst = append(dst, b0, b1|byte(h.length))
	case h.length <= math.MaxUint16:
		dst = append(dst, b0, b1|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(h.length))
	default:
		dst = append(dst, b0, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(h.length))
	}
	if h.masked {
		dst = append(dst, h.key[:]...)
	}
	return dst
}

// mask XORs b with key, starting at position pos of the payload (RFC 6455 §5.3); it
// masks and unmasks alike. It returns the position after b, for the next call.
func mask(key [4]byte, pos int, b []byte) int {
	k := binary.LittleEndian.Uint32(key[:])
	k = bits.RotateLeft32(k, -8*(pos&3))
	k64 := uint64(k) | uint64(k)<<32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k64)
	}
	for ; i < len(b); i++ {
		b[i] ^= byte(k >> (8 * (i & 3)))
	}
	return pos + len(b)
}

// closePayload encodes a close frame's payload: the code and a reason cut to 123 bytes
// at a UTF-8 boundary.
func closePayload(code closeCode, reason string) []byte {
	if len(reason) > maxCloseReason {
		n := maxCloseReason
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return append(b, reason...)
}

// parseClosePayload decodes a close frame's payload. An empty payload has code 1005
// (no status received).
func parseClosePayload(p []byte) (closeCode, string, error) {
	switch {
	case len(p) == 0:
		return 1005, "", nil
	case len(p) == 1:
		return 0, "", &frameError{closeProtocolError, "close payload of 1 byte"}
	}
	return closeCode(binary.BigEndian.Uint16(p)), string(p[2:]), nil
}

// appendCloseFrame appends an unmasked (server to client) close frame to dst.
func appendCloseFrame(dst []byte, code closeCode, reason string) []byte {
	p := closePayload(code, reason)
	dst = appendHeader(dst, header{fin: true, op: opClose, length: int64(len(p))})
	return append(dst, p...)
}
