package chrome

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// SandboxConfig says how browsers are confined (docs/SECURITY.md). Every browser runs
// inside bubblewrap with its own user, mount, PID, IPC, UTS and network namespaces: the
// system read-only, its own directory (profile, downloads, uploads, temp files) and its
// extensions, a minimal environment, and a network with nothing but loopback, whose
// only way out is the session proxy behind the control channel (control.go). Chromium's
// own sandbox stays on. When the server runs as root, each browser also runs as a uid
// of its own from UIDBase…UIDBase+UIDCount-1, so it can touch no file of the server's
// and no other browser's.
type SandboxConfig struct {
	// Bwrap is the bubblewrap binary; "" looks up bwrap on PATH.
	Bwrap string
	// Init is the executable started inside the sandbox as Chromium's parent, which
	// must call SandboxInit first thing; "" is this program (os.Executable).
	Init string
	// UIDBase is the first uid browsers run as when the server is root [2000000000].
	UIDBase int
	// UIDCount is how many uids there are, and so how many browsers can run at once
	// when the server is root [65536].
	UIDCount int
	// Root holds the browsers' directories when the server is root and RunDir cannot
	// be searched by other users (bubblewrap, running as the browser's uid, must reach
	// the directories it binds): Root/<hash of RunDir> [/var/tmp/browserd].
	Root string
}

// Defaults of SandboxConfig.
const (
	defaultUIDBase  = 2_000_000_000
	defaultUIDCount = 65536
)

// sandbox is a Launcher's resolved SandboxConfig.
type sandbox struct {
	bwrap string
	init  string
	root  bool // the server is root: browsers get uids of their own
	uids  *uidPool
	// initCopy says init is a copy that Launcher.Close removes (placeInit).
	initCopy bool
	// ownRunDir is the run dir made under Root (runDirFor), if any; Close removes it
	// when empty.
	ownRunDir string
}

// newSandbox checks cfg and resolves its paths.
func newSandbox(cfg SandboxConfig) (*sandbox, error) {
	bw := cfg.Bwrap
	if bw == "" {
		bw = "bwrap"
	}
	bwrap, err := exec.LookPath(bw)
	if err != nil {
		return nil, fmt.Errorf("chrome: bubblewrap is required to confine browsers (apt-get install -y bubblewrap): %w", err)
	}
	init := cfg.Init
	if init == "" {
		if init, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("chrome: sandbox init: %w", err)
		}
	}
	if init, err = filepath.Abs(init); err != nil {
		return nil, fmt.Errorf("chrome: sandbox init: %w", err)
	}
	base, count := cfg.UIDBase, cfg.UIDCount
	if base == 0 {
		base = defaultUIDBase
	}
	if count == 0 {
		count = defaultUIDCount
	}
	// bubblewrap maps the uid into the sandbox's user namespace as a signed int.
	if base < 1000 || count < 1 || int64(base)+int64(count) > 1<<31-1 {
		return nil, fmt.Errorf("chrome: sandbox uids %d+%d must lie within 1000…2147483646", base, count)
	}
	return &sandbox{bwrap: bwrap, init: init, root: os.Geteuid() == 0, uids: &uidPool{base: base, count: count, used: map[int]bool{}}}, nil
}

// runDirFor returns where the browsers' directories go for runDir: runDir itself when
// the browsers' uids can reach it (the server is not root, or every parent is
// searchable by others), else a directory of its own under root, made safely.
func (sb *sandbox) runDirFor(runDir, root string) (string, error) {
	if !sb.root || searchable(runDir) {
		return runDir, nil
	}
	sum := sha256.Sum256([]byte(runDir))
	dir := filepath.Join(root, hex.EncodeToString(sum[:8]))
	if err := safeDir(dir); err != nil {
		return "", err
	}
	if !searchable(dir) {
		return "", fmt.Errorf("chrome: sandbox run dir %s: a parent directory cannot be searched by other users; choose another SandboxConfig.Root (--sandbox-dir)", dir)
	}
	return dir, nil
}

