package main

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
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/fsblob"
	"github.com/browserd/browserd/internal/httpapi"
	"github.com/browserd/browserd/internal/liveview"
	"github.com/browserd/browserd/internal/sqlite"
)

// serve runs the server until ctx is cancelled (SIGINT/SIGTERM), then ends every session
// cleanly and returns.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg := DefaultConfig()
	if err := cfg.Load(args, getenv, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	logger := newLogger(cfg, stderr)

	chromePath, err := chrome.FindChrome(cfg.ChromePath)
	if err != nil {
		return fmt.Errorf("%w (install it with `apt-get install -y chromium`, or pass --chrome PATH)", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	db, err := sqlite.Open(ctx, cfg.DatabasePath(), logger)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer db.Close()

	project, err := bootstrap(ctx, db, cfg.APIKey, stdout)
	if err != nil {
		return err
	}
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
	defer func() { // after mgr.Close below: removes the sandbox init's copy
		if err := launcher.Close(); err != nil {
			logger.Warn("close launcher", "err", err)
		}
	}()
	blobs, err := fsblob.New(filepath.Join(cfg.DataDir, "blobs"))
	if err != nil {
		return err
	}
	art, err := newArtifacts(ctx, cfg, db, blobs, logger) // artifacts.go
	if err != nil {
		return fmt.Errorf("session artifacts: %w", err)
	}
	defer art.Close()                                          // after mgr.Close below: ending sessions write their logs and files
	storage, err := storageConfig(ctx, db, blobs, cfg.DataDir) // storage.go
	if err != nil {
		return err
	}
	setup, err := setupConfig(ctx, cfg, chromePath, reserved, logger) // setup.go
	if err != nil {
		return err
	}
	ops, err := newOps(cfg, db, chromePath, logger) // ops.go: metrics and readiness
	if err != nil {
		return err
	}
	mgr, err := bb.NewManager(bb.ManagerConfig{
		Observer:        ops,
		Parts:           []bb.SessionPart{art},
		Setup:           setup,
		Storage:         storage,
		Store:           db,
		Launcher:        launcher,
		Signer:          signer,
		Logger:          logger,
		NodeID:          node,
		MaxSessions:     cfg.MaxSessions,
		MaxLaunches:     cfg.MaxLaunches,
		ConnectTimeout:  connectTimeout(cfg.ConnectTimeout),
		DisconnectGrace: cfg.DisconnectGrace,
		Pool: bb.PoolConfig{
			Size:       cfg.PoolSize,
			MaxMemory:  int64(cfg.PoolMemoryMiB) << 20,
			IdleExpiry: cfg.PoolIdle,
		},
		Disk: bb.DiskConfig{ // disk.go
			SessionMax: cfg.SessionDiskMax, ProjectMax: cfg.ProjectDiskMax, MinFree: cfg.MinFreeDisk,
			Free: diskFree(cfg.DataDir, filepath.Dir(cfg.DatabasePath())),
		},
	})
	if err != nil {
		return err
	}
	art.SetRuns(mgr) // a part finds its runs in the Manager, which takes its parts above
	if err := mgr.Reconcile(ctx); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	gw := cdpproxy.New(cdpproxy.Config{Sessions: mgr, Logger: logger, IdleTimeout: cfg.IdleTimeout, Artifacts: art})
	if err := ops.watch(db, mgr, gw); err != nil {
		return err
	}
	api, err := httpapi.New(httpapi.Config{Sessions: mgr, Logger: logger, PublicURL: cfg.PublicURL, Artifacts: art})
	if err != nil {
		return err
	}
	live, err := liveview.New(liveview.Config{Sessions: mgr, API: api.Handler(), Logger: logger, PublicURL: cfg.PublicURL, DevTools: gw})
	if err != nil {
		return err
	}

	wd, err := newWebDriver(cfg, mgr, art, reserved, logger) // webdriver.go
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer reserved.ReserveAddr(ln.Addr())()
	srv := &http.Server{
		Handler:           ops.wrap(withWebDriver(withLiveView(routes(api.Handler(), gw), live.Handler()), wd)), // liveview.go, webdriver.go, ops.go
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln = limitServer(srv, ln, cfg.Limits, logger) // limits.go: timeouts, body deadlines, connection caps, 401 limit
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }() // ends when srv is shut down; read below
	logger.Info("browserd started", "addr", ln.Addr().String(), "chrome", chromePath,
		"data_dir", cfg.DataDir, "default_project_id", project.ID, "version", version)
	fmt.Fprintf(stdout, "browserd %s listening on http://%s (default project %s)\n", version, ln.Addr(), project.ID)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The gateway first, so connected clients get 1001 "server shutting down"; then the
	// sessions: browsers stop and the store records every end; then the HTTP server.
	closeErr := gw.Shutdown(sctx)
	closeErr = errors.Join(closeErr, wd.Shutdown(sctx)) // stops every chromedriver
	closeErr = errors.Join(closeErr, live.Close(sctx))
	closeErr = errors.Join(closeErr, mgr.Close(sctx))
	if err := srv.Shutdown(sctx); err != nil {
		closeErr = errors.Join(closeErr, err)
	}
	if serveErr == nil {
		serveErr = <-errc
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return errors.Join(serveErr, closeErr)
}

// connectTimeout maps the flag (0 disables) to the Manager's convention (<0 disables).
func connectTimeout(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// routes joins the REST API, the CDP gateway and the health endpoint. The gateway takes
// websocket upgrades at /connect and, for clients that build Browserbase's URL form
// themselves, at / (spec §4.1).
func routes(api http.Handler, gw http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/", api)
	mux.Handle("/connect", gw)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			gw.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r) // the API answers unknown paths with its 404 error shape
	})
	return mux
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
