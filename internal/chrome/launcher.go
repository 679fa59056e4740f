package chrome

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	bb "github.com/browserd/browserd"
)

// ErrNotFound is returned by FindChrome when no Chromium binary is found.
var ErrNotFound = errors.New("chrome: no chromium binary found")

// debianBinary is the real Chromium binary behind Debian's /usr/bin/chromium shell
// wrapper, which costs about 30 ms per start and adds flags of its own (research §5).
const debianBinary = "/usr/lib/chromium/chromium"

// leanFeatures removes the headless-invisible omnibox WebUI renderer and the spare
// renderer: about 45 MiB and 80 ms less per browser (research §2). The spare renderer
// would not make a warm browser's first navigation faster either: measured in
// docs/PERFORMANCE.md, "Warm browsers".
var leanFeatures = []string{"WebUIOmniboxPopup", "WebUIOmniboxAimPopup", spareRendererFeature}

// spareRendererFeature is the Chromium feature that keeps a renderer process started
// ahead of the navigation that will need one.
const spareRendererFeature = "SpareRendererForSitePerProcess"

// headlessFrameHeight is the height of the browser frame that new headless mode
// subtracts from --window-size: with --window-size=W,H a page has innerHeight H-87
// (measured on Chromium 156; TestLaunch checks it). Widths below 500 are raised to 500.
const headlessFrameHeight = 87

// Config configures a Launcher.
type Config struct {
	// Path is the Chromium binary; "" looks it up (see FindChrome).
	Path string
	// RunDir is the parent of every browser's directory, e.g. <data-dir>/run. It belongs
	// to this Launcher: Reap empties it.
	RunDir string
	// ExtraArgs are flags added to every launch, before LaunchOptions.Args.
	ExtraArgs []string
	// Logger receives start and stop events; nil discards them.
	Logger *slog.Logger
	// StopGrace is how long Close waits after SIGTERM before it kills the process group [2s].
	StopGrace time.Duration
	// Nice (1–19) starts every browser through nice(1) with this niceness, which all its
	// processes and threads inherit, so that the server keeps its share of the CPU when
	// browsers take all of it (as root, CAP_SYS_NICE is dropped too: see niceCommand).
	// 0 leaves the browsers at the server's priority; so does a machine without nice(1),
	// with a warning. A LaunchOptions.Background launch starts lower still (niceness 19
	// and SCHED_IDLE) until Browser.Foreground raises it to Nice (priority.go).
	Nice int
	// Sandbox says how browsers are confined (sandbox.go); the zero value is the default.
	Sandbox SandboxConfig
	// Ports, when set, is told of every loopback port the Launcher listens on (the
	// browsers' DevTools forwarders), so that no session proxy lets a browser reach one.
	Ports PortRegistry
	// Certutil is NSS's certutil, which makes the certificate database of a browser
	// that trusts custom CA certificates (nssdb.go); "" looks it up on PATH. Without it
	// such launches fail with ErrNoCertutil (CanTrustCertificates is false).
	Certutil string
}

// PortRegistry keeps the loopback ports that belong to the server itself
// (*bb.ReservedPorts).
type PortRegistry interface {
	Reserve(port uint16) (release func())
}

// Launcher starts headless Chromium browsers. It implements bb.Launcher.
type Launcher struct {
	path      string
	runDir    string
	extraArgs []string
	log       *slog.Logger
	grace     time.Duration
	nice      []string // before bubblewrap: nice -n N, or nil
	niceness  int      // Config.Nice, what Foreground raises background browsers to
	// background goes before bubblewrap for LaunchOptions.Background (priority.go);
	// nil when background browsers could not be raised again.
	background []string
	// spare keeps Chromium's spare renderer (spareRendererFeature); only the
	// measurements set it (export_test.go).
	spare   bool
	sandbox *sandbox
	ports   PortRegistry
	// certutil is Config.Certutil found, or "" (nssdb.go).
	certutil string
	nss      nssCache // the NSS databases made lately (nssdb.go)
}

var _ bb.Launcher = (*Launcher)(nil)

