// Package s3test runs a real S3 server for tests: SeaweedFS's `weed server -s3` on free
// loopback ports in a temporary directory, with a static S3 identity. scripts/seaweedfs.sh
// builds the binary once into a cache directory; BROWSERD_WEED names it, or the helper
// finds it in that cache. Without it, tests skip, unless BROWSERD_REQUIRE_S3=1, when
// they fail.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/s3blob"
)

// WeedVersion is the SeaweedFS module version scripts/seaweedfs.sh builds.
const WeedVersion = "v0.0.0-20261109003541-7506e5f91cd6"

// Server is a running SeaweedFS with an S3 gateway.
type Server struct {
	// Endpoint is the S3 endpoint, http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are the static identity the server accepts.
	AccessKey, SecretKey string

	t     testing.TB
	bin   string
	dir   string
	args  []string
	mu    sync.Mutex
	cmd   *exec.Cmd
	waitc chan struct{}
	log   *os.File
}

// Binary returns the weed binary: $BROWSERD_WEED, else the cache scripts/seaweedfs.sh
// builds into. It skips the test when there is none, or fails it under
// BROWSERD_REQUIRE_S3=1.
func Binary(t testing.TB) string {
	t.Helper()
	candidates := []string{os.Getenv("BROWSERD_WEED")}
	cache := os.Getenv("BROWSERD_CACHE")
	if cache == "" {
		if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
			cache = filepath.Join(x, "browserd")
		} else if h, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(h, ".cache", "browserd")
		}
	}
	if cache != "" {
		candidates = append(candidates, filepath.Join(cache, "weed-"+WeedVersion, "weed"))
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); c != "" && err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return c
		}
	}
	msg := "no SeaweedFS weed binary (build it with `bash scripts/seaweedfs.sh`, or set BROWSERD_WEED)"
	if os.Getenv("BROWSERD_REQUIRE_S3") == "1" {
		t.Fatal(msg + "; BROWSERD_REQUIRE_S3=1")
	}
	t.Skip(msg)
	return ""
}

// Start runs a SeaweedFS server for the test and waits until its S3 gateway stores
// objects. Cleanup kills it, removes its directory and checks both are gone.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	dir, err := os.MkdirTemp("", "browserd-s3test-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, bin: bin, dir: dir, AccessKey: "browserd-" + randHex(4), SecretKey: randHex(20)}
	t.Cleanup(func() {
		pid := s.kill()
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove SeaweedFS dir: %v", err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("SeaweedFS dir %s still there: %v", dir, err)
		}
		if pid > 0 {
			if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("SeaweedFS process group %d still alive after cleanup: %v", pid, err)
			}
		}
	})
	ident := map[string]any{"identities": []any{map[string]any{
		"name":        "browserd",
		"credentials": []any{map[string]string{"accessKey": s.AccessKey, "secretKey": s.SecretKey}},
		"actions":     []string{"Admin", "Read", "List", "Tagging", "Write"},
	}}}
	b, _ := json.Marshal(ident) // plain values encode
	cfg := filepath.Join(dir, "s3.json")
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// The ports are free when picked, but another process may take one before weed
	// binds it (the test binaries run in parallel): weed then exits with "address
	// already in use", and the server starts again on other ports, in fresh dirs.
	for attempt := 1; ; attempt++ {
		if err := os.Remove(filepath.Join(dir, "weed.log")); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err) // each attempt's log alone: its failure is read from it
		}
		for _, sub := range []string{"data", "master"} {
			if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		p := freePorts(t, 8)
		s.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", p[0])
		s.args = []string{"server", "-s3", "-filer",
			"-ip=127.0.0.1", "-ip.bind=127.0.0.1",
			"-dir=" + filepath.Join(dir, "data"), "-master.dir=" + filepath.Join(dir, "master"),
			"-s3.config=" + cfg,
			"-s3.port=" + strconv.Itoa(p[0]), "-s3.port.grpc=" + strconv.Itoa(p[1]),
			"-master.port=" + strconv.Itoa(p[2]), "-master.port.grpc=" + strconv.Itoa(p[3]),
			"-volume.port=" + strconv.Itoa(p[4]), "-volume.port.grpc=" + strconv.Itoa(p[5]),
			"-filer.port=" + strconv.Itoa(p[6]), "-filer.port.grpc=" + strconv.Itoa(p[7]),
			"-filer.localSocket=" + filepath.Join(dir, "filer.sock"), "-s3.localSocket=" + filepath.Join(dir, "s3.sock"),
			"-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.iam=false",
			"-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=0",
		}
		err := s.start()
		if err == nil {
			return s
		}
		tail := s.logTail()
		if attempt < 3 && strings.Contains(tail, "address already in use") {
			t.Logf("SeaweedFS lost a port to another process (attempt %d); starting it on other ports", attempt)
			s.kill()
			continue
		}
		t.Fatalf("SeaweedFS did not become ready: %v\n%s", err, tail)
	}
}

