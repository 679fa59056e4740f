package chrome

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNoCertutil is returned by a launch that must trust CA certificates
// (LaunchOptions.CACertificates) when no certutil was found.
var ErrNoCertutil = errors.New("chrome: certutil (Debian package libnss3-tools) is not installed; it is needed to trust custom CA certificates")

// nssDBDir is where Chromium on Linux reads the user's NSS database: $HOME/.pki/nssdb
// (crypto/nss_util.cc). A browser's HOME is its /tmp (sandboxEnv), its directory's tmp.
const nssDBDir = ".pki/nssdb"

// certutilTimeout bounds each certutil run.
const certutilTimeout = 30 * time.Second

// FindCertutil returns path when it is set, else the certutil on PATH, or
// ErrNoCertutil.
func FindCertutil(path string) (string, error) {
	if path == "" {
		path = "certutil"
	}
	p, err := exec.LookPath(path)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoCertutil, err)
	}
	return p, nil
}

// nssCacheSize bounds the NSS databases kept in memory, one per set of certificates
// (each about 70 KiB).
const nssCacheSize = 32

// nssFiles are the files of an NSS database that the cache copies. pkcs11.txt is not
// one of them: it names the directory certutil was given (another browser's), and NSS
// makes it again when it is missing.
var nssFiles = []string{"cert9.db", "key4.db"}

// nssCache keeps the NSS databases made lately, by set of certificates: certutil costs
// two process starts and NSS's initialisation (100–200 ms on a loaded machine,
// docs/PERFORMANCE.md), a copy of the files well under a millisecond. The zero value is
// an empty cache.
type nssCache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte][][]byte // the contents of nssFiles
	order   [][sha256.Size]byte            // oldest first
}

// write makes the NSS database of a browser whose HOME is home, trusting pems: a copy
// of a cached one for the same certificates, else one certutil makes (writeNSSDB),
// which the cache then keeps.
func (c *nssCache) write(ctx context.Context, certutil, home string, pems [][]byte) error {
	h := sha256.New()
	for _, p := range pems {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	db := filepath.Join(home, nssDBDir)
	c.mu.Lock()
	files, ok := c.entries[key]
	c.mu.Unlock()
	if ok {
		if err := os.MkdirAll(db, 0o700); err != nil {
			return fmt.Errorf("nss database: %w", err)
		}
		for i, name := range nssFiles {
			if err := os.WriteFile(filepath.Join(db, name), files[i], 0o600); err != nil {
				return fmt.Errorf("nss database: %w", err)
			}
		}
		return nil
	}
	if err := writeNSSDB(ctx, certutil, home, pems); err != nil {
		return err
	}
	files = make([][]byte, len(nssFiles))
	for i, name := range nssFiles {
		b, err := os.ReadFile(filepath.Join(db, name))
		if err != nil {
			return nil // the database is made; it is only not cached
		}
		files[i] = b
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok {
		return nil
	}
	if c.entries == nil {
		c.entries = make(map[[sha256.Size]byte][][]byte)
	}
	if len(c.order) >= nssCacheSize {
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
	c.entries[key] = files
	c.order = append(c.order, key)
	return nil
}

// CanTrustCertificates reports whether the Launcher can make browsers trust custom CA
// certificates (LaunchOptions.CACertificates): it found certutil.
func (l *Launcher) CanTrustCertificates() bool { return l.certutil != "" }

// writeNSSDB makes the NSS database of a browser whose HOME is home, trusting pems as
// certificate authorities for TLS servers (trust "C,,") beside the system's roots,
// which Chromium keeps trusting. The PEMs were checked at upload
// (bb.ParseCACertificate); certutil runs on files only the server has written.
func writeNSSDB(ctx context.Context, certutil, home string, pems [][]byte) error {
	if certutil == "" {
		return ErrNoCertutil
	}
	db := filepath.Join(home, nssDBDir)
	if err := os.MkdirAll(db, 0o700); err != nil {
		return fmt.Errorf("nss database: %w", err)
	}
	run := func(args ...string) error {
		ctx, cancel := context.WithTimeout(ctx, certutilTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, certutil, append(args, "-d", "sql:"+db)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("certutil %s: %w: %s", args[0], err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := run("-N", "--empty-password"); err != nil {
		return fmt.Errorf("nss database: %w", err)
	}
	for i, p := range pems {
		f := filepath.Join(home, "ca-"+strconv.Itoa(i)+".pem")
		if err := os.WriteFile(f, p, 0o600); err != nil {
			return fmt.Errorf("nss database: %w", err)
		}
		err := run("-A", "-t", "C,,", "-n", "browserd-ca-"+strconv.Itoa(i), "-i", f)
		if rerr := os.Remove(f); err == nil && rerr != nil {
			err = rerr
		}
		if err != nil {
			return fmt.Errorf("nss database: %w", err)
		}
	}
	return nil
}
