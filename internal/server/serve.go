package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdpproxy"
	"github.com/browserd/browserd/internal/certs"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/cluster"
	"github.com/browserd/browserd/internal/httpapi"
	"github.com/browserd/browserd/internal/liveview"
)

// ErrUsage marks errors in how a command was called (bad flags or arguments), as
// flag.ErrHelp marks a request for help: `browserd` exits with 2 for them. Test with
// errors.Is; the error's text is the message for the user.
var ErrUsage = errors.New("usage error")

// usageError wraps an error in how a command was called; errors.Is(err, ErrUsage) holds.
type usageError struct{ error }

func (e usageError) Is(target error) bool { return target == ErrUsage }
func (e usageError) Unwrap() error        { return e.error }

// Main is `browserd serve`: the production wiring of every package, which cmd/browserd
// runs and which the bench and the tests start in-process (as wtf's cmd/wtfd Main).
// Set Config (ParseFlags), Open, and Close when done.
type Main struct {
	// Config is the configuration Open uses; NewMain sets the defaults.
	Config Config
	// Version is this build's version: printed at start and exported as a metric.
	Version string
	// Stdout gets the "listening on" line and, on a first start, the generated API key;
	// Stderr gets the logs. nil discards.
	Stdout, Stderr io.Writer

	// Set by Open, valid until Close.

	// URL is where the server listens, http://host:port (the actual port of :0).
	URL string
	// DB is the server's store (SQLite or PostgreSQL). The bench reads the browsers'
	// process ids from it and raises the default project's concurrency; nothing else
	// should need it.
	DB Store
	// Project is the default project, which --api-key belongs to.
	Project *bb.Project

	// peers are the cluster's members the forwarder reads (cluster.go); set once the
	// node is a member.
	peers livePeers

	closers   []func(ctx context.Context) error // Open's resources, closed in reverse order
	srv       *http.Server
	unreserve func() // gives the listening port back to browsers
	mgr       *bb.Manager
	member    *cluster.Member // nil without --cluster-url (members.go)
	log       *slog.Logger
	served    chan struct{} // closed when srv.Serve has returned serveErr
	serveErr  error
}

// NewMain returns a Main with the default configuration.
func NewMain(version string) *Main {
	return &Main{Config: DefaultConfig(), Version: version}
}