// New returns a Launcher for cfg. It fails when no Chromium binary is found or RunDir is
// empty.
func New(cfg Config) (*Launcher, error) {
	if cfg.RunDir == "" {
		return nil, errors.New("chrome: run dir is required")
	}
	runDir, err := filepath.Abs(cfg.RunDir)
	if err != nil {
		return nil, fmt.Errorf("chrome: run dir: %w", err)
	}
	path, err := FindChrome(cfg.Path)
	if err != nil {
		return nil, err
	}
	if cfg.Nice < 0 || cfg.Nice > 19 { // before anything is placed outside the run dir
		return nil, fmt.Errorf("chrome: nice must be 0 to 19, got %d", cfg.Nice)
	}
	sb, err := newSandbox(cfg.Sandbox)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("chrome: run dir: %w", err)
	}
	if sb.root {
		// The browsers' uids must reach their directories and the init executable.
		root, err := sandboxRoot(cfg.Sandbox.Root)
		if err != nil {
			return nil, err
		}
		own, err := sb.runDirFor(runDir, root)
		if err != nil {
			return nil, err
		}
		if own != runDir {
			sb.ownRunDir, runDir = own, own
		}
		if sb.init, err = placeInit(sb.init, root); err != nil {
			return nil, err
		}
		sb.initCopy = true
	}
	l := &Launcher{
		path:      path,
		runDir:    runDir,
		extraArgs: cfg.ExtraArgs,
		log:       cfg.Logger,
		grace:     cfg.StopGrace,
		sandbox:   sb,
		ports:     cfg.Ports,
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.grace <= 0 {
		l.grace = 2 * time.Second
	}
	if cfg.Nice > 0 {
		l.nice = niceCommand(cfg.Nice, l.log)
	}
	l.niceness = cfg.Nice
	if len(l.nice) == 0 {
		l.niceness = 0 // no nice(1): browsers run at the server's niceness
	}
	if canRaise(l.niceness) {
		l.background = backgroundCommand(true, l.log)
	} else {
		l.log.Info("background launches run at normal priority: raising them later needs CAP_SYS_NICE or RLIMIT_NICE", "nice", l.niceness)
	}
	if len(l.background) == 0 {
		l.background = nil
	}
	if l.certutil, err = FindCertutil(cfg.Certutil); err != nil {
		l.certutil = ""
		l.log.Warn("sessions cannot trust custom CA certificates", "err", err)
	}
	for _, a := range cfg.ExtraArgs {
		if confinementFlag(a) {
			l.log.Warn("chrome flag ignored: the sandbox decides it", "flag", a)
		}
	}
	return l, nil
}

// niceCommand returns what goes before bubblewrap to start a browser at niceness n:
// nice(1), or nil with a warning when it is missing. Browsers never run with the
// server's capabilities (as root they run as uids of their own), so Chromium cannot
// set its threads back to a higher priority.
func niceCommand(n int, log *slog.Logger) []string {
	nice, err := exec.LookPath("nice")
	if err != nil {
		log.Warn("nice(1) not found; browsers run at the server's priority", "err", err)
		return nil
	}
	return []string{nice, "-n", strconv.Itoa(n)}
}

// Close removes what the Launcher placed outside its run dir (the copy of the sandbox
// init, and the browsers' own run dir under SandboxConfig.Root when it is empty).
// Browsers it started are not affected; close them first.
func (l *Launcher) Close() error {
	if l.sandbox.ownRunDir != "" {
		// Empty once every browser is closed; one still running keeps it.
		_ = os.Remove(l.sandbox.ownRunDir) // ENOTEMPTY then: the next start reaps it
	}
	if !l.sandbox.initCopy {
		return nil
	}
	if err := os.Remove(l.sandbox.init); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("chrome: remove sandbox init: %w", err)
	}
	return nil
}

// Path returns the Chromium binary the Launcher executes.
func (l *Launcher) Path() string { return l.path }

// RunDir returns the absolute directory that holds every browser's directory.
func (l *Launcher) RunDir() string { return l.runDir }

// FindChrome returns the Chromium binary to execute. A path containing a slash must name
// an executable file; a bare name is looked up on PATH; "" tries chromium,
// chromium-browser and google-chrome on PATH, then /usr/bin/chromium. When the result is
// Debian's shell wrapper and the real binary exists, the real binary is returned.
func FindChrome(path string) (string, error) {
	if path != "" {
		p, err := exec.LookPath(path) // with a slash, LookPath only checks the file
		if err != nil {
			return "", fmt.Errorf("chrome: binary %q: %w", path, err)
		}
		return unwrapDebian(p), nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return unwrapDebian(p), nil
		}
	}
	return "", fmt.Errorf("looked for chromium, chromium-browser, google-chrome on PATH and /usr/bin/chromium: %w", ErrNotFound)
}