// sandboxRoot makes root (default /var/tmp/browserd), the directory that holds what
// the browsers' uids must reach when the server is root.
func sandboxRoot(root string) (string, error) {
	if root == "" {
		root = "/var/tmp/browserd"
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	return root, safeDir(root)
}

// safeDir makes d (mode 0711) unless it exists, and checks that it is a directory, not
// a link, owned by this process's uid and writable by it alone: in a shared place such
// as /var/tmp, nobody else may have put it there or may swap its entries.
func safeDir(d string) error {
	if err := os.Mkdir(d, 0o711); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("chrome: sandbox dir: %w", err)
	}
	fi, err := os.Lstat(d)
	if err != nil {
		return fmt.Errorf("chrome: sandbox dir: %w", err)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || st == nil || int(st.Uid) != os.Geteuid() || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("chrome: sandbox dir %s must be a directory owned by uid %d and writable by it alone", d, os.Geteuid())
	}
	if err := os.Chmod(d, 0o711); err != nil {
		return fmt.Errorf("chrome: sandbox dir: %w", err)
	}
	return nil
}

// placeInit puts a copy of the init executable where the browsers' uids can reach it,
// root/init-<pid>-<n> (a hard link when it can), and removes the copies of processes
// that are gone. The Launcher's Close removes its own.
func placeInit(exe, root string) (string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return "", fmt.Errorf("chrome: sandbox init: %w", err)
	}
	for _, e := range entries {
		var pid, n int
		if _, err := fmt.Sscanf(e.Name(), "init-%d-%d", &pid, &n); err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = os.Remove(filepath.Join(root, e.Name())) // a stale copy; another try next start
		}
	}
	dst := filepath.Join(root, fmt.Sprintf("init-%d-%d", os.Getpid(), rand.Int64N(1<<62)))
	if err := os.Link(exe, dst); err == nil {
		if fi, err := os.Stat(dst); err == nil && fi.Mode().Perm()&0o005 == 0o005 {
			return dst, nil
		}
		_ = os.Remove(dst) // not readable and executable by others: copy instead
	}
	if err := copyFile(exe, dst); err != nil {
		return "", fmt.Errorf("chrome: sandbox init: %w", err)
	}
	if err := os.Chmod(dst, 0o755); err != nil {
		return "", fmt.Errorf("chrome: sandbox init: %w", err)
	}
	return dst, nil
}

// searchable reports whether dir and all its parents exist and can be searched by any
// user (the others' execute bit).
func searchable(dir string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}

// uidPool hands out the uids of running browsers, each to one browser at a time.
type uidPool struct {
	base, count int
	mu          sync.Mutex
	next        int
	used        map[int]bool
}

// take returns a free uid, preferring ones not used recently (a stopped browser's uid
// may still own files that are being removed).
func (p *uidPool) take() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range p.count {
		off := p.next
		p.next = (p.next + 1) % p.count
		if !p.used[off] {
			p.used[off] = true
			return p.base + off, nil
		}
	}
	return 0, fmt.Errorf("chrome: all %d sandbox uids are in use", p.count)
}

// put gives uid back.
func (p *uidPool) put(uid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.used, uid-p.base)
}

// etcFiles are what Chromium reads of /etc: fonts, certificates, time zone, the
// dynamic linker's cache, host lookups, and Debian's Chromium settings. Not passwd or
// group: the browser's uid is in neither, and a page has no business with the host's
// user names.
var etcFiles = []string{
	"alternatives", "ca-certificates", "chromium", "chromium.d", "fonts", "host.conf",
	"hosts", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "mime.types",
	"nsswitch.conf", "ssl", "timezone", "xdg",
}

// confinementFlag reports whether a Chromium flag would undo or bypass the sandbox:
// Chromium's own sandbox, the proxy that is the only way out, the DevTools endpoint
// and the profile are the Launcher's alone, whatever --chrome-args or a caller says.
func confinementFlag(a string) bool {
	name, _, _ := strings.Cut(a, "=")
	switch name {
	case "--no-sandbox", "--disable-setuid-sandbox", "--no-zygote", "--single-process",
		"--disable-namespace-sandbox", "--disable-seccomp-filter-sandbox", "--disable-gpu-sandbox",
		"--proxy-server", "--proxy-bypass-list", "--proxy-pac-url", "--no-proxy-server",
		"--proxy-auto-detect", "--winhttp-proxy-resolver", "--host-resolver-rules",
		"--remote-debugging-port", "--remote-debugging-address", "--remote-debugging-pipe",
		"--remote-debugging-io-pipes", "--remote-allow-origins", "--user-data-dir",
		"--utility-cmd-prefix", "--renderer-cmd-prefix", "--gpu-launcher", "--browser-subprocess-path":
		return true
	}
	return false
}

// sandboxInitPath is where the init executable appears inside the sandbox.
const sandboxInitPath = "/.browserd-init"

// sandboxed is a browser command being built: bubblewrap's arguments and the files
// its descriptors refer to (descriptor 3 is the control socket).
type sandboxed struct {
	args  []string
	files []*os.File
}

