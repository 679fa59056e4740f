package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of a delivery, those of the Standard Webhooks scheme
// (https://www.standardwebhooks.com), whose whsec_ secrets the SDK documents: receivers
// can verify with any of its libraries (docs/COMPATIBILITY.md "Webhooks").
const (
	// HeaderID is the event's id: the same on every attempt, for receivers to drop
	// duplicates (delivery is at least once).
	HeaderID = "webhook-id"
	// HeaderTimestamp is when the attempt was signed, in Unix seconds.
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature holds space-separated "v1,<base64 HMAC-SHA256>" signatures of
	// id + "." + timestamp + "." + body: one per secret that is valid (two for 24 hours
	// after a rotation).
	HeaderSignature = "webhook-signature"
)

// sign returns the v1 signature of a message with a secret's key.
func sign(key []byte, id, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// signatureHeader signs a message with every secret.
func signatureHeader(secrets []string, id, timestamp string, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		k, err := secretKey(s)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sign(k, id, timestamp, body))
	}
	return strings.Join(sigs, " "), nil
}

// ParseSignatures returns the v1 signatures (their raw bytes) of a webhook-signature
// header; other versions are skipped. A header without a valid v1 signature is an error.
func ParseSignatures(h string) ([][]byte, error) {
	if len(h) > 4096 {
		return nil, errors.New("webhook signature header is too long")
	}
	var out [][]byte
	for f := range strings.FieldsSeq(h) {
		ver, sig, ok := strings.Cut(f, ",")
		if !ok || ver != "v1" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(sig)
		if err != nil || len(b) != sha256.Size {
			continue
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("no v1 signature in the webhook signature header")
	}
	return out, nil
}

// ErrSignature is Verify's answer to a delivery that is not signed with the secret.
var ErrSignature = errors.New("webhook signature does not verify")

// Verify checks a delivery as a receiver should: one of its v1 signatures is the
// secret's over id.timestamp.body, and the timestamp is within tolerance of now (a
// replay window). It is what the documentation's Node snippet does, for Go receivers
// and the tests.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := secretKey(secret)
	if err != nil {
		return err
	}
	id, ts := h.Get(HeaderID), h.Get(HeaderTimestamp)
	if id == "" || ts == "" {
		return errors.New("webhook-id or webhook-timestamp is missing")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("webhook-timestamp is not a number")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("webhook-timestamp is outside the tolerance")
	}
	sigs, err := ParseSignatures(h.Get(HeaderSignature))
	if err != nil {
		return err
	}
	want, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(sign(key, id, ts, body), "v1,")) // our own encoding
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrSignature
}