// unwrapDebian returns the real Chromium binary when p is Debian's /usr/bin/chromium
// shell wrapper (a "#!" script named chromium or chromium-browser), and p otherwise.
func unwrapDebian(p string) string {
	base := filepath.Base(p)
	if base != "chromium" && base != "chromium-browser" {
		return p
	}
	if abs, err := filepath.Abs(p); err == nil && abs == debianBinary {
		return p
	}
	f, err := os.Open(p)
	if err != nil {
		return p
	}
	head := make([]byte, 2)
	_, err = f.ReadAt(head, 0)
	f.Close() // read-only; nothing to flush
	if err != nil || string(head) != "#!" {
		return p
	}
	if fi, err := os.Stat(debianBinary); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return p
	}
	return debianBinary
}

// Launch starts a browser for opts in RunDir/<SessionID>. The process belongs to ctx:
// when ctx is cancelled the browser is closed. Launch does not wait for the browser; call
// WaitReady. With opts.Background the browser starts at the lowest CPU priority when
// CanBackground, and at Config.Nice otherwise; either way its Foreground gives it
// Config.Nice.
func (l *Launcher) Launch(ctx context.Context, opts bb.LaunchOptions) (bb.Browser, error) {
	return l.launch(ctx, opts)
}

func (l *Launcher) launch(ctx context.Context, opts bb.LaunchOptions) (*Browser, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("launch chrome: %w", err)
	}
	id := opts.SessionID
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return nil, fmt.Errorf("launch chrome: invalid session id %q", id)
	}
	if err := os.MkdirAll(l.runDir, 0o755); err != nil {
		return nil, fmt.Errorf("launch chrome: %w", err)
	}
	dir := filepath.Join(l.runDir, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("launch chrome for session %s: %w", id, err)
	}
	b, err := l.start(ctx, dir, opts)
	if err != nil {
		if rerr := os.RemoveAll(dir); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, fmt.Errorf("launch chrome for session %s: %w", id, err)
	}
	l.log.Info("chrome started", "session_id", id, "pid", b.pid)
	return b, nil
}

// start starts Chromium in dir, which exists and is empty, confined by the sandbox.
func (l *Launcher) start(ctx context.Context, dir string, opts bb.LaunchOptions) (_ *Browser, err error) {
	udd := filepath.Join(dir, "profile")
	if err := prepareProfile(udd, opts); err != nil { // profile.go
		return nil, err
	}
	for _, d := range []string{"tmp", "downloads", "uploads"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	if len(opts.CACertificates) > 0 { // before the browser's uid gets the directory
		if err := l.nss.write(ctx, l.certutil, filepath.Join(dir, "tmp"), opts.CACertificates); err != nil {
			return nil, err
		}
	}
	// Extensions are copied in: the browser sees nothing outside its directory.
	if len(opts.Extensions) > 0 {
		exts := make([]string, len(opts.Extensions))
		for i, src := range opts.Extensions {
			exts[i] = filepath.Join(dir, "extensions", strconv.Itoa(i))
			if err := os.MkdirAll(filepath.Dir(exts[i]), 0o700); err != nil {
				return nil, err
			}
			if err := copyTree(src, exts[i]); err != nil {
				return nil, fmt.Errorf("copy extension: %w", err)
			}
		}
		opts.Extensions = exts
	}
	uid := -1
	if l.sandbox.root {
		if uid, err = l.sandbox.uids.take(); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				l.sandbox.uids.put(uid)
			}
		}()
		// The browser's uid owns its directory and nothing else of the server's.
		if err := chownTree(dir, uid); err != nil {
			return nil, fmt.Errorf("give the browser its directory: %w", err)
		}
	}
	ctrl, initEnd, err := newControlPair()
	if err != nil {
		return nil, err
	}
	sb, err := l.sandbox.command(dir, l.path, initEnd, append([]string{l.path}, l.args(udd, opts)...), sandboxEnv())
	if err != nil {
		ctrl.Close()
		return nil, err
	}
	defer sb.closeFiles() // bubblewrap has its copies once started
	prefix, background := l.nice, opts.Background && l.background != nil
	if background {
		prefix = l.background
	}
	argv := append(append([]string(nil), prefix...), l.sandbox.bwrap)
	argv = append(argv, sb.args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	// A relative download path ("downloads", as Browserbase clients send it) resolves
	// against the working directory (research §5): bubblewrap's --chdir dir. (Not
	// cmd.Dir: the browser's uid may not search dir's parents; descriptors carry dir.)
	cmd.Env = sandboxEnv()
	cmd.ExtraFiles = sb.files
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if uid >= 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}
	}

	// An *os.File as Stderr keeps exec from copying in a goroutine of its own, so Wait
	// returns when the main process exits even while children still hold the pipe.
	r, w, err := os.Pipe()
	if err != nil {
		ctrl.Close()
		return nil, err
	}
	cmd.Stdout = w
	cmd.Stderr = w
	err = cmd.Start()
	w.Close() // the child has its copy; ours must go for EOF to come
	if err != nil {
		r.Close() // nothing was read yet
		ctrl.Close()
		return nil, err
	}
	log := l.log.With("session_id", opts.SessionID, "pid", cmd.Process.Pid)
	k, err := newLink(ctrl, log.Warn)
	if err != nil {
		_ = killGroup(cmd.Process.Pid, nil) // best effort: the error below says what failed
		_ = cmd.Wait()
		r.Close()
		ctrl.Close()
		return nil, err
	}
	unreserve := func() {}
	if l.ports != nil {
		unreserve = l.ports.Reserve(uint16(k.port()))
	}
	release := func() {
		unreserve()
		if uid >= 0 {
			l.sandbox.uids.put(uid)
		}
	}
	b := newBrowser(ctx, cmd, r, dir, l.grace, log, k, release)
	b.background, b.nice = background, l.niceness
	return b, nil
}

