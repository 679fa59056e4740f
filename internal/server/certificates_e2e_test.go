package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "browserd test CA " + t.Name()},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// serverTLS returns a TLS config with a certificate for 127.0.0.1 signed by the CA.
func (ca *testCA) serverTLS(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// httpsPageServer serves a page titled title over HTTPS with a certificate of ca.
func httpsPageServer(t *testing.T, ca *testCA, title string) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>%s</title>secure", title)
	}))
	ts.TLS = ca.serverTLS(t)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

// uploadCertificate posts data as the multipart part "file" of POST /v1/certificates.
func uploadCertificate(t testing.TB, base, key string, data []byte) (int, []byte) {
	t.Helper()
	return postFile(t, base+"/v1/certificates", key, "ca.pem", data)
}

// mustUploadCertificate uploads a CA certificate, which must be accepted, and returns
// the answer.
func mustUploadCertificate(t testing.TB, base, key string, pem []byte) apiCertificate {
	t.Helper()
	code, body := uploadCertificate(t, base, key, pem)
	if code != http.StatusOK {
		t.Fatalf("upload CA = %d %s", code, body)
	}
	var cert apiCertificate
	if err := json.Unmarshal(body, &cert); err != nil {
		t.Fatal(err)
	}
	return cert
}

type apiCertificate struct {
	ID        string `json:"id"`
	ProjectID string `json:"projectId"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
}

// TestCertificates uploads a test CA and browses an HTTPS page whose certificate it
// signed: a session without caCertificates refuses the page, one with them loads it,
// and one created after loads nothing signed by the CA unless it asks too.
func TestCertificates(t *testing.T) {
	ca := newTestCA(t)
	site := httpsPageServer(t, ca, "signed by the test CA")
	srv := startServer(t, t.TempDir(), defaultEnv())

	// Uploads: garbage, a private key and a leaf are refused, naming the problem.
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"garbage", []byte("not a certificate"), "not a certificate"},
		{"private key", append(ca.pem, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...), "never upload a private key"},
		{"leaf", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.serverTLS(t).Certificates[0].Certificate[0]}), "not a CA certificate"},
	} {
		code, body := uploadCertificate(t, srv.URL, testAPIKey, tt.data)
		if code != http.StatusBadRequest || !strings.Contains(string(body), tt.want) {
			t.Errorf("upload %s = %d %s; want 400 naming %q", tt.name, code, body, tt.want)
		}
	}
	cert := mustUploadCertificate(t, srv.URL, testAPIKey, ca.pem)
	var got apiCertificate
	callJSON(t, srv.URL, "GET", "/v1/certificates/"+cert.ID, testAPIKey, nil, http.StatusOK, &got)
	if got != cert || cert.ProjectID == "" || cert.CreatedAt == "" {
		t.Errorf("GET certificate = %+v; want %+v", got, cert)
	}
	var list []apiCertificate
	callJSON(t, srv.URL, "GET", "/v1/certificates", testAPIKey, nil, http.StatusOK, &list)
	if len(list) != 1 || list[0] != cert {
		t.Errorf("GET /v1/certificates = %+v; want [%+v]", list, cert)
	}

	// Unknown ids are 404 before anything starts.
	for _, id := range []string{"00000000-0000-4000-8000-000000000000", "nope"} {
		code, body := call(t, srv.URL, "POST", "/v1/sessions", testAPIKey,
			map[string]any{"proxySettings": map[string]any{"caCertificates": []string{cert.ID, id}}})
		if code != http.StatusNotFound || !strings.Contains(string(body), "Certificate") {
			t.Errorf("create with certificate %q = %d %s; want 404", id, code, body)
		}
	}

	browse := func(body map[string]any) string {
		sess := srv.create(t, testAPIKey, body)
		defer srv.release(t, testAPIKey, sess.ID)
		p := openPage(t, sess.ConnectURL)
		defer p.c.c.CloseNow()
		if msg := p.navigate(t, site.URL); msg != "" {
			return msg
		}
		return "title: " + p.title(t)
	}
	if got := browse(nil); !strings.Contains(got, "ERR_CERT_AUTHORITY_INVALID") {
		t.Errorf("without caCertificates: %q; want net::ERR_CERT_AUTHORITY_INVALID", got)
	}
	with := map[string]any{"proxySettings": map[string]any{"caCertificates": []string{cert.ID}}}
	if got := browse(with); got != "title: signed by the test CA" {
		t.Errorf("with caCertificates: %q; want the page", got)
	}
	if got := browse(nil); !strings.Contains(got, "ERR_CERT_AUTHORITY_INVALID") {
		t.Errorf("without caCertificates, after a session with them: %q; want net::ERR_CERT_AUTHORITY_INVALID", got)
	}
	// The second launch with the CA copies the database the first one made.
	if got := browse(with); got != "title: signed by the test CA" {
		t.Errorf("with caCertificates, again: %q; want the page", got)
	}

	// Deleted: gone from the API, and a create naming it is 404.
	if code, body := call(t, srv.URL, "DELETE", "/v1/certificates/"+cert.ID, testAPIKey, nil); code != http.StatusNoContent {
		t.Errorf("DELETE certificate = %d %s; want 204", code, body)
	}
	if code, _ := call(t, srv.URL, "GET", "/v1/certificates/"+cert.ID, testAPIKey, nil); code != http.StatusNotFound {
		t.Errorf("GET deleted certificate = %d; want 404", code)
	}
	if code, body := call(t, srv.URL, "POST", "/v1/sessions", testAPIKey, with); code != http.StatusNotFound {
		t.Errorf("create with a deleted certificate = %d %s; want 404", code, body)
	}
}

// TestCertificatesOtherProjects: a project's certificate is its own. Another project's
// key gets 404 for it (GET, DELETE, a session create naming it) and lists none of it;
// no key or a bad key gets 401 everywhere, uploads and lists included; the certificate
// is unchanged after all that.
func TestCertificatesOtherProjects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, dir, defaultEnv())
	ca := newTestCA(t)
	cert := mustUploadCertificate(t, srv.URL, testAPIKey, ca.pem)
	_, otherKey := otherProject(t, dir)

	path := "/v1/certificates/" + cert.ID
	checkOthersRefused(t, srv.URL, otherKey, []apiCall{
		{"GET", path, nil},
		{"POST", "/v1/sessions", map[string]any{"proxySettings": map[string]any{"caCertificates": []string{cert.ID}}}},
		{"DELETE", path, nil}, // last: were it allowed, the others would find nothing
	}, cert.ProjectID, cert.CreatedAt)
	for _, key := range []string{"", badAPIKey} {
		if code, body := uploadCertificate(t, srv.URL, key, ca.pem); code != http.StatusUnauthorized {
			t.Errorf("upload with key %q = %d %s; want 401", key, code, body)
		}
		if code, body := call(t, srv.URL, "GET", "/v1/certificates", key, nil); code != http.StatusUnauthorized {
			t.Errorf("list with key %q = %d %s; want 401", key, code, body)
		}
	}
	var list []apiCertificate
	callJSON(t, srv.URL, "GET", "/v1/certificates", otherKey, nil, http.StatusOK, &list)
	if len(list) != 0 {
		t.Errorf("another project lists %+v; want none", list)
	}
	var got apiCertificate
	callJSON(t, srv.URL, "GET", path, testAPIKey, nil, http.StatusOK, &got)
	if got != cert {
		t.Errorf("the certificate after the others' calls = %+v; want %+v", got, cert)
	}
	callJSON(t, srv.URL, "GET", "/v1/certificates", testAPIKey, nil, http.StatusOK, &list)
	if len(list) != 1 || list[0] != cert {
		t.Errorf("the project's list after the others' calls = %+v; want [%+v]", list, cert)
	}
}

// TestCertificatesUpstream checks that a session's CA certificates also make its proxy
// trust an https:// upstream proxy whose certificate the CA signed, and that a session
// without them refuses that upstream.
func TestCertificatesUpstream(t *testing.T) {
	ca := newTestCA(t)
	up := &testUpstream{name: "TLS-upstream"}
	up.srv = httptest.NewUnstartedServer(http.HandlerFunc(up.serve))
	up.srv.TLS = ca.serverTLS(t)
	up.srv.StartTLS()
	t.Cleanup(up.srv.Close)
	srv := startServer(t, t.TempDir(), defaultEnv())
	cert := mustUploadCertificate(t, srv.URL, testAPIKey, ca.pem)
	proxies := []map[string]any{{"type": "external", "server": up.url()}}
	browse := func(body map[string]any) string {
		sess := srv.create(t, testAPIKey, body)
		defer srv.release(t, testAPIKey, sess.ID)
		p := openPage(t, sess.ConnectURL)
		defer p.c.c.CloseNow()
		if msg := p.navigate(t, "http://page.test/"); msg != "" {
			return msg
		}
		var text string
		p.eval(t, "document.title + ' | ' + document.body.innerText", &text)
		return text
	}
	if got := browse(map[string]any{"proxies": proxies}); strings.HasPrefix(got, "TLS-upstream") {
		t.Errorf("without caCertificates the upstream was trusted: %q", got)
	} else {
		t.Logf("without caCertificates: %.200q", got)
	}
	with := map[string]any{"proxies": proxies, "proxySettings": map[string]any{"caCertificates": []string{cert.ID}}}
	if got := browse(with); !strings.HasPrefix(got, "TLS-upstream page.test") {
		t.Errorf("with caCertificates: %q; want the page through the upstream", got)
	}
	if hosts := up.seen(); !slices.Contains(hosts, "page.test") {
		t.Errorf("upstream saw %q; want page.test among them", hosts)
	}
}