// bindFD opens path (O_PATH, no symlink at its end) and binds it at dest: descriptors
// need no search permission on path's parents for the browser's uid.
func (s *sandboxed) bindFD(flag, path, dest string) error {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open %s for the sandbox: %w", path, err)
	}
	s.files = append(s.files, os.NewFile(uintptr(fd), path))
	s.args = append(s.args, flag, strconv.Itoa(3+len(s.files)-1), dest)
	return nil
}

// closeFiles closes the descriptors once bubblewrap has them.
func (s *sandboxed) closeFiles() {
	for _, f := range s.files {
		f.Close() // O_PATH descriptors and the init's control end: nothing to flush
	}
}

// command builds the bubblewrap command that runs chromeArgs (binary first) confined
// to dir. ctrl is the init's end of the control channel.
func (sb *sandbox) command(dir, chromePath string, ctrl *os.File, chromeArgs []string, env []string) (*sandboxed, error) {
	s := &sandboxed{files: []*os.File{ctrl}}
	s.args = []string{
		"--unshare-all", "--die-with-parent", "--hostname", "browserd",
		// The init is root of the sandbox's user namespace, with the two capabilities it
		// needs: to set up the namespace's network (sandboxinit.go: onlineLink), and to
		// map its uid into the user namespace where Chromium runs as another uid,
		// without any capability.
		"--uid", "0", "--gid", "0", "--cap-add", "CAP_NET_ADMIN", "--cap-add", "CAP_SETFCAP",
		"--ro-bind", "/usr", "/usr",
	}
	// Debian's /bin, /lib… are links into /usr; elsewhere they are directories.
	for _, d := range []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"} {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
		case fi.Mode()&fs.ModeSymlink != 0:
			if target, err := os.Readlink(d); err == nil {
				s.args = append(s.args, "--symlink", target, d)
			}
		case fi.IsDir():
			s.args = append(s.args, "--ro-bind", d, d)
		}
	}
	for _, name := range etcFiles {
		p := "/etc/" + name
		s.args = append(s.args, "--ro-bind-try", p, p)
	}
	s.args = append(s.args,
		"--ro-bind-try", "/var/cache/fontconfig", "/var/cache/fontconfig",
		"--proc", "/proc", "--dev", "/dev",
		// Shared memory is RAM: bounded, like the rest of what a browser can fill.
		"--size", strconv.Itoa(1<<30), "--tmpfs", "/dev/shm",
	)
	// /tmp first: a later bind below /tmp (a run dir there) must not be hidden by it.
	// (Its mount point is then made inside the browser's own tmp dir.)
	if err := s.bindFD("--bind-fd", filepath.Join(dir, "tmp"), "/tmp"); err != nil {
		s.closeFiles()
		return nil, err
	}
	// A Chromium outside /usr (say /opt/google/chrome/chrome) brings its directory.
	if cd := filepath.Dir(chromePath); cd != "/usr" && !strings.HasPrefix(cd, "/usr/") {
		s.args = append(s.args, "--ro-bind", cd, cd)
	}
	if err := s.bindFD("--bind-fd", dir, dir); err != nil {
		s.closeFiles()
		return nil, err
	}
	if err := s.bindFD("--ro-bind-fd", sb.init, sandboxInitPath); err != nil {
		s.closeFiles()
		return nil, err
	}
	s.args = append(s.args, "--clearenv")
	for _, kv := range env {
		k, v, _ := cutEnv(kv)
		s.args = append(s.args, "--setenv", k, v)
	}
	s.args = append(s.args, "--setenv", initEnv, "1", "--chdir", dir, "--", sandboxInitPath)
	s.args = append(s.args, chromeArgs...)
	return s, nil
}

// cutEnv splits "K=V".
func cutEnv(kv string) (k, v string, ok bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

// sandboxEnv is the whole environment of a browser: nothing of the server's but the
// locale and time zone (docs/SECURITY.md: no API key, no token reaches a browser).
func sandboxEnv() []string {
	env := []string{"PATH=/usr/bin:/bin", "HOME=/tmp", "TMPDIR=/tmp", "XDG_CONFIG_HOME=/tmp/.config"}
	for _, k := range []string{"LANG", "LANGUAGE", "LC_ALL", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// chownTree gives dir and everything in it to uid, never following a link.
func chownTree(dir string, uid int) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, uid)
	})
}

