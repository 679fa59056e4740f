package browserd_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
)

// certTemplate is a CA certificate template valid around now.
func certTemplate(now time.Time) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "browserd test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

// selfSigned returns the DER of tmpl signed by a new P-256 key, and the key's PKCS#8.
func selfSigned(t testing.TB, tmpl *x509.Certificate) (der, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	key, err = x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func pemOf(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }

func TestParseCACertificate(t *testing.T) {
	now := time.Now()
	ca, key := selfSigned(t, certTemplate(now))
	caPEM := pemOf("CERTIFICATE", ca)
	leafTmpl := certTemplate(now)
	leafTmpl.IsCA, leafTmpl.KeyUsage = false, x509.KeyUsageDigitalSignature
	leaf, _ := selfSigned(t, leafTmpl)
	expiredTmpl := certTemplate(now)
	expiredTmpl.NotBefore, expiredTmpl.NotAfter = now.Add(-48*time.Hour), now.Add(-24*time.Hour)
	expired, _ := selfSigned(t, expiredTmpl)
	futureTmpl := certTemplate(now)
	futureTmpl.NotBefore, futureTmpl.NotAfter = now.Add(24*time.Hour), now.Add(48*time.Hour)
	future, _ := selfSigned(t, futureTmpl)
	noSignTmpl := certTemplate(now)
	noSignTmpl.KeyUsage = x509.KeyUsageDigitalSignature
	noSign, _ := selfSigned(t, noSignTmpl)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weak, err := x509.CreateCertificate(rand.Reader, certTemplate(now), certTemplate(now), &rsaKey.PublicKey, rsaKey)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		in       []byte
		wantCode bb.ErrorCode // "" for success
		wantMsg  string       // a part of the message
	}{
		{name: "pem", in: caPEM},
		{name: "pem with text around", in: append(append([]byte("subject=CN = test\n"), caPEM...), "trailer\n"...)},
		{name: "der", in: ca},
		{name: "empty", in: nil, wantCode: bb.CodeInvalid, wantMsg: "empty"},
		{name: "garbage", in: []byte("hello, world"), wantCode: bb.CodeInvalid, wantMsg: "not a certificate"},
		{name: "der garbage", in: []byte{0x30, 0x03, 0x01, 0x02}, wantCode: bb.CodeInvalid, wantMsg: "could not be parsed"},
		{name: "damaged pem", in: []byte("-----BEGIN CERTIFICATE-----\n!!!\n"), wantCode: bb.CodeInvalid, wantMsg: "damaged"},
		{name: "private key alone", in: pemOf("PRIVATE KEY", key), wantCode: bb.CodeInvalid, wantMsg: "never upload a private key"},
		{name: "certificate and key", in: append(caPEM, pemOf("EC PRIVATE KEY", key)...), wantCode: bb.CodeInvalid, wantMsg: "private key"},
		{name: "key before certificate", in: append(pemOf("RSA PRIVATE KEY", key), caPEM...), wantCode: bb.CodeInvalid, wantMsg: "private key"},
		{name: "two certificates", in: append(caPEM, caPEM...), wantCode: bb.CodeInvalid, wantMsg: "more than one"},
		{name: "request", in: pemOf("CERTIFICATE REQUEST", ca), wantCode: bb.CodeInvalid, wantMsg: "CERTIFICATE REQUEST"},
		{name: "leaf", in: pemOf("CERTIFICATE", leaf), wantCode: bb.CodeInvalid, wantMsg: "not a CA certificate"},
		{name: "no keyCertSign", in: pemOf("CERTIFICATE", noSign), wantCode: bb.CodeInvalid, wantMsg: "keyCertSign"},
		{name: "expired", in: pemOf("CERTIFICATE", expired), wantCode: bb.CodeInvalid, wantMsg: "expired"},
		{name: "not yet valid", in: pemOf("CERTIFICATE", future), wantCode: bb.CodeInvalid, wantMsg: "not valid before"},
		{name: "weak rsa", in: pemOf("CERTIFICATE", weak), wantCode: bb.CodeInvalid, wantMsg: "1024 bits"},
		{name: "too large", in: bytes.Repeat([]byte("a"), bb.MaxCertificateSize+1), wantCode: bb.CodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, out, err := bb.ParseCACertificate(tt.in, now)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("ParseCACertificate: %v", err)
				}
				if !bytes.Equal(cert.Raw, ca) || !bytes.Equal(out, caPEM) {
					t.Errorf("ParseCACertificate = %q; want the certificate alone, %q", out, caPEM)
				}
				return
			}
			if bb.CodeOf(err) != tt.wantCode || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("ParseCACertificate = %v (code %q); want code %q and a message with %q", err, bb.CodeOf(err), tt.wantCode, tt.wantMsg)
			}
			if out != nil {
				t.Errorf("ParseCACertificate returned PEM %q with an error", out)
			}
		})
	}
}

