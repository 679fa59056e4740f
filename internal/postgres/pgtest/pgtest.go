// Package pgtest runs a real PostgreSQL for tests: a private cluster (Debian's
// `postgresql` package: initdb and postgres from /usr/lib/postgresql/*/bin) in a temp
// dir on a free loopback port, as the `postgres` user when the test runs as root (initdb
// refuses root). Cleanup stops it, removes its directory and checks that neither the
// server process nor the directory is left.
//
// The server is a child of the test process (not daemonized by pg_ctl) with a
// parent-death signal, so that a test binary killed before its Cleanup (a -timeout
// panic, kill -9) takes its PostgreSQL with it; the next StartPrivate of any test
// removes the directories such dead test processes left (process.go).
//
// Without PostgreSQL the tests that need it skip, unless BROWSERD_REQUIRE_POSTGRES=1
// (scripts/test.sh), where they fail. With BROWSERD_TEST_POSTGRES_URL set (a URL whose
// user may create databases), tests use that server instead of starting their own, except
// those that stop and start the server (Stop, Start), which need a private one.
package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// User is the superuser of a private cluster.
const User = "browserd"

// Cluster is a running PostgreSQL server.
type Cluster struct {
	admin    string // URL of the server's "postgres" database, as a superuser
	private  bool   // started by Start: Stop and Start work
	bin      string // directory of initdb, pg_ctl, postgres
	dir      string // the cluster's temp dir: data/, log, pwfile, socket
	port     int
	password string
	cred     *syscall.Credential // the postgres user's when running as root; nil otherwise
	server   *server             // the running postgres, nil when stopped (process.go)
}

// Bin returns the directory of the newest PostgreSQL server binaries installed
// (/usr/lib/postgresql/N/bin), or "" when there is none.
func Bin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb") // a bad pattern is impossible here
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
	if len(dirs) == 0 {
		return ""
	}
	return filepath.Dir(dirs[len(dirs)-1])
}

// version is N of /usr/lib/postgresql/N/bin/initdb.
func version(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb)))) // 0 sorts first
	return n
}

// Start returns a PostgreSQL server for t: BROWSERD_TEST_POSTGRES_URL's when set, else a
// private cluster that Cleanup stops and removes. Without PostgreSQL installed it skips
// t, or fails it when BROWSERD_REQUIRE_POSTGRES=1.
func Start(t testing.TB) *Cluster {
	t.Helper()
	if u := os.Getenv("BROWSERD_TEST_POSTGRES_URL"); u != "" {
		return &Cluster{admin: u}
	}
	return StartPrivate(t)
}

// StartPrivate starts a private cluster for t, whatever BROWSERD_TEST_POSTGRES_URL says:
// for tests that stop and start the server.
func StartPrivate(t testing.TB) *Cluster {
	t.Helper()
	bin := Bin()
	if bin == "" {
		const msg = "PostgreSQL is not installed (apt-get install -y postgresql; scripts/deps.sh does)"
		if os.Getenv("BROWSERD_REQUIRE_POSTGRES") == "1" {
			t.Fatal(msg + ", and BROWSERD_REQUIRE_POSTGRES=1")
		}
		t.Skip(msg)
	}
	c := &Cluster{private: true, bin: bin, password: rand.Text()}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, initdb needs the postgres user (from the postgresql package): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid) // numeric on Linux
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	removeStale(os.TempDir())
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() { c.remove(t) })
	if err := writeOwner(dir); err != nil {
		t.Fatal(err)
	}
	if c.cred != nil {
		if err := os.Chown(dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(c.password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c.cred != nil {
		if err := os.Chown(pwfile, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := c.run("initdb", "-D", c.data(), "-U", User, "--pwfile", pwfile, "--auth", "scram-sha-256",
		"-E", "UTF8", "--locale", "C", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	// Durability is not what tests check: without fsync a cluster starts and writes
	// faster on a shared machine.
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"+
		"fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n", dir)
	f, err := os.OpenFile(filepath.Join(c.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(conf)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		t.Fatal(err)
	}
	c.Start(t)
	return c
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// run runs a PostgreSQL binary as the cluster's owner and returns its output.
func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin", "HOME=" + c.dir}
	cmd.Dir = c.dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd.CombinedOutput()
}

// Start starts the private cluster's server (again, after Stop) and waits until it
// takes connections. The first start picks a free loopback port, which later starts
// keep.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	if !c.private {
		t.Skip("stopping and starting PostgreSQL needs a private cluster (BROWSERD_TEST_POSTGRES_URL is set)")
	}
	if c.server != nil {
		t.Fatal("pgtest: Start while the server runs")
	}
	var err error
	for try := 0; try < 3; try++ { // another process may take the port meanwhile
		if c.port == 0 || try > 0 {
			if c.port, err = freePort(); err != nil {
				t.Fatal(err)
			}
		}
		if c.server, err = c.startServer(); err == nil {
			break
		}
	}
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log")) // shown as far as it exists
		t.Fatalf("start postgres: %v\n%s", err, log)
	}
	c.admin = c.URL("postgres")
}

// Stop stops the private cluster's server (fast shutdown: clients are disconnected).
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if !c.private {
		t.Skip("stopping PostgreSQL needs a private cluster (BROWSERD_TEST_POSTGRES_URL is set)")
	}
	if c.server == nil {
		t.Fatal("pgtest: Stop while the server is stopped")
	}
	if err := c.server.stop(syscall.SIGINT, time.Minute); err != nil {
		t.Fatalf("stop postgres: %v", err)
	}
	c.server = nil
}

// URL returns the URL of database db on a private cluster, with the superuser's
// password.
func (c *Cluster) URL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(User, c.password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// NewDatabase creates an empty database and returns its URL. On a shared server
// (BROWSERD_TEST_POSTGRES_URL) Cleanup drops it; a private cluster goes whole.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	name := "test_" + strings.ToLower(rand.Text())
	c.exec(t, "CREATE DATABASE "+name)
	u, err := url.Parse(c.admin)
	if err != nil {
		t.Fatalf("parse postgres URL: %v", err) // never the URL: it has a password
	}
	u.Path = "/" + name
	if !c.private {
		t.Cleanup(func() { c.exec(t, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	}
	return u.String()
}

// exec runs a statement on the server's admin database.
func (c *Cluster) exec(t testing.TB, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.admin)
	if err != nil {
		t.Fatalf("connect to postgres: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// remove stops the server if it runs, removes the cluster's directory, and checks that
// neither is left.
func (c *Cluster) remove(t testing.TB) {
	if c.server != nil {
		// Immediate shutdown: the postmaster still removes its shared memory.
		if err := c.server.stop(syscall.SIGQUIT, 10*time.Second); err != nil {
			t.Errorf("stop postgres: %v", err)
		}
		if pid := c.server.pid(); groupAlive(pid) {
			t.Errorf("processes of postgres (process group %d) still run after the cluster was stopped", pid)
		}
		c.server = nil
	}
	if err := os.RemoveAll(c.dir); err != nil {
		t.Errorf("remove the cluster: %v", err)
	}
	if _, err := os.Stat(c.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory %s is still there (%v)", c.dir, err)
	}
}

// PID returns the process id of the private cluster's server, or 0 when it is stopped.
func (c *Cluster) PID() int {
	if c.server == nil {
		return 0
	}
	return c.server.pid()
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
