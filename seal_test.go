package browserd

import (
	"bytes"
	"testing"
)

// TestSealer: a sealed value opens with its key and additional data only, and a
// changed byte, a short value or another key does not open.
func TestSealer(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.Seal([]byte("secret"), []byte("owner-1"))
	if again := s.Seal([]byte("secret"), []byte("owner-1")); bytes.Equal(again, sealed) {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
	if got, err := s.Open(sealed, []byte("owner-1")); err != nil || string(got) != "secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other, _ := NewSealer(bytes.Repeat([]byte{8}, 32))
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	for name, open := range map[string]func() ([]byte, error){
		"other owner": func() ([]byte, error) { return s.Open(sealed, []byte("owner-2")) },
		"other key":   func() ([]byte, error) { return other.Open(sealed, []byte("owner-1")) },
		"tampered":    func() ([]byte, error) { return s.Open(tampered, []byte("owner-1")) },
		"short":       func() ([]byte, error) { return s.Open(sealed[:5], []byte("owner-1")) },
	} {
		if got, err := open(); err == nil {
			t.Errorf("%s: Open = %q, nil; want an error", name, got)
		}
	}
	if _, err := NewSealer(key[:16]); err == nil {
		t.Error("NewSealer accepted a 16-byte key")
	}
}
