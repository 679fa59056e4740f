package server

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	bb "github.com/browserd/browserd"
)

// Config is the server's configuration: defaults < BROWSERD_* environment < flags. The
// flags are the user-visible contract (README, `browserd serve -h`): 0 turns a duration or
// a count off where off makes sense, and the defaults live here, in DefaultConfig.
type Config struct {
	Addr            string
	DataDir         string
	Database        string // SQLite file ("" = <data-dir>/browserd.db) or a postgres:// URL (database.go)
	PublicURL       string
	ChromePath      string
	ChromeArgs      string // extra Chromium flags, space-separated (deploy/Dockerfile)
	ChromeNice      int    // niceness of the browsers (0: the server's)
	Chromedriver    string
	MaxSessions     int
	MaxLaunches     int
	APIKey          string
	ConnectTimeout  time.Duration // 0 disables
	IdleTimeout     time.Duration
	DisconnectGrace time.Duration
	LogFormat       string
	LogLevel        string
	PoolSize        int
	PoolMemoryMiB   int
	PoolIdle        time.Duration
	PoolKeyed       int
	PoolKeyedIdle   time.Duration
	MetricsToken    string         // bearer token for /metrics and /readyz details; "" = metrics off (ops.go)
	ProxyUpstream   string         // comma-separated upstream proxy URLs for proxies: true
	Artifacts       ArtifactsFlags // artifacts.go
	Video           VideoFlags     // replays.go: session videos
	Sandbox         SandboxFlags   // sandbox.go
	Limits          LimitFlags     // limits.go
	Fetch           FetchFlags     // fetch.go: POST /v1/fetch
	Webhooks        WebhookFlags   // webhooks.go
	// Disk limits in bytes (bb.DiskConfig); negative disables one (disk.go).
	SessionDiskMax, ProjectDiskMax, MinFreeDisk int64
	// BlobStore is --blob-store: "" keeps blobs in <data-dir>/blobs, s3://… in S3
	// (blobs.go), with BlobCredentials from AWS_* (never a flag).
	BlobStore       string
	BlobCredentials BlobCredentials
	// ClusterURL is --cluster-url: this node's URL for its peers; set, the node joins
	// the cluster of its PostgreSQL database (members.go).
	ClusterURL string
	// DrainTimeout is --drain-timeout: how long SIGTERM lets sessions finish before it
	// ends the rest (members.go). Without a cluster it applies only when given
	// (DrainSet): a single node ends its sessions at once, as before.
	DrainTimeout time.Duration
	// DrainSet records that --drain-timeout (or its variable) was given; Load sets it.
	DrainSet bool
}

