package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bb "github.com/browserd/browserd"
)

// Config is the server's configuration: defaults < BROWSERD_* environment < flags.
type Config struct {
	Addr            string
	DataDir         string
	Database        string // SQLite file; "" = <data-dir>/browserd.db
	PublicURL       string
	ChromePath      string
	ChromeArgs      string // extra Chromium flags, space-separated (deploy/Dockerfile)
	ChromeNice      int    // niceness of the browsers (0: the server's)
	Chromedriver    string
	MaxSessions     int
	MaxLaunches     int
	APIKey          string
	ConnectTimeout  time.Duration
	IdleTimeout     time.Duration
	DisconnectGrace time.Duration
	LogFormat       string
	LogLevel        string
	PoolSize        int
	PoolMemoryMiB   int
	PoolIdle        time.Duration
	MetricsToken    string         // bearer token for /metrics and /readyz details; "" = metrics off (ops.go)
	ProxyUpstream   string         // comma-separated upstream proxy URLs for proxies: true
	Artifacts       ArtifactsFlags // artifacts.go
	Sandbox         SandboxFlags   // sandbox.go
	Limits          LimitFlags     // limits.go
	// Disk limits in bytes (bb.DiskConfig); negative disables one (disk.go).
	SessionDiskMax, ProjectDiskMax, MinFreeDisk int64
}

// DefaultConfig returns the embedded defaults.
func DefaultConfig() Config {
	return Config{
		Addr:            "127.0.0.1:8080",
		DataDir:         defaultDataDir(),
		MaxSessions:     32,
		MaxLaunches:     2,
		ChromeNice:      10,
		ConnectTimeout:  5 * time.Minute,
		IdleTimeout:     10 * time.Minute,
		DisconnectGrace: 2 * time.Second,
		LogFormat:       "text",
		LogLevel:        "info",
		PoolSize:        2,
		PoolMemoryMiB:   1024,
		PoolIdle:        30 * time.Minute,
		Artifacts:       defaultArtifactsFlags(), // artifacts.go
		Limits:          defaultLimitFlags(),     // limits.go
		SessionDiskMax:  bb.DefaultSessionDiskMax,
		ProjectDiskMax:  bb.DefaultProjectDiskMax,
	}
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "browserd")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "browserd")
	}
	return "browserd-data"
}

// option is one setting with its flag name, environment variable and help.
type option struct {
	name, env, help string
	set             func(string) error
	show            func() string
	boolean         bool // the flag may stand alone (--x means --x=true)
}

// intFlag returns the setter and shower of a whole-number option kept in *p.
func intFlag(p *int) (func(string) error, func() string) {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not a whole number: %q", v)
		}
		*p = n
		return nil
	}, func() string { return strconv.Itoa(*p) }
}

// durationFlag returns the setter and shower of a duration option kept in *p.
func durationFlag(p *time.Duration) (func(string) error, func() string) {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration (e.g. 30s, 5m, 720h): %q", v)
		}
		*p = d
		return nil
	}, func() string { return p.String() }
}

