package cdpproxy

import (
	"bytes"
	"math"
	"strconv"
)

// command is what the gateway reads of a client's CDP command: the top-level id,
// method and sessionId, with JSON escapes decoded, as Chromium reads them.
type command struct {
	id        int64
	hasID     bool   // id is a number Chromium reads as an int32
	method    []byte // decoded; valid until the scanner's next message
	sessionID []byte // decoded
	longName  bool   // method was too long to keep: no method the gateway watches
}

// Limits of what the scanner keeps of a top-level member. Longer keys and methods
// cannot be any the gateway watches (an escape shrinks at most 6 bytes to 1).
const (
	maxKeepName   = 1024
	maxKeepNumber = 64
	maxDepth      = 1000 // Chromium's JSON parser stops at 300
)

// scanState is where the scanner is in the JSON text.
type scanState uint8

const (
	sTop      scanState = iota // before the top-level object
	sKeyOrEnd                  // after '{'
	sKey                       // after ',' in an object
	sColon                     // after a key
	sObjNext                   // after a member's value: ',' or '}'
	sValOrEnd                  // after '['
	sValue                     // a value is due
	sArrNext                   // after an element: ',' or ']'
	sString                    // inside a string
	sNumber                    // inside a number
	sLiteral                   // inside true, false or null
	sEnd                       // after the top-level object
)

// Number sub-states (RFC 8259 §6).
const (
	nMinus   = iota // after '-'
	nZero           // a leading 0
	nInt            // integer digits
	nFracDot        // after '.'
	nFrac           // fraction digits
	nExpE           // after 'e'
	nExpSign        // after the exponent's sign
	nExp            // exponent digits
)

// Top-level keys Chromium knows; any other makes it refuse the message.
const (
	keyOther = iota
	keyID
	keyMethod
	keyParams
	keySessionID
)

// violationError is a client message the gateway refuses: the connection is closed
// with code and reason, and nothing of the message reaches the browser.
type violationError = frameError

// scanner reads a client's CDP message, possibly in pieces, the way Chromium's CDP
// parser will: it checks that the message is one strict JSON object (RFC 8259) of
// valid UTF-8, and keeps the top-level id, method and sessionId, decoded. Chromium's
// parser is laxer (comments, \v, invalid escapes in some places, overlong UTF-8):
// anything beyond strict JSON is refused rather than guessed at, so that what the
// gateway inspects is what the browser executes. Duplicate top-level keys are refused
// too (Chromium refuses them as well, but which one would a rewrite have to edit?).
type scanner struct {
	state scanState
	stack []byte // '{' or '[' per open container

	// The string in progress.
	key      bool  // it is an object key
	esc      uint8 // 0; 1 after '\'; 2-5 in the hex digits of \u
	need     uint8 // UTF-8 continuation bytes still due
	lo, hi   byte  // the range of the next continuation byte
	lit      string
	litPos   int
	num      uint8
	keep     *[]byte // where the current top-level value or key goes, or nil
	keepMax  int
	keepOver bool

	curKey  int
	seen    [5]bool
	keyBuf  []byte
	keyDec  []byte
	idRaw   []byte
	idNum   bool // the id was a number
	method  []byte
	session []byte
	long    bool
	decoded []byte // decoded method and sessionId
	err     *violationError
}

func (s *scanner) reset() {
	*s = scanner{stack: s.stack[:0], keyBuf: s.keyBuf[:0], keyDec: s.keyDec[:0], idRaw: s.idRaw[:0], method: s.method[:0],
		session: s.session[:0], decoded: s.decoded[:0]}
}

func (s *scanner) fail(code closeCode, msg string) {
	if s.err == nil {
		s.err = &violationError{code: code, msg: msg}
	}
}

func (s *scanner) syntax() {
	s.fail(closePolicyViolation, "client message is not a strict JSON object (RFC 8259)")
}

// write scans the next piece of the message. After an error, it does nothing.
func (s *scanner) write(p []byte) {
	for i := 0; i < len(p) && s.err == nil; {
		c := p[i]
		switch s.state {
		case sString:
			i = s.stringBytes(p, i)
			continue
		case sNumber:
			if s.numberByte(c) {
				s.keepByte(c)
				i++
				continue
			}
			if !s.numberDone() {
				s.syntax()
				return
			}
			s.valueDone()
			continue // c is not part of the number: read it again
		case sLiteral:
			if c != s.lit[s.litPos] {
				s.syntax()
				return
			}
			s.litPos++
			if s.litPos == len(s.lit) {
				s.valueDone()
			}
			i++
			continue
		}
		i++
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			continue
		}
		switch s.state {
		case sTop:
			if c != '{' {
				s.syntax()
				return
			}
			s.push(c)
			s.state = sKeyOrEnd
		case sKeyOrEnd, sKey:
			switch {
			case c == '"':
				s.startString(true)
			case c == '}' && s.state == sKeyOrEnd:
				s.pop()
			default:
				s.syntax()
			}
		case sColon:
			if c != ':' {
				s.syntax()
				return
			}
			s.state = sValue
		case sObjNext, sArrNext:
			end := byte('}')
			if s.state == sArrNext {
				end = ']'
			}
			switch {
			case c == ',' && s.state == sObjNext:
				s.state = sKey
			case c == ',':
				s.state = sValue
			case c == end:
				s.pop()
			default:
				s.syntax()
			}
		case sValOrEnd, sValue:
			if c == ']' && s.state == sValOrEnd {
				s.pop()
				continue
			}
			s.startValue(c)
		case sEnd:
			s.syntax()
		}
	}
}

