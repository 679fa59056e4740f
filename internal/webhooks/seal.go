package webhooks

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	bb "github.com/browserd/browserd"
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

// sealer encrypts secrets for the store (bb.Sealer, AES-256-GCM). The id of the webhook
// is the additional data, so a sealed secret copied to another webhook's row does not open.
type sealer struct{ s *bb.Sealer }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("webhooks: the secret key must be %d bytes (got %d)", KeySize, len(key))
	}
	s, err := bb.NewSealer(key)
	if err != nil {
		return nil, err
	}
	return &sealer{s: s}, nil
}

func (s *sealer) seal(webhookID, secret string) []byte {
	return s.s.Seal([]byte(secret), []byte(webhookID))
}

func (s *sealer) open(webhookID string, sealed []byte) (string, error) {
	b, err := s.s.Open(sealed, []byte(webhookID))
	if err != nil {
		return "", fmt.Errorf("open webhook %s secret (was the webhook key changed?): %w", webhookID, err)
	}
	return string(b), nil
}