// ParseFlags loads the configuration from getenv (BROWSERD_*) and the flags in args;
// -help prints the flags to m.Stderr and returns flag.ErrHelp. Other errors match ErrUsage.
func (m *Main) ParseFlags(args []string, getenv func(string) string) error {
	if err := m.Config.Load(args, getenv, writerOr(m.Stderr)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}

// Serve runs `browserd serve args…` until ctx is cancelled (SIGINT/SIGTERM), then ends
// every session cleanly and returns. -help prints the flags and returns nil.
func Serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, version string) error {
	m := NewMain(version)
	m.Stdout, m.Stderr = stdout, stderr
	if err := m.ParseFlags(args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if err := m.Open(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		m.Drain(m.Config.drainTimeout()) // members.go: 0 without a cluster, unless given
	case <-m.DrainRequested(): // `browserd admin nodes drain`
		m.Drain(m.Config.drainTimeout())
	case <-m.Done():
	}
	return m.Close()
}

// Done is closed once the HTTP server has stopped: by itself (Close then returns why),
// or in Close. Valid after Open succeeded.
func (m *Main) Done() <-chan struct{} { return m.served }

func (m *Main) onClose(f func(ctx context.Context) error) { m.closers = append(m.closers, f) }

// Open starts the server: it opens the store, bootstraps the default project, starts the
// Manager and listens on Config.Addr. On error, what was opened is closed again.
func (m *Main) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			err = errors.Join(err, m.closeAll())
		}
	}()
	cfg := m.Config
	stdout := writerOr(m.Stdout)
	logger := newLogger(cfg, writerOr(m.Stderr))
	m.log = logger

	chromePath, err := chrome.FindChrome(cfg.ChromePath)
	if err != nil {
		return fmt.Errorf("%w (install it with `apt-get install -y chromium`, or pass --chrome PATH)", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	db, err := openStore(ctx, cfg, logger) // database.go: SQLite or PostgreSQL
	if err != nil {
		return err
	}
	m.DB = db
	m.onClose(func(context.Context) error { return db.Close() })
	// members.go: the last step before the store closes, once the sessions ended and
	// the blobs were flushed.
	m.onClose(m.leaveCluster)

	project, err := bootstrap(ctx, db, cfg.APIKey, stdout)
	if err != nil {
		return err
	}
	m.Project = project
	secret, err := signingSecret(ctx, db)
	if err != nil {
		return fmt.Errorf("signing secret: %w", err)
	}
	signer, err := bb.NewSigner(secret)
	if err != nil {
		return err
	}
	node, err := nodeID(cfg.DataDir)
	if err != nil {
		return err
	}
	// The server's own listening ports: no browser may reach them through its proxy,
	// even with --allow-private-networks (docs/SECURITY.md).
	reserved := &bb.ReservedPorts{}
	hooks, err := newWebhooks(ctx, cfg, db, node, reserved, logger) // webhooks.go
	if err != nil {
		return err
	}
	// Closed after everything that emits events (the Manager, the artifacts), before the
	// store: the events still queued reach the outbox.
	m.onClose(hooks.Close)
	launcher, err := chrome.New(chrome.Config{
		Path:      chromePath,
		RunDir:    filepath.Join(cfg.DataDir, "run"),
		Logger:    logger,
		ExtraArgs: strings.Fields(cfg.ChromeArgs),
		Nice:      cfg.ChromeNice,
		Sandbox:   cfg.Sandbox.chromeSandbox(), // sandbox.go
		Ports:     reserved,
	})
	if err != nil {
		return fmt.Errorf("chrome launcher: %w", err)
	}
	m.onClose(func(context.Context) error { // after the Manager: removes the sandbox init's copy
		if err := launcher.Close(); err != nil {
			logger.Warn("close launcher", "err", err)
		}
		return nil
	})
	blobs, err := openBlobs(ctx, cfg, logger) // blobs.go: the data dir, or S3 behind a spool
	if err != nil {
		return err
	}
	// Closed after the artifacts: uploads what they wrote last.
	m.onClose(blobs.close)
	art, err := newArtifacts(ctx, cfg, db, blobs.artifacts, hooks, logger) // artifacts.go
	if err != nil {
		return fmt.Errorf("session artifacts: %w", err)
	}
	// Closed after the Manager: ending sessions write their logs and files.
	m.onClose(func(context.Context) error { art.Close(); return nil })
	m.onClose(m.stopHTTP) // after the Manager, before the artifacts
	// replays.go: session videos, in the artifacts' blobs; closed after the Manager
	// (its sessions' last frames are stored), before the blobs.
	rep, err := newReplays(cfg, db, blobs.artifacts, signer, logger)
	if err != nil {
		return fmt.Errorf("session videos: %w", err)
	}
	m.onClose(func(context.Context) error { return rep.Close() })
	// storage.go: contexts and extensions
	prof, err := newProfiles(ctx, cfg, db, blobs.profiles, logger)
	if err != nil {
		return err
	}
	// Closed after the Manager, which waits for the write-backs.
	m.onClose(func(context.Context) error { return prof.Close() })
	// proxySettings.caCertificates: the browsers' NSS database needs certutil.
	certSvc, err := certs.New(certs.Config{Store: db, CanTrust: launcher.CanTrustCertificates(), Logger: logger})
	if err != nil {
		return err
	}
	setup, err := setupConfig(ctx, cfg, chromePath, reserved, logger) // setup.go
	if err != nil {
		return err
	}
	ops, err := newOps(cfg, db, chromePath, m.Version, logger) // ops.go: metrics and readiness
	if err != nil {
		return err
	}
	ops.ready.blobs = blobs.check
	mgr, err := bb.NewManager(bb.ManagerConfig{
		Observer: ops,
		Events:   hooks, // webhooks: sessions.created, .running, .ended, .navigations.blocked
		Setup:    setup,
		// Ends run in reverse: the profiles write a context back, then the artifacts
		// take the downloads (both once the browser has stopped).
		Parts:           []bb.SessionPart{art, prof, certSvc, rep},
		Store:           db,
		Launcher:        launcher,
		Signer:          signer,
		Logger:          logger,
		NodeID:          node,
		MaxSessions:     cfg.MaxSessions,
		MaxLaunches:     cfg.MaxLaunches,
		ConnectTimeout:  cfg.ConnectTimeout, // 0 disables, in the flag and the Manager alike
		DisconnectGrace: cfg.DisconnectGrace,
		Pool: bb.PoolConfig{
			Size:       cfg.PoolSize,
			MaxMemory:  int64(cfg.PoolMemoryMiB) << 20,
			IdleExpiry: cfg.PoolIdle,
			Keyed:      cfg.PoolKeyed,
			KeyedIdle:  cfg.PoolKeyedIdle,
		},
		Disk: bb.DiskConfig{ // disk.go
			SessionMax: cfg.SessionDiskMax, MinFree: cfg.MinFreeDisk,
			Free: diskFree(cfg.diskDirs()...),
		},
	})
	if err != nil {
		return err
	}
	m.mgr = mgr
	art.SetRuns(mgr) // a part finds its runs in the Manager, which takes its parts above
	rep.SetRuns(mgr)
	prof.SetWarmPool(mgr) // contexts written back or deleted replace or close warm browsers
	m.onClose(mgr.Close)  // sessions end: browsers stop and the store records every end

	// A deleted certificate closes the warm browsers that trust it.
	certSvc.SetWarmPool(mgr)
	// The profiles' work dir is emptied before the Manager reconciles.
	if err := prof.Start(ctx); err != nil {
		return fmt.Errorf("profiles: %w", err)
	}
	if err := mgr.Reconcile(ctx); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	hooks.Start() // delivers what the outbox holds, also from before a restart
	gw := cdpproxy.New(cdpproxy.Config{Sessions: mgr, Logger: logger, IdleTimeout: cfg.IdleTimeout, Artifacts: art})
	if err := ops.watch(db, mgr, gw); err != nil {
		return err
	}
	apiCfg := httpapi.Config{Sessions: mgr, Profiles: prof, Logger: logger, PublicURL: cfg.PublicURL, Artifacts: art,
		Certificates: certSvc,
		Webhooks:     hooks,
		Replays:      rep}
	if err := m.openFetch(cfg, ops, reserved, setup.ChromeVersion, logger, &apiCfg); err != nil { // fetch.go: POST /v1/fetch
		return err
	}
	api, err := httpapi.New(apiCfg)
	if err != nil {
		return err
	}
	live, err := liveview.New(liveview.Config{Sessions: mgr, API: api.Handler(), Artifacts: art, Logger: logger, PublicURL: cfg.PublicURL, DevTools: gw,
		Settings: db}) // sign-ins every node (and a restart) honours
	if err != nil {
		return err
	}
	m.onClose(live.Close)
	wd, err := newWebDriver(cfg, mgr, art, reserved, logger) // webdriver.go
	if err != nil {
		return err
	}
	m.onClose(wd.Shutdown) // stops every chromedriver
	// The gateway closes first, so that connected clients get 1001 "server shutting down".
	m.onClose(gw.Shutdown)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	m.unreserve = reserved.ReserveAddr(ln.Addr())
	handler := routes(handlers{ // routes.go: the one route table
		api: api.Handler(), gateway: gw, live: live.Handler(), webdriver: wd,
		metrics: ops.metricsHandler(), ready: ops.readyHandler(),
	})
	// cluster.go: with --cluster-url, requests about another node's session go there.
	handler, hop, err := m.openCluster(ctx, clusterParts{db: db, node: node, mgr: mgr, wd: wd, logger: logger}, handler)
	if err != nil {
		ln.Close()
		return err
	}
	m.srv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln = limitServer(m.srv, ln, cfg.Limits, hop, logger) // limits.go: timeouts, body deadlines, connection caps, 401 limit
	m.served = make(chan struct{})
	go func() { // ends when srv is shut down; Close waits for it
		m.serveErr = m.srv.Serve(ln)
		close(m.served)
	}()
	m.URL = "http://" + ln.Addr().String()
	if cfg.ClusterURL != "" { // members.go: peers may place sessions here from now on
		if err := m.joinCluster(ctx, cfg, db, mgr, node, reserved, ops, logger); err != nil {
			return err
		}
	}
	logger.Info("browserd started", "addr", ln.Addr().String(), "chrome", chromePath,
		"data_dir", cfg.DataDir, "database", cfg.DatabaseKind(), "default_project_id", project.ID, "version", m.Version)
	fmt.Fprintf(stdout, "browserd %s listening on http://%s (default project %s)\n", m.Version, ln.Addr(), project.ID)
	return nil
}

// Close shuts the server down: the gateway first, so that connected clients get 1001
// "server shutting down"; then WebDriver, the live view and the sessions (browsers stop
// and the store records every end); then the HTTP server, the artifacts and the store.
// It returns why the HTTP server stopped if it stopped by itself, and any close error.
func (m *Main) Close() error {
	closeErr := m.closeAll()
	var serveErr error
	if m.served != nil {
		<-m.served
		serveErr = m.serveErr
		if errors.Is(serveErr, http.ErrServerClosed) {
			serveErr = nil
		}
	}
	return errors.Join(serveErr, closeErr)
}

// closeAll closes what Open opened, in reverse order, within 30 seconds.
func (m *Main) closeAll() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for i := len(m.closers) - 1; i >= 0; i-- {
		errs = append(errs, m.closers[i](ctx))
	}
	m.closers = nil
	return errors.Join(errs...)
}

// stopHTTP shuts the HTTP server down and gives its port back.
func (m *Main) stopHTTP(ctx context.Context) error {
	if m.srv == nil {
		return nil
	}
	err := m.srv.Shutdown(ctx)
	if m.unreserve != nil {
		m.unreserve()
	}
	return err
}

// writerOr returns w, or io.Discard when w is nil.
func writerOr(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by Config.Validate
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// UsageError marks err as an error in how a command was called: errors.Is(result,
// ErrUsage) holds, and its text is err's. For the other commands of `browserd` (bench).
func UsageError(err error) error { return usageError{err} }
