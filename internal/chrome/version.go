package chrome

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// versionTimeout bounds `chromium --version`, which prints and exits well within a
// second: a binary that takes longer is not a usable browser.
const versionTimeout = 10 * time.Second

// Version runs `path --version` and returns the first line it prints, such as
// "Chromium 156.0.8078.108 built on Debian 13.1". Readiness shows it, the bench
// reports it, and VersionNumber takes the user agent's version from it. The error
// carries the first line the binary wrote to stderr.
func Version(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		if ee, ok := errors.AsType[*exec.ExitError](err); ok && len(ee.Stderr) > 0 {
			err = fmt.Errorf("%w: %s", err, firstLine(string(ee.Stderr)))
		}
		return "", fmt.Errorf("%s --version: %w", path, err)
	}
	return firstLine(string(out)), nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

var versionRE = regexp.MustCompile(`\b(\d+\.\d+\.\d+\.\d+)\b`)

// VersionNumber returns the four-part version (156.0.8078.108) in what Version
// returned, or "" when there is none.
func VersionNumber(version string) string {
	m := versionRE.FindStringSubmatch(version)
	if m == nil {
		return ""
	}
	return m[1]
}