// link is the server's side of a running sandbox: the control channel, the loopback
// DevTools forwarder, and where the browser's proxy connections go.
type link struct {
	ctrl *controlConn
	ln   net.Listener // 127.0.0.1:port in the server's namespace → Chromium's DevTools
	log  func(msg string, args ...any)

	mu     sync.Mutex
	egress func(net.Conn)
	closed bool
	conns  map[net.Conn]bool // forwarded DevTools connections, closed by close
	wg     sync.WaitGroup
}

// newLink starts serving ctrl: DevTools connections to ln go in, egress comes out.
func newLink(ctrl *controlConn, log func(msg string, args ...any)) (*link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("devtools forwarder: %w", err)
	}
	k := &link{ctrl: ctrl, ln: ln, log: log, conns: map[net.Conn]bool{}}
	k.wg.Go(k.forwardDevTools)
	k.wg.Go(k.receive)
	return k, nil
}

// addr is the forwarder's host:port.
func (k *link) addr() string { return k.ln.Addr().String() }

// port is the forwarder's port.
func (k *link) port() int { return k.ln.Addr().(*net.TCPAddr).Port }

// forwardDevTools passes every connection to the forwarder into the sandbox.
func (k *link) forwardDevTools() {
	for {
		c, err := k.ln.Accept()
		if err != nil {
			return // closed by close
		}
		ours, theirs, err := streamPair()
		if err != nil {
			c.Close()
			continue
		}
		err = k.ctrl.Send(msgDevTools, theirs)
		theirs.Close()
		if err != nil {
			c.Close()
			ours.Close()
			continue
		}
		k.mu.Lock()
		if k.closed {
			k.mu.Unlock()
			c.Close()
			ours.Close()
			return
		}
		k.conns[c] = true
		k.mu.Unlock()
		k.wg.Go(func() { // ends when either side closes, at the latest in close
			splice(c, ours)
			k.mu.Lock()
			delete(k.conns, c)
			k.mu.Unlock()
		})
	}
}

// receive takes the connections Chromium opens to its proxy and hands them to the
// egress handler; without one (a warm browser no session has taken) they are closed.
func (k *link) receive() {
	for {
		kind, f, err := k.ctrl.Recv()
		if err != nil {
			return // the init exited, or close
		}
		if f == nil {
			continue
		}
		if kind != msgEgress {
			f.Close()
			continue
		}
		c, err := fileConn(f)
		if err != nil {
			continue
		}
		k.mu.Lock()
		h := k.egress
		k.mu.Unlock()
		if h == nil {
			c.Close()
			continue
		}
		h(c)
	}
}

// setEgress sets where the browser's proxy connections go from now on.
func (k *link) setEgress(h func(net.Conn)) {
	k.mu.Lock()
	k.egress = h
	k.mu.Unlock()
}

// terminate asks the init to send Chromium SIGTERM.
func (k *link) terminate() error { return k.ctrl.Send(msgTerminate, nil) }

// close stops forwarding and waits for the forwarded connections to end; the browser
// must be gone already (its side of every connection is then closed).
func (k *link) close() {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return
	}
	k.closed = true
	for c := range k.conns {
		c.Close() // the client's end; splice closes the rest
	}
	k.mu.Unlock()
	k.ln.Close()   // ends forwardDevTools
	k.ctrl.Close() // ends receive
	k.wg.Wait()
}

// BareCommand returns the Chromium command line of the browser a Launcher started as
// process pid (bubblewrap's), as Chromium would run without browserd around it: the
// same binary and flags, DevTools on a free port, no proxy, and --no-sandbox when this
// process is root (Chromium's sandbox refuses root). The bench compares browserd with it.
func BareCommand(pid int) (path string, args []string, err error) {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return "", nil, fmt.Errorf("read browser command line: %w", err)
	}
	argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	i := -1 // the init after bubblewrap's "--"; its bind names the path earlier
	for j := 1; j < len(argv); j++ {
		if argv[j-1] == "--" && argv[j] == sandboxInitPath {
			i = j
			break
		}
	}
	if i < 0 || i+1 >= len(argv) {
		return "", nil, fmt.Errorf("process %d is not a sandboxed browser: %q", pid, argv)
	}
	for _, a := range argv[i+2:] {
		switch {
		case strings.HasPrefix(a, "--remote-debugging-port="):
			args = append(args, "--remote-debugging-port=0")
		case strings.HasPrefix(a, "--proxy-server="), strings.HasPrefix(a, "--proxy-bypass-list="):
		default:
			args = append(args, a)
		}
	}
	if os.Geteuid() == 0 {
		args = append([]string{"--no-sandbox", "--disable-infobars"}, args...)
	}
	return argv[i+1], args, nil
}