// DefaultConfig returns the embedded defaults.
func DefaultConfig() Config {
	return Config{
		Addr:            "127.0.0.1:8080",
		DataDir:         defaultDataDir(),
		MaxSessions:     bb.DefaultMaxSessions,
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
		PoolKeyed:       2,
		PoolKeyedIdle:   5 * time.Minute,
		Artifacts:       defaultArtifactsFlags(), // artifacts.go
		Video:           defaultVideoFlags(),     // replays.go
		Limits:          defaultLimitFlags(),     // limits.go
		Fetch:           defaultFetchFlags(),     // fetch.go
		Webhooks:        defaultWebhookFlags(),   // webhooks.go
		SessionDiskMax:  bb.DefaultSessionDiskMax,
		ProjectDiskMax:  bb.DefaultProjectDiskMax,
		DrainTimeout:    defaultDrainTimeout, // members.go
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

// flags defines the options of Config on fs, each bound to its field, with the field's
// current value as the default shown by -help.
func (c *Config) flags(fs *flag.FlagSet) {
	f := flagTable{fs}
	f.str(&c.Addr, "addr", "listen address HOST:PORT")
	f.str(&c.DataDir, "data-dir", "directory for the database, browser profiles and files")
	// A secret: a PostgreSQL URL holds a password, which -help must not show.
	f.secret(&c.Database, "database", "SQLite database file (default <data-dir>/browserd.db), or a PostgreSQL URL postgres://USER:PASS@HOST:PORT/DB?sslmode=disable to keep the state in PostgreSQL (README: Production storage)")
	f.str(&c.BlobStore, "blob-store", "where recordings, downloads, uploads, context snapshots and extensions are kept: empty for <data-dir>/blobs, or s3://BUCKET[/PREFIX]?endpoint=http://HOST:PORT&region=REGION with credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (README: Production storage)")
	f.str(&c.PublicURL, "public-url", "URL clients reach this server at (builds connectUrl and seleniumRemoteUrl); default: from each request's Host")
	f.str(&c.ChromePath, "chrome", "Chromium binary (default: chromium on PATH, then /usr/bin/chromium)")
	f.str(&c.ChromeArgs, "chrome-args", "extra Chromium flags for every browser, space-separated (flags that would weaken the sandbox, such as --no-sandbox or --proxy-server, are ignored)")
	f.num(&c.ChromeNice, "chrome-nice", "niceness (0–19) the browsers run at, so that the API and the gateway keep their share of the CPU when browsers take all of it; 0 runs them at the server's priority")
	f.str(&c.Chromedriver, "chromedriver", "chromedriver binary for Selenium (default: chromedriver on PATH, then /usr/bin/chromedriver)")
	f.num(&c.MaxSessions, "max-sessions", "node capacity: live sessions at most")
	f.num(&c.MaxLaunches, "max-launches", "browsers starting at the same time at most")
	f.secret(&c.APIKey, "api-key", "API key of the default project (stored hashed; at least 20 characters, e.g. from openssl rand -hex 32); default: generated and printed on first start")
	f.dur(&c.ConnectTimeout, "connect-timeout", "end a session (without keepAlive) nobody connected to within this time; 0 disables")
	f.dur(&c.IdleTimeout, "idle-timeout", "close a CDP connection that sent no command for this time")
	f.dur(&c.DisconnectGrace, "disconnect-grace", "how long a session without keepAlive outlives its last client")
	f.num(&c.PoolSize, "pool-size", "warm pool: browsers kept launched ahead of demand; 0 turns the pool off")
	f.num(&c.PoolMemoryMiB, "pool-memory", "warm pool: memory budget of the waiting browsers together, MiB; 0 = no budget")
	f.dur(&c.PoolIdle, "pool-idle", "warm pool: empty it when no create took a browser for this time; 0 never")
	f.num(&c.PoolKeyed, "pool-keyed", "warm pool: browsers kept, all together, for the other launch options creates asked for lately (a context, an extension, a viewport, an OS), each launched after a create asked for it; 0 keeps none")
	f.dur(&c.PoolKeyedIdle, "pool-keyed-idle", "warm pool: close the browsers kept for a launch option no create asked for in this time (they may hold a context's data); 0 = pool-idle")
	f.str(&c.LogFormat, "log-format", "text or json")
	f.str(&c.LogLevel, "log-level", "debug, info, warn or error")
	f.secret(&c.MetricsToken, "metrics-token", "bearer token /metrics and the details of /readyz require (at least 20 characters); without one, /metrics is off")
	f.secret(&c.ProxyUpstream, "proxy-upstream", "upstream proxies behind proxies:true, comma-separated URLs (http://, https://, socks5://, credentials as user:pass@); a session uses one, round-robin")
	c.Artifacts.flags(f) // artifacts.go
	c.Video.flags(f)     // replays.go
	c.Sandbox.flags(f)   // sandbox.go
	c.Limits.flags(f)    // limits.go
	c.Fetch.flags(f)     // fetch.go
	c.Webhooks.flags(f)  // webhooks.go
	f.size(&c.SessionDiskMax, "session-disk-max", "end a session whose files (profile, cache, downloads, uploads) pass this size (bytes, or with KiB/MiB/GiB/TiB); -1 disables")
	f.size(&c.ProjectDiskMax, "project-disk-max", "refuse extension uploads and context saves that would take a project's extensions and contexts past this size; -1 disables")
	c.clusterFlags(f) // members.go
	f.size(&c.MinFreeDisk, "min-free-disk", "free-space floor of the data dir's disk: below it creates answer 503 and /readyz is not ready; 0 = 1GiB or 5% of the disk, whichever is less; -1 disables")
}

// EnvName is the environment variable of a flag: BROWSERD_ and the flag's name in upper
// case with '_' for '-' (--max-sessions: BROWSERD_MAX_SESSIONS).
func EnvName(flagName string) string {
	return "BROWSERD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Load applies the environment, then the flags in args, and validates the result. A
// -help answers flag.ErrHelp after printing the flags to usage.
func (c *Config) Load(args []string, getenv func(string) string, usage io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(usage)
	c.flags(fs)
	// The environment first, so that a flag given on the command line wins.
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := EnvName(f.Name)
		if v := getenv(env); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	if len(errs) > 0 {
		return errs[0]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.BlobCredentials = loadBlobCredentials(getenv) // blobs.go
	c.Fetch.LLMAPIKey = getenv(LLMAPIKeyEnv)        // fetch.go
	fs.Visit(func(f *flag.Flag) { c.DrainSet = c.DrainSet || f.Name == "drain-timeout" })
	c.DrainSet = c.DrainSet || getenv(EnvName("drain-timeout")) != ""
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
	if c.PoolSize < 0 || c.PoolMemoryMiB < 0 || c.PoolIdle < 0 || c.PoolKeyed < 0 || c.PoolKeyedIdle < 0 {
		errs = append(errs, errors.New("pool-size, pool-memory, pool-idle, pool-keyed and pool-keyed-idle must not be negative"))
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
	if err := c.validateBlobStore(); err != nil { // blobs.go
		errs = append(errs, err)
	}
	errs = append(errs, c.Artifacts.validate()...) // artifacts.go
	errs = append(errs, c.Video.validate()...)     // replays.go
	errs = append(errs, c.Sandbox.validate()...)   // sandbox.go
	errs = append(errs, c.Fetch.validate()...)     // fetch.go
	errs = append(errs, c.Webhooks.validate()...)  // webhooks.go
	errs = append(errs, c.validateLimits()...)     // limits.go: limits, API key and metrics token strength
	errs = append(errs, c.validateCluster()...)    // members.go
	return errors.Join(errs...)
}