// args returns Chromium's command line after the binary: research §2 BASE + LEAN, the
// DevTools port, the profile, the window size, ExtraArgs, opts.Args and about:blank.
func (l *Launcher) args(udd string, opts bb.LaunchOptions) []string {
	args := []string{
		"--headless",
		"--disable-gpu",
		"--disable-quic",
		"--no-first-run",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		// Inside the sandbox's own network namespace: reached only through the init.
		"--remote-debugging-port=" + strconv.Itoa(sandboxDevToolsPort),
		"--remote-debugging-address=127.0.0.1",
		"--user-data-dir=" + udd,
		"--password-store=basic",
		// Flags such as --ignore-certificate-errors add a warning bar that takes 56px
		// of the page's height.
		"--disable-infobars",
		// The only way out of the namespace; <-loopback sends even localhost and
		// 127.0.0.1 to the proxy, whose rules and byte count then see everything (and
		// a page cannot reach the browser's own DevTools port).
		"--proxy-server=http://127.0.0.1:" + strconv.Itoa(sandboxEgressPort),
		"--proxy-bypass-list=<-loopback>",
	}
	if w, h := opts.Viewport.Width, opts.Viewport.Height; w > 0 && h > 0 {
		// The viewport is the page's inner size; the window is that plus the frame.
		args = append(args, "--window-size="+strconv.Itoa(w)+","+strconv.Itoa(h+headlessFrameHeight))
	}
	// Chromium keeps only the last --disable-features, so ours are merged into the caller's.
	disabled := append([]string(nil), leanFeatures...)
	if l.spare {
		disabled = slices.DeleteFunc(disabled, func(f string) bool { return f == spareRendererFeature })
	}
	for _, a := range append(append([]string(nil), l.extraArgs...), opts.Args...) {
		if confinementFlag(a) {
			continue // the sandbox decides these (sandbox.go)
		}
		if v, ok := strings.CutPrefix(a, "--disable-features="); ok {
			for f := range strings.SplitSeq(v, ",") {
				if f != "" {
					disabled = append(disabled, f)
				}
			}
			continue
		}
		args = append(args, a)
	}
	args = append(args, "--disable-features="+strings.Join(disabled, ","))
	args = append(args, profileArgs(opts)...) // profile.go
	// An explicit first URL avoids the new-tab page, which is slower (research §2).
	return append(args, "about:blank")
}

// removeSingleton removes the /tmp/org.chromium.Chromium.* directory that udd's
// SingletonSocket links to, unless it lies inside keep (which goes anyway).
func removeSingleton(udd, keep string) error {
	return removeSingletonDir(singletonDir(udd, keep))
}

// singletonDir returns the /tmp/org.chromium.Chromium.* directory that udd's
// SingletonSocket links to, or "" when there is no link or the directory lies inside keep.
func singletonDir(udd, keep string) string {
	target, err := os.Readlink(filepath.Join(udd, "SingletonSocket"))
	if err != nil {
		return "" // no link (or no profile dir): nothing outside to remove
	}
	sdir := filepath.Dir(target)
	if filepath.Base(target) != "SingletonSocket" || !filepath.IsAbs(target) ||
		!strings.HasPrefix(filepath.Base(sdir), "org.chromium.Chromium.") ||
		strings.HasPrefix(sdir, keep+string(filepath.Separator)) {
		return ""
	}
	return sdir
}

// removeSingletonDir removes a directory found by singletonDir ("" is none).
func removeSingletonDir(sdir string) error {
	if sdir == "" {
		return nil
	}
	if err := os.RemoveAll(sdir); err != nil {
		return fmt.Errorf("remove singleton dir: %w", err)
	}
	return nil
}
