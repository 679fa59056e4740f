package chrome

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	bb "github.com/browserd/browserd"
)

// prepareProfile creates the user-data-dir udd: the directory opts.Profile moved into
// place (copied when it lies on another file system), or a new empty one. It also
// checks opts.Extensions.
func prepareProfile(udd string, opts bb.LaunchOptions) error {
	for _, e := range opts.Extensions {
		// Chromium splits --load-extension at commas.
		if !filepath.IsAbs(e) || strings.ContainsAny(e, ",\x00") {
			return fmt.Errorf("extension dir %q must be an absolute path without commas", e)
		}
		if fi, err := os.Stat(filepath.Join(e, "manifest.json")); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("extension dir %q has no manifest.json", e)
		}
	}
	if opts.Profile == "" {
		return os.Mkdir(udd, 0o700)
	}
	fi, err := os.Stat(opts.Profile)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("profile %s is not a directory", opts.Profile)
	}
	err = os.Rename(opts.Profile, udd)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	if err := copyTree(opts.Profile, udd); err != nil {
		return fmt.Errorf("copy profile: %w", err)
	}
	return nil
}

// copyTree copies the directories and regular files under src to dst, which must not
// exist. Other files (symbolic links, sockets) are skipped.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.Mkdir(target, 0o700)
		case d.Type().IsRegular():
			return copyFile(path, target)
		}
		return nil
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close() // the copy error is the one to report
		return err
	}
	return out.Close()
}

// profileArgs returns the flags for opts.Profile and opts.Extensions.
//
// A context's session cookies are in its Cookies database (Chromium always writes
// them), but Chromium deletes them on start unless it restores the last session;
// --restore-last-session makes it keep them. Snapshots leave out the Sessions
// directory, so no old tab is reopened (measured on Chromium 156: one about:blank page,
// session and persistent cookies, local storage and IndexedDB all back).
//
// --load-extension works in new headless mode on Debian's Chromium 156 (research §4);
// --disable-extensions-except keeps any other extension out.
func profileArgs(opts bb.LaunchOptions) []string {
	var args []string
	if opts.Profile != "" {
		args = append(args, "--restore-last-session")
	}
	if len(opts.Extensions) > 0 {
		dirs := strings.Join(opts.Extensions, ",")
		args = append(args, "--load-extension="+dirs, "--disable-extensions-except="+dirs)
	}
	return args
}
