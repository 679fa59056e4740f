package webhooks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of the key that seals webhook secrets at rest (AES-256).
const KeySize = 32

// SecretPrefix starts every signing secret, as the SDK documents ("prefixed whsec_")
// and the Standard Webhooks scheme has it.
const SecretPrefix = "whsec_"

// secretBytes is the size of a secret's random key.
const secretBytes = 32

// newSecret returns a fresh signing secret: whsec_ and the base64 of 32 random bytes.
func newSecret() string {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand aborts instead)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// secretKey is the HMAC key of a secret: the base64 after the prefix, decoded
// (Standard Webhooks).
func secretKey(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, errors.New("webhook secret does not start with " + SecretPrefix)
	}
	k, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(k) == 0 {
		return nil, errors.New("webhook secret is not whsec_ and base64")
	}
	return k, nil
}

// sealer encrypts secrets for the store with AES-256-GCM: a 12-byte random nonce, then
// the ciphertext and tag. The id of the webhook is the additional data, so a sealed
// secret copied to another webhook's row does not open.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("webhooks: the secret key must be %d bytes (got %d)", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(webhookID, secret string) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(secret)+s.aead.Overhead())
	_, _ = rand.Read(nonce) // never fails
	return s.aead.Seal(nonce, nonce, []byte(secret), []byte(webhookID))
}

func (s *sealer) open(webhookID string, sealed []byte) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return "", errors.New("sealed webhook secret is too short")
	}
	b, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(webhookID))
	if err != nil {
		return "", fmt.Errorf("open webhook %s secret (was the webhook key changed?): %w", webhookID, err)
	}
	return string(b), nil
}