func (c *Config) options() []option {
	str := func(p *string) (func(string) error, func() string) {
		return func(v string) error { *p = v; return nil }, func() string { return *p }
	}
	num, dur := intFlag, durationFlag
	opt := func(name, help string, set func(string) error, show func() string) option {
		env := "BROWSERD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		return option{name: name, env: env, help: help, set: set, show: show}
	}
	var opts []option
	add := func(name, help string, f func(string) error, s func() string) {
		opts = append(opts, opt(name, help, f, s))
	}
	f, s := str(&c.Addr)
	add("addr", "listen address HOST:PORT", f, s)
	f, s = str(&c.DataDir)
	add("data-dir", "directory for the database, browser profiles and files", f, s)
	f, s = str(&c.Database)
	add("database", "SQLite database file (default <data-dir>/browserd.db)", f, s)
	f, s = str(&c.PublicURL)
	add("public-url", "URL clients reach this server at (builds connectUrl and seleniumRemoteUrl); default: from each request's Host", f, s)
	f, s = str(&c.ChromePath)
	add("chrome", "Chromium binary (default: chromium on PATH, then /usr/bin/chromium)", f, s)
	f, s = str(&c.ChromeArgs)
	add("chrome-args", "extra Chromium flags for every browser, space-separated (flags that would weaken the sandbox, such as --no-sandbox or --proxy-server, are ignored)", f, s)
	f, s = num(&c.ChromeNice)
	add("chrome-nice", "niceness (0–19) the browsers run at, so that the API and the gateway keep their share of the CPU when browsers take all of it; 0 runs them at the server's priority", f, s)
	f, s = str(&c.Chromedriver)
	add("chromedriver", "chromedriver binary for Selenium (default: chromedriver on PATH, then /usr/bin/chromedriver)", f, s)
	f, s = num(&c.MaxSessions)
	add("max-sessions", "node capacity: live sessions at most", f, s)
	f, s = num(&c.MaxLaunches)
	add("max-launches", "browsers starting at the same time at most", f, s)
	f, s = str(&c.APIKey)
	add("api-key", "API key of the default project (stored hashed; at least 20 characters, e.g. from openssl rand -hex 32); default: generated and printed on first start", f, s)
	f, s = dur(&c.ConnectTimeout)
	add("connect-timeout", "end a session (without keepAlive) nobody connected to within this time; 0 disables", f, s)
	f, s = dur(&c.IdleTimeout)
	add("idle-timeout", "close a CDP connection that sent no command for this time", f, s)
	f, s = dur(&c.DisconnectGrace)
	add("disconnect-grace", "how long a session without keepAlive outlives its last client", f, s)
	f, s = num(&c.PoolSize)
	add("pool-size", "warm pool: browsers kept launched ahead of demand; 0 turns the pool off", f, s)
	f, s = num(&c.PoolMemoryMiB)
	add("pool-memory", "warm pool: memory budget of the waiting browsers together, MiB; 0 = no budget", f, s)
	f, s = dur(&c.PoolIdle)
	add("pool-idle", "warm pool: empty it when no create took a browser for this time; 0 never", f, s)
	f, s = str(&c.LogFormat)
	add("log-format", "text or json", f, s)
	f, s = str(&c.LogLevel)
	add("log-level", "debug, info, warn or error", f, s)
	f, _ = str(&c.MetricsToken)
	add("metrics-token", "bearer token /metrics and the details of /readyz require (at least 20 characters); without one, /metrics is off",
		f, func() string { return "" }) // never print a secret in -help
	f, _ = str(&c.ProxyUpstream)
	add("proxy-upstream", "upstream proxies behind proxies:true, comma-separated URLs (http://, https://, socks5://, credentials as user:pass@); a session uses one, round-robin",
		f, func() string { return "" }) // never print a password in -help
	opts = append(opts, c.artifactOptions(opt)...) // artifacts.go
	opts = append(opts, c.sandboxOptions(opt)...)  // sandbox.go
	opts = append(opts, c.limitOptions(opt)...)    // limits.go
	f, s = sizeFlag(&c.SessionDiskMax)             // disk.go
	add("session-disk-max", "end a session whose files (profile, cache, downloads, uploads) pass this size (bytes, or with KiB/MiB/GiB/TiB); -1 disables", f, s)
	f, s = sizeFlag(&c.ProjectDiskMax)
	add("project-disk-max", "refuse extension uploads and context saves that would take a project's extensions and contexts past this size; -1 disables", f, s)
	f, s = sizeFlag(&c.MinFreeDisk)
	add("min-free-disk", "free-space floor of the data dir's disk: below it creates answer 503 and /readyz is not ready; 0 = 1GiB or 5% of the disk, whichever is less; -1 disables", f, s)
	return opts
}

// Load applies the environment, then the flags in args.
func (c *Config) Load(args []string, getenv func(string) string, usage io.Writer) error {
	opts := c.options()
	for _, o := range opts {
		if v := getenv(o.env); v != "" {
			if err := o.set(v); err != nil {
				return fmt.Errorf("%s: %w", o.env, err)
			}
		}
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(usage)
	for _, o := range opts {
		help := fmt.Sprintf("%s (env %s) (default %q)", o.help, o.env, o.show())
		if o.boolean {
			fs.BoolFunc(o.name, help, o.set)
		} else {
			fs.Func(o.name, help, o.set)
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c.Validate()
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr: %w", err))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data-dir must not be empty"))
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("public-url must be an absolute http(s) URL, got %q", c.PublicURL))
		}
	}
	if c.MaxSessions < 1 {
		errs = append(errs, errors.New("max-sessions must be at least 1"))
	}
	if c.MaxLaunches < 1 {
		errs = append(errs, errors.New("max-launches must be at least 1"))
	}
	if c.ChromeNice < 0 || c.ChromeNice > 19 {
		errs = append(errs, fmt.Errorf("chrome-nice must be 0 to 19, got %d", c.ChromeNice))
	}
	if _, err := parseUpstreams(c.ProxyUpstream); err != nil { // setup.go
		errs = append(errs, err)
	}
	if c.PoolSize < 0 || c.PoolMemoryMiB < 0 || c.PoolIdle < 0 {
		errs = append(errs, errors.New("pool-size, pool-memory and pool-idle must not be negative"))
	}
	if c.ConnectTimeout < 0 || c.IdleTimeout <= 0 || c.DisconnectGrace < 0 {
		errs = append(errs, errors.New("timeouts must not be negative (idle-timeout must be positive)"))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log-format must be text or json, got %q", c.LogFormat))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log-level must be debug, info, warn or error, got %q", c.LogLevel))
	}
	errs = append(errs, c.Artifacts.validate()...) // artifacts.go
	errs = append(errs, c.Sandbox.validate()...)   // sandbox.go
	errs = append(errs, c.validateLimits()...)     // limits.go: limits, API key and metrics token strength
	return errors.Join(errs...)
}

// DatabasePath is the SQLite file.
func (c *Config) DatabasePath() string {
	if c.Database != "" {
		return c.Database
	}
	return filepath.Join(c.DataDir, "browserd.db")
}