// startValue begins the value whose first byte is c.
func (s *scanner) startValue(c byte) {
	top := len(s.stack) == 1 // a member of the top-level object
	s.keep = nil
	if top {
		switch s.curKey {
		case keyID:
			s.keep, s.keepMax = &s.idRaw, maxKeepNumber
		case keyMethod:
			s.keep, s.keepMax = &s.method, maxKeepName
		case keySessionID:
			s.keep, s.keepMax = &s.session, maxKeepName
		}
		s.keepOver = false
	}
	switch {
	case c == '{' || c == '[':
		s.keep = nil
		s.push(c)
		s.state = sKeyOrEnd
		if c == '[' {
			s.state = sValOrEnd
		}
	case c == '"':
		if top && s.curKey == keyID {
			s.keep = nil
		}
		s.startString(false)
	case c == '-' || (c >= '0' && c <= '9'):
		if top && s.curKey != keyID {
			s.keep = nil
		}
		if top {
			s.idNum = s.curKey == keyID
		}
		s.state = sNumber
		s.num = nInt
		switch c {
		case '-':
			s.num = nMinus
		case '0':
			s.num = nZero
		}
		s.keepByte(c)
	case c == 't' || c == 'f' || c == 'n':
		s.keep = nil
		switch c {
		case 't':
			s.lit = "true"
		case 'f':
			s.lit = "false"
		default:
			s.lit = "null"
		}
		s.litPos = 1
		s.state = sLiteral
	default:
		s.syntax()
	}
}

func (s *scanner) push(c byte) {
	if len(s.stack) >= maxDepth {
		s.fail(closePolicyViolation, "client message is nested too deeply")
		return
	}
	s.stack = append(s.stack, c)
}

func (s *scanner) pop() {
	s.stack = s.stack[:len(s.stack)-1]
	s.valueDone()
}

// valueDone moves past a complete value.
func (s *scanner) valueDone() {
	switch {
	case len(s.stack) == 0:
		s.state = sEnd
	case s.stack[len(s.stack)-1] == '{':
		s.state = sObjNext
	default:
		s.state = sArrNext
	}
	s.keep = nil
}

func (s *scanner) startString(key bool) {
	s.state, s.key, s.esc, s.need = sString, key, 0, 0
	if key {
		s.keep = nil
		if len(s.stack) == 1 {
			s.keyBuf = s.keyBuf[:0]
			s.keep, s.keepMax, s.keepOver = &s.keyBuf, maxKeepName, false
		}
	}
}

// keepByte keeps c when the current value is kept.
func (s *scanner) keepByte(c byte) {
	if s.keep == nil {
		return
	}
	if len(*s.keep) >= s.keepMax {
		s.keepOver = true
		return
	}
	*s.keep = append(*s.keep, c)
}

func (s *scanner) keepBytes(b []byte) {
	if s.keep == nil || len(b) == 0 {
		return
	}
	if room := s.keepMax - len(*s.keep); len(b) > room {
		b = b[:max(room, 0)]
		s.keepOver = true
	}
	*s.keep = append(*s.keep, b...)
}

