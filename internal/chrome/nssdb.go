package chrome

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
