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

// TestWriteNSSDB makes a browser's NSS database with the real certutil and reads it
// back: the CA is there, trusted for TLS servers, and the PEM files are gone. Without
// certutil the error says what to install.
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
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nssdb test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := writeNSSDB(t.Context(), certutil, home, [][]byte{pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}); err != nil {
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
	if err := writeNSSDB(t.Context(), certutil, t.TempDir(), [][]byte{[]byte("not a certificate")}); err == nil {
		t.Error("writeNSSDB accepted a file certutil cannot read")
	}
}

// BenchmarkWriteNSSDB measures what trusting one CA adds to a cold launch: the NSS
// database made with certutil (docs/PERFORMANCE.md, "Custom CA certificates").
func BenchmarkWriteNSSDB(b *testing.B) {
	certutil, err := FindCertutil("")
	if err != nil {
		b.Skip(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	pems := [][]byte{pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	for b.Loop() {
		if err := writeNSSDB(b.Context(), certutil, b.TempDir(), pems); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNSSCache checks that a second database for the same certificates is a copy that
// certutil reads alike, without the first one's pkcs11.txt (it names that directory).
func TestNSSCache(t *testing.T) {
	certutil, err := FindCertutil("")
	if err != nil {
		if os.Getenv("BROWSERD_REQUIRE_CHROME") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cache CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pems := [][]byte{pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	var c nssCache
	first, second := t.TempDir(), t.TempDir()
	if err := c.write(t.Context(), certutil, first, pems); err != nil {
		t.Fatal(err)
	}
	// The copy needs no certutil.
	if err := c.write(t.Context(), "", second, pems); err != nil {
		t.Fatalf("cached write: %v", err)
	}
	if _, err := os.Stat(filepath.Join(second, nssDBDir, "pkcs11.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the copy has pkcs11.txt (stat: %v)", err)
	}
	out, err := exec.Command(certutil, "-L", "-d", "sql:"+filepath.Join(second, nssDBDir)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "browserd-ca-0") {
		t.Errorf("certutil -L of the copy: %v\n%s", err, out)
	}
	if err := c.write(t.Context(), "", t.TempDir(), pems[:0]); !errors.Is(err, ErrNoCertutil) {
		t.Errorf("another set without certutil = %v; want ErrNoCertutil", err)
	}
}