// FuzzParseCACertificate checks that no upload panics, that every refusal is a 4xx
// error, and that what is accepted is one CERTIFICATE block of a CA and nothing else
// (never a private key).
func FuzzParseCACertificate(f *testing.F) {
	now := time.Now()
	ca, key := selfSigned(f, certTemplate(now))
	f.Add(pemOf("CERTIFICATE", ca))
	f.Add(ca)
	f.Add(append(pemOf("CERTIFICATE", ca), pemOf("PRIVATE KEY", key)...))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{0x30, 0x82, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		cert, out, err := bb.ParseCACertificate(data, now)
		if err != nil {
			if c := bb.CodeOf(err); c != bb.CodeInvalid && c != bb.CodeTooLarge {
				t.Fatalf("ParseCACertificate(%q) = %v; want a 400 or 413", data, err)
			}
			return
		}
		if !cert.IsCA || bytes.Contains(out, []byte("PRIVATE")) {
			t.Fatalf("ParseCACertificate(%q) accepted %q", data, out)
		}
		block, rest := pem.Decode(out)
		if block == nil || block.Type != "CERTIFICATE" || len(rest) != 0 || !bytes.Equal(block.Bytes, cert.Raw) {
			t.Fatalf("ParseCACertificate(%q) = %q; want one CERTIFICATE block", data, out)
		}
	})
}

func TestDecodeCACertificates(t *testing.T) {
	ids := make([]string, bb.MaxSessionCertificates+1)
	for i := range ids {
		ids[i] = `"` + strings.Repeat("a", i+1) + `"`
	}
	many := "[" + strings.Join(ids, ",") + "]"
	tests := []struct {
		name, body string
		want       []string
		wantErr    bool
	}{
		{name: "absent", body: `{}`},
		{name: "empty", body: `{"proxySettings":{"caCertificates":[]}}`},
		{name: "sorted, without duplicates", body: `{"proxySettings":{"caCertificates":["b","a","b"]}}`, want: []string{"a", "b"}},
		{name: "not an array", body: `{"proxySettings":{"caCertificates":"a"}}`, wantErr: true},
		{name: "not strings", body: `{"proxySettings":{"caCertificates":[1]}}`, wantErr: true},
		{name: "empty id", body: `{"proxySettings":{"caCertificates":[" "]}}`, wantErr: true},
		{name: "too many", body: `{"proxySettings":{"caCertificates":` + many + `}}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := bb.DecodeCreateSessionRequest([]byte(tt.body))
			if (err != nil) != tt.wantErr || (err != nil && bb.CodeOf(err) != bb.CodeInvalid) {
				t.Fatalf("DecodeCreateSessionRequest(%s) = %v; want error %v (400)", tt.body, err, tt.wantErr)
			}
			if !tt.wantErr && strings.Join(req.CACertificateIDs, ",") != strings.Join(tt.want, ",") {
				t.Errorf("CACertificateIDs = %q; want %q", req.CACertificateIDs, tt.want)
			}
		})
	}
}