// stringBytes scans string contents from p[i] and returns where it stopped.
func (s *scanner) stringBytes(p []byte, i int) int {
	for i < len(p) {
		if s.esc == 0 && s.need == 0 {
			j := i
			for j < len(p) {
				if c := p[j]; c == '"' || c == '\\' || c < 0x20 || c >= 0x80 {
					break
				}
				j++
			}
			s.keepBytes(p[i:j])
			i = j
			if i == len(p) {
				return i
			}
		}
		c := p[i]
		i++
		switch {
		case s.need > 0:
			if c < s.lo || c > s.hi {
				s.fail(closeInvalidData, "client message is not valid UTF-8")
				return i
			}
			s.need--
			s.lo, s.hi = 0x80, 0xBF
			s.keepByte(c)
		case s.esc == 1:
			switch c {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.esc = 0
			case 'u':
				s.esc = 2
			default:
				s.syntax()
				return i
			}
			s.keepByte(c)
		case s.esc >= 2:
			if !isHex(c) {
				s.syntax()
				return i
			}
			s.esc++
			if s.esc == 6 {
				s.esc = 0
			}
			s.keepByte(c)
		case c == '"':
			s.stringDone()
			return i
		case c == '\\':
			s.esc = 1
			s.keepByte(c)
		case c < 0x20:
			s.syntax()
			return i
		default: // the first byte of a UTF-8 sequence (RFC 3629 §4)
			s.lo, s.hi = 0x80, 0xBF
			switch {
			case c >= 0xC2 && c <= 0xDF:
				s.need = 1
			case c == 0xE0:
				s.need, s.lo = 2, 0xA0
			case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
				s.need = 2
			case c == 0xED:
				s.need, s.hi = 2, 0x9F
			case c == 0xF0:
				s.need, s.lo = 3, 0x90
			case c >= 0xF1 && c <= 0xF3:
				s.need = 3
			case c == 0xF4:
				s.need, s.hi = 3, 0x8F
			default:
				s.fail(closeInvalidData, "client message is not valid UTF-8")
				return i
			}
			s.keepByte(c)
		}
	}
	return i
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// stringDone ends a string: a top-level key says which member follows.
func (s *scanner) stringDone() {
	if !s.key {
		if len(s.stack) == 1 && s.curKey == keyMethod {
			s.long = s.keepOver
		}
		s.valueDone()
		return
	}
	s.state = sColon
	if len(s.stack) != 1 {
		return
	}
	s.curKey = keyOther
	if !s.keepOver {
		k := s.keyBuf
		if bytes.IndexByte(k, '\\') >= 0 {
			s.keyDec = unescape(k, s.keyDec[:0])
			k = s.keyDec
		}
		switch string(k) {
		case "id":
			s.curKey = keyID
		case "method":
			s.curKey = keyMethod
		case "params":
			s.curKey = keyParams
		case "sessionId":
			s.curKey = keySessionID
		}
	}
	if s.curKey != keyOther {
		if s.seen[s.curKey] {
			s.fail(closePolicyViolation, "client message has a top-level key twice")
			return
		}
		s.seen[s.curKey] = true
	}
}

func (s *scanner) numberByte(c byte) bool {
	digit := c >= '0' && c <= '9'
	switch s.num {
	case nMinus:
		if c == '0' {
			s.num = nZero
			return true
		}
		if digit {
			s.num = nInt
		}
		return digit
	case nZero, nInt:
		switch {
		case digit && s.num == nInt:
			return true
		case c == '.':
			s.num = nFracDot
			return true
		case c == 'e' || c == 'E':
			s.num = nExpE
			return true
		}
		return false
	case nFracDot, nFrac:
		if digit {
			s.num = nFrac
			return true
		}
		if (c == 'e' || c == 'E') && s.num == nFrac {
			s.num = nExpE
			return true
		}
		return false
	case nExpE:
		if c == '+' || c == '-' {
			s.num = nExpSign
			return true
		}
		if digit {
			s.num = nExp
		}
		return digit
	default: // nExpSign, nExp
		if digit {
			s.num = nExp
		}
		return digit
	}
}

func (s *scanner) numberDone() bool {
	switch s.num {
	case nZero, nInt, nFrac, nExp:
		return true
	}
	return false
}

// finish ends the message and returns what was read of it, or the violation.
func (s *scanner) finish() (command, *violationError) {
	if s.err == nil && s.state != sEnd {
		s.fail(closePolicyViolation, "client message is not a complete JSON object")
	}
	if s.err != nil {
		return command{}, s.err
	}
	var cmd command
	if s.seen[keyID] && s.idNum && len(s.idRaw) <= maxKeepNumber {
		// Chromium reads a number as a double and takes it as the id when it is an int32.
		if f, err := strconv.ParseFloat(string(s.idRaw), 64); err == nil && f == math.Trunc(f) && f >= math.MinInt32 && f <= math.MaxInt32 {
			cmd.id, cmd.hasID = int64(f), true
		}
	}
	cmd.longName = s.long
	s.decoded = s.decoded[:0]
	if s.seen[keyMethod] {
		s.decoded = unescape(s.method, s.decoded)
		cmd.method = s.decoded[:len(s.decoded):len(s.decoded)]
	}
	if s.seen[keySessionID] {
		n := len(s.decoded)
		s.decoded = unescape(s.session, s.decoded)
		cmd.sessionID = s.decoded[n:]
	}
	return cmd, nil
}

// scanCommand scans one complete client message.
func scanCommand(b []byte) (command, *violationError) {
	var s scanner
	s.write(b)
	return s.finish()
}
