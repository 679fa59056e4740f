package browserd

import (
	"context"
	"fmt"
	"net"
	"slices"
)

// LaunchOptions are the options a browser is launched with. Two launches with equal
// options give interchangeable browsers, which is what lets a warm pool hand one out.
type LaunchOptions struct {
	// SessionID names the launch; its files live under a directory of its own.
	SessionID string
	Viewport  Viewport
	// Args are extra command-line flags (proxy, extensions, …).
	Args []string
	// Profile, when set, is a directory that becomes the browser's user-data-dir (moved
	// into place, or copied across file systems): the saved state of a context. The
	// browser also restores the session cookies saved in it (context.go).
	Profile string
	// Extensions are directories of unpacked extensions to load (extension.go).
	Extensions []string
	// CACertificates are PEM CA certificates the browser trusts beyond the system's
	// (proxySettings.caCertificates, certificate.go); internal/chrome puts them in the
	// browser's own NSS database.
	CACertificates [][]byte
	// Files are made just before the launch and set Profile and Extensions: a context's
	// profile, an extension. Unlike a path, they can be made again, so the warm pool can
	// launch a browser with the same files ahead of the next create that needs them.
	Files []LaunchFiles
	// Background launches the browser at the lowest CPU priority, below live sessions'
	// browsers: a warm-pool refill must not compete with the sessions it serves. The
	// browser implements Foregrounder when the launcher can raise it again; a launcher
	// that cannot ignores the option.
	Background bool
}

// LaunchFiles are files a launch needs beyond its flags (a context's profile, an
// extension), made on demand: once for a cold launch, and again for each warm browser
// the pool launches ahead of a create that will need the same files.
type LaunchFiles struct {
	// Key names the files ("context <id>", "extension <id>"): launches with equal flags
	// and equal file keys and versions give interchangeable browsers.
	Key string
	// Version changes whenever the content behind Key does (a context's snapshot).
	Version string
	// Make lays the files out in a new directory of its own and returns what it made,
	// and a cleanup that removes it (nil for none). The launcher moves or copies them
	// into the browser's own directory, so cleanup may run as soon as Launch returned.
	Make func(ctx context.Context) (MadeFiles, func(), error)
}

// MadeFiles are what one LaunchFiles.Make made.
type MadeFiles struct {
	// Profile is a profile directory ("" for none); at most one per launch.
	Profile string
	// Extensions are directories of unpacked extensions.
	Extensions []string
	// CACertificates are PEM CA certificates to trust (LaunchOptions.CACertificates).
	CACertificates [][]byte
}

// Foregrounder is implemented by a browser launched with LaunchOptions.Background that
// can be raised to the priority of a session's browser when a session takes it.
type Foregrounder interface {
	// Foreground moves every process and thread of the browser, and those it starts
	// later (renderers), to the priority a browser launched without Background has.
	Foreground() error
}

// ProfileBrowser is a Browser that can stop and leave its profile on disk, so that a
// context can be saved from it after every process is gone (cookies reach the disk only
// then) and before Close removes its files. internal/chrome's Browser implements it.
type ProfileBrowser interface {
	Browser
	// Stop stops the browser like Close but keeps its files; Close removes them.
	Stop(ctx context.Context) error
	// ProfileDir is the user-data-dir.
	ProfileDir() string
}

// Launcher starts browsers. internal/chrome implements it with real Chromium.
type Launcher interface {
	// Launch starts a browser. The process belongs to ctx's owner, never to a request:
	// pass a long-lived context; use Browser.WaitReady to bound the wait.
	Launch(ctx context.Context, opts LaunchOptions) (Browser, error)
	// Reap kills the browsers and removes the files an earlier run of this node left
	// behind (after a crash or kill -9). It is called once at start-up, before any launch.
	Reap(ctx context.Context) (killed int, err error)
}

// Browser is one running browser process tree.
type Browser interface {
	// WaitReady waits until the browser accepts CDP connections and has one open page.
	WaitReady(ctx context.Context) error
	// PID is the main process id; its process group holds every child.
	PID() int
	// DevToolsURL is the browser-level CDP websocket URL (ws://127.0.0.1:port/devtools/browser/…).
	DevToolsURL() string
	// Pages returns the open tabs, the most recently activated first (what
	// GET /v1/sessions/{id}/debug lists).
	Pages(ctx context.Context) ([]LivePage, error)
	// Dir is the browser's own directory (user data, downloads, temp files).
	Dir() string
	// Exited is closed when the main process has exited, for whatever reason.
	Exited() <-chan struct{}
	// Close stops the browser (a graceful stop, then SIGKILL of the process group after a
	// grace period), waits for it, and removes its files. It is safe to call more than once.
	Close(ctx context.Context) error
	// SetEgress sets where the browser's network connections go: each connection the
	// browser opens to the outside is handed to h (its session's proxy). A browser has
	// no network before the first call, or with nil (docs/SECURITY.md).
	SetEgress(h func(net.Conn))
}

// makeFiles makes opts' Files and returns opts with their profile and extensions set,
// and a cleanup that removes what was made. At most one file set may hold a profile.
func makeFiles(ctx context.Context, opts LaunchOptions) (LaunchOptions, func(), error) {
	var cleanups []func()
	cleanup := func() {
		for _, c := range cleanups {
			c()
		}
	}
	opts.Extensions = slices.Clone(opts.Extensions)
	opts.CACertificates = slices.Clone(opts.CACertificates)
	for _, f := range opts.Files {
		made, done, err := f.Make(ctx)
		if done != nil {
			cleanups = append(cleanups, done)
		}
		if err != nil {
			cleanup()
			return opts, func() {}, fmt.Errorf("make %s: %w", f.Key, err)
		}
		if made.Profile != "" {
			if opts.Profile != "" {
				cleanup()
				return opts, func() {}, fmt.Errorf("make %s: a second profile for one launch", f.Key)
			}
			opts.Profile = made.Profile
		}
		opts.Extensions = append(opts.Extensions, made.Extensions...)
		opts.CACertificates = append(opts.CACertificates, made.CACertificates...)
	}
	return opts, cleanup, nil
}
