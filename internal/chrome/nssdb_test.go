package chrome

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCAPEM returns a new self-signed CA certificate named name, PEM-encoded.
func testCAPEM(t testing.TB, name string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestWriteNSSDB makes browsers' NSS databases with the real certutil, directly and
// through nssCache (a second database for the same certificates is a copy, made
// without certutil and without the first one's pkcs11.txt, which names that
// directory), and reads each back: the CA is there, trusted for TLS servers, and the
// PEM files are gone. Without certutil the error says what to install.
func TestWriteNSSDB(t *testing.T) {
	if err := writeNSSDB(t.Context(), "", t.TempDir(), [][]byte{[]byte("x")}); !errors.Is(err, ErrNoCertutil) || !strings.Contains(err.Error(), "libnss3-tools") {
		t.Errorf("writeNSSDB without certutil = %v; want ErrNoCertutil naming libnss3-tools", err)
	}
	certutil, err := FindCertutil("")
	if err != nil {
		if os.Getenv("BROWSERD_REQUIRE_CHROME") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	pems := [][]byte{testCAPEM(t, "nssdb test CA")}
	var cache nssCache
	tests := []struct {
		name     string
		write    func(home string) error
		noPKCS11 bool // a copy must not carry the first database's pkcs11.txt
	}{
		{name: "certutil", write: func(home string) error { return writeNSSDB(t.Context(), certutil, home, pems) }},
		{name: "first of cache", write: func(home string) error { return cache.write(t.Context(), certutil, home, pems) }},
		{name: "cached copy without certutil", noPKCS11: true,
			write: func(home string) error { return cache.write(t.Context(), "", home, pems) }},
	}
	for _, tt := range tests { // in order: the copy needs the cache's first write
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			if err := tt.write(home); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(certutil, "-L", "-d", "sql:"+filepath.Join(home, nssDBDir)).CombinedOutput()
			if err != nil {
				t.Fatalf("certutil -L: %v: %s", err, out)
			}
			if !strings.Contains(string(out), "browserd-ca-0") || !strings.Contains(string(out), "C,,") {
				t.Errorf("certutil -L:\n%s\nwant browserd-ca-0 trusted C,,", out)
			}
			if m, _ := filepath.Glob(filepath.Join(home, "*.pem")); len(m) != 0 {
				t.Errorf("PEM files left behind: %q", m)
			}
			if _, err := os.Stat(filepath.Join(home, nssDBDir, "pkcs11.txt")); tt.noPKCS11 && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the copy has pkcs11.txt (stat: %v)", err)
			}
		})
	}

	if err := writeNSSDB(t.Context(), certutil, t.TempDir(), [][]byte{[]byte("not a certificate")}); err == nil {
		t.Error("writeNSSDB accepted a file certutil cannot read")
	}
	if err := cache.write(t.Context(), "", t.TempDir(), pems[:0]); !errors.Is(err, ErrNoCertutil) {
		t.Errorf("another set without certutil = %v; want ErrNoCertutil", err)
	}
}

// BenchmarkWriteNSSDB measures what trusting one CA adds to a cold launch: the NSS
// database made with certutil (docs/PERFORMANCE.md, "Custom CA certificates").
func BenchmarkWriteNSSDB(b *testing.B) {
	certutil, err := FindCertutil("")
	if err != nil {
		b.Skip(err)
	}
	pems := [][]byte{testCAPEM(b, "bench CA")}
	for b.Loop() {
		if err := writeNSSDB(b.Context(), certutil, b.TempDir(), pems); err != nil {
			b.Fatal(err)
		}
	}
}
