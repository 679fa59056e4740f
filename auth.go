package browserd

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
)

// HashAPIKey returns the SHA-256 digest under which a key is stored and looked up. Lookups
// by digest reveal nothing about the key through timing.
func HashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// NewAPIKey returns a new random API key: "bb_" and 43 base32 characters (over 200 bits).
func NewAPIKey() string { return "bb_" + rand.Text() + rand.Text()[:17] }

// EqualHash compares two digests in constant time.
func EqualHash(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// Signer makes and checks the per-session signing keys and other signed tokens. The
// server secret never leaves the server; a token names the session it is bound to.
type Signer struct {
	secret []byte
}

// NewSigner returns a Signer for a secret of at least 32 bytes.
func NewSigner(secret []byte) (*Signer, error) {
	if len(secret) < 32 {
		return nil, Errorf(CodeInternal, "signing secret must be at least 32 bytes")
	}
	return &Signer{secret: append([]byte(nil), secret...)}, nil
}

func (s *Signer) mac(purpose, msg string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// SigningKey returns the signing key of a session: its id and a MAC over it. Clients
// treat it as opaque (spec §4.1).
func (s *Signer) SigningKey(sessionID string) string {
	return sessionID + "." + s.mac("signing-key", sessionID)
}

// SessionOfSigningKey returns the session id a signing key was made for, or ok=false
// when the key was not made by this Signer. The MAC is compared in constant time.
func (s *Signer) SessionOfSigningKey(key string) (sessionID string, ok bool) {
	id, mac, found := strings.Cut(key, ".")
	if !found || !ValidID(id) {
		return "", false
	}
	want := s.mac("signing-key", id)
	if subtle.ConstantTimeCompare([]byte(mac), []byte(want)) != 1 {
		return "", false
	}
	return id, true
}

// Sign returns msg with a MAC for purpose appended ("msg.mac"); Verify checks it.
func (s *Signer) Sign(purpose, msg string) string { return msg + "." + s.mac(purpose, msg) }

// Verify returns the message of a token made by Sign for purpose, or ok=false.
func (s *Signer) Verify(purpose, token string) (msg string, ok bool) {
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return "", false
	}
	msg = token[:i]
	if subtle.ConstantTimeCompare([]byte(token[i+1:]), []byte(s.mac(purpose, msg))) != 1 {
		return "", false
	}
	return msg, true
}