// Restart starts the server again (after Kill) on the same ports and data, and waits
// until it stores objects.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("SeaweedFS did not become ready: %v\n%s", err, s.logTail())
	}
}

// start starts weed with s.args and waits until it stores objects.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("s3test: start while the server runs")
	}
	log, err := os.OpenFile(filepath.Join(s.dir, "weed.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start SeaweedFS: %w", err)
	}
	s.cmd, s.log, s.waitc = cmd, log, make(chan struct{})
	go func() { // ends when the process exits; kill waits for it
		_ = cmd.Wait()
		close(s.waitc)
	}()
	return s.waitReady()
}

// logTail is the end of weed's log, for a failure's message.
func (s *Server) logTail() string {
	tail, _ := os.ReadFile(filepath.Join(s.dir, "weed.log"))
	if len(tail) > 4000 {
		tail = tail[len(tail)-4000:]
	}
	return string(tail)
}

// waitReady stores and deletes a probe object until that works: the S3 gateway
// answers before the filer and the volume server are ready to write.
func (s *Server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var last error
	for {
		select {
		case <-s.waitc:
			return errors.New("weed exited")
		default:
		}
		if err := s.probe(ctx); err == nil {
			return nil
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *Server) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	loc, err := s3blob.ParseURL("s3://s3test-probe?endpoint=" + s.Endpoint)
	if err != nil {
		return err
	}
	st, err := s3blob.Open(ctx, s3blob.Config{Location: loc, AccessKey: s.AccessKey, SecretKey: s.SecretKey})
	if err != nil {
		return err
	}
	if _, err := st.Put(ctx, "probe", strings.NewReader("ready")); err != nil {
		return err
	}
	return st.DeletePrefix(ctx, "probe/") // nothing there; checks listing works
}

// Kill stops the server at once (SIGKILL of its process group), as a crash or a lost
// network would: the S3 endpoint refuses connections until Restart.
func (s *Server) Kill() {
	s.t.Helper()
	s.kill()
}

func (s *Server) kill() (pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	pid = s.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-s.waitc
	// The group's other processes (none expected) die with it; wait until it is empty.
	for i := 0; i < 100 && syscall.Kill(-pid, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	s.log.Close()
	s.cmd = nil
	return pid
}

// URL returns the --blob-store URL of a bucket on this server.
func (s *Server) URL(bucket string) string {
	return "s3://" + bucket + "?endpoint=" + s.Endpoint + "&region=us-east-1"
}

// Env returns the AWS_* variables of the server's identity, for a server under test.
func (s *Server) Env() map[string]string {
	return map[string]string{"AWS_ACCESS_KEY_ID": s.AccessKey, "AWS_SECRET_ACCESS_KEY": s.SecretKey}
}

// Store opens an s3blob.Store on a fresh bucket of this server (with the given prefix
// inside it, "" for none).
func (s *Server) Store(t testing.TB, prefix string) *s3blob.Store {
	t.Helper()
	u := "s3://b-" + strings.ToLower(randHex(6))
	if prefix != "" {
		u += "/" + prefix
	}
	loc, err := s3blob.ParseURL(u + "?endpoint=" + s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s3blob.Open(t.Context(), s3blob.Config{Location: loc, AccessKey: s.AccessKey, SecretKey: s.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

var _ bb.BlobStore = (*s3blob.Store)(nil)

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// freePorts returns n distinct free loopback ports (free when asked: another process
// may take one before weed binds it, which makes Start fail, not pass wrongly).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for len(ports) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}
