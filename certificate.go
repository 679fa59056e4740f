package browserd

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"
)

// Certificate is a CA certificate a project uploaded (`/v1/certificates`, spec §6.11,
// docs/COMPATIBILITY.md): the sessions of that project that name it in
// proxySettings.caCertificates trust it, in their browser and in their proxy's TLS to
// https upstream proxies. Nothing else trusts it: not another project's sessions, not
// the server.
type Certificate struct {
	ID        string
	ProjectID string
	CreatedAt time.Time
	UpdatedAt time.Time
	// PEM is the certificate alone, encoded again from its parsed DER: one CERTIFICATE
	// block and nothing of the upload around it (ParseCACertificate).
	PEM []byte
}

// CertificateStore keeps uploaded CA certificates. Implementations pass
// internal/storetest. The PEM is kept in the record itself: it is at most
// MaxCertificateSize bytes (a CA certificate is usually under 2 KiB), and a session
// create reads it with the record, from whichever node of a cluster serves it.
type CertificateStore interface {
	// CreateCertificate inserts c unless its project already has limit certificates
	// (CodeLimit, NoRetry), counting and inserting in one transaction so that racing
	// uploads cannot pass the limit. An unknown project is CodeNotFound, an existing id
	// CodeConflict.
	CreateCertificate(ctx context.Context, c *Certificate, limit int) error
	// Certificate returns a certificate by id, or a CodeNotFound error.
	Certificate(ctx context.Context, id string) (*Certificate, error)
	// Certificates returns a project's certificates, oldest first.
	Certificates(ctx context.Context, projectID string) ([]*Certificate, error)
	// DeleteCertificate deletes a certificate and returns it as it was, or CodeNotFound.
	DeleteCertificate(ctx context.Context, id string) (*Certificate, error)
}

// Limits of certificates (docs/COMPATIBILITY.md). A CA certificate is a few KiB; the
// limits keep a project from filling the database or slowing its sessions' launches
// (each trusted certificate is added to the browser's certificate database).
const (
	// MaxCertificateSize is the largest upload accepted, in bytes.
	MaxCertificateSize = 64 << 10
	// MaxCertificates is how many certificates a project may keep.
	MaxCertificates = 100
	// MaxSessionCertificates is how many certificates one session may name.
	MaxSessionCertificates = 20
)

// CertificateLimitError is the error of an upload to a project that already keeps
// limit certificates.
func CertificateLimitError(limit int) *Error {
	return &Error{Code: CodeLimit, NoRetry: true, Message: fmt.Sprintf(
		"the project already has %d certificates, the most it may keep; delete one first", limit)}
}

// ParseCACertificate checks an uploaded file and returns the CA certificate it holds,
// re-encoded as one PEM block. The file is one PEM CERTIFICATE block (text around it
// is allowed, as openssl writes it) or one DER certificate. Everything else is a
// CodeInvalid error naming the problem: a private key (which must never be uploaded,
// and is not kept), several certificates, a certificate that is not a CA's (basic
// constraints CA:TRUE, and keyCertSign when key usage is present), one that is expired
// or not yet valid at now, an unsupported key, or a critical extension browserd does
// not know.
func ParseCACertificate(data []byte, now time.Time) (*x509.Certificate, []byte, error) {
	if len(data) == 0 {
		return nil, nil, Errorf(CodeInvalid, "the file is empty; upload a PEM CA certificate")
	}
	if len(data) > MaxCertificateSize {
		return nil, nil, Errorf(CodeTooLarge, "the certificate file must not be larger than %d bytes", MaxCertificateSize)
	}
	der, err := certificateDER(data)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, Errorf(CodeInvalid, "the certificate could not be parsed: %s", cleanReason(err.Error()))
	}
	if err := checkCA(cert, now); err != nil {
		return nil, nil, err
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), nil
}

// certificateDER returns the DER of the one certificate in data.
func certificateDER(data []byte) ([]byte, error) {
	var der []byte
	rest := data
	found := false
	for {
		block, r := pem.Decode(rest)
		if block == nil {
			break
		}
		found = true
		rest = r
		switch {
		case strings.Contains(block.Type, "PRIVATE KEY"):
			return nil, Errorf(CodeInvalid, "the file holds a private key (%s): never upload a private key, only the CA's certificate", block.Type)
		case block.Type == "CERTIFICATE":
			if der != nil {
				return nil, Errorf(CodeInvalid, "the file holds more than one certificate; upload one CA certificate per file")
			}
			der = block.Bytes
		default:
			return nil, Errorf(CodeInvalid, "the file holds a PEM block of type %q; upload one PEM CERTIFICATE block", cleanReason(block.Type))
		}
	}
	if found {
		if der == nil {
			return nil, Errorf(CodeInvalid, "the file holds no CERTIFICATE block")
		}
		return der, nil
	}
	// No PEM: a DER certificate (a .crt or .cer file) is a SEQUENCE.
	if data[0] == 0x30 {
		return data, nil
	}
	if bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, Errorf(CodeInvalid, "the file holds a damaged PEM block; upload one PEM CERTIFICATE block")
	}
	return nil, Errorf(CodeInvalid, "the file is not a certificate; upload one PEM CERTIFICATE block")
}

// checkCA checks that cert may serve as a trust anchor at now.
func checkCA(cert *x509.Certificate, now time.Time) error {
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return Errorf(CodeInvalid, "the certificate is not a CA certificate (its basic constraints lack CA:TRUE); upload the certificate of the CA that signed the server's")
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return Errorf(CodeInvalid, "the certificate is not a CA certificate (its key usage lacks keyCertSign)")
	}
	if now.After(cert.NotAfter) {
		return Errorf(CodeInvalid, "the certificate expired at %s", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(cert.NotBefore) {
		return Errorf(CodeInvalid, "the certificate is not valid before %s", cert.NotBefore.UTC().Format(time.RFC3339))
	}
	if len(cert.UnhandledCriticalExtensions) > 0 {
		return Errorf(CodeInvalid, "the certificate has a critical extension browserd does not know (%s)", cleanReason(cert.UnhandledCriticalExtensions[0].String()))
	}
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return Errorf(CodeInvalid, "the certificate's RSA key has %d bits; browsers refuse fewer than 2048", k.N.BitLen())
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return Errorf(CodeInvalid, "the certificate's key type is not supported (RSA, ECDSA or Ed25519)")
	}
	return nil
}

// cleanReason bounds a text from the upload or a parser before it goes in a message.
func cleanReason(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// CertificateFilesKey is the bb.LaunchFiles key of a certificate a browser trusts:
// the warm pool keeps browsers per set of them, and Manager.FilesGone with this key
// closes the warm browsers that trust it.
func CertificateFilesKey(id string) string { return "certificate " + id }
