package browserd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ManagerConfig configures a Manager. Zero durations take the defaults in brackets.
type ManagerConfig struct {
	Store    Store
	Launcher Launcher
	Signer   *Signer
	Logger   *slog.Logger

	// NodeID names this node in the store; sessions it owns carry it.
	NodeID string
	// MaxSessions is this node's capacity: live sessions, launching ones included
	// [DefaultMaxSessions].
	MaxSessions int
	// MaxLaunches is how many browsers may start at once [2]; the rest queue. A launch
	// storm stalls a small machine (research/chromium-limits.md §3b).
	MaxLaunches int
	// LaunchTimeout bounds the wait for a browser to become ready [30s].
	LaunchTimeout time.Duration
	// ConnectTimeout ends a session nobody connected to (without keepAlive); 0 (or <0)
	// disables it, as --connect-timeout 0 does. `browserd serve` sets 5m.
	ConnectTimeout time.Duration
	// DisconnectGrace is how long a session without keepAlive survives its last client
	// disconnecting, to absorb reconnect races [2s].
	DisconnectGrace time.Duration
	// DefaultViewport is the viewport when a create gives none [1280×720].
	DefaultViewport Viewport
	// Pool is the warm pool of browsers with the default launch options; off when
	// Pool.Size is 0. It starts filling at the end of Reconcile.
	Pool PoolConfig
	// Parts run beside every session's browser (part.go), in this order while a session
	// starts and in reverse order while it ends: contexts and extensions
	// (internal/profiles) are one. Without a part that serves them, a create's context
	// and extension are not looked at.
	Parts []SessionPart
	// Setup runs session proxies and browser-settings emulation (setup.go).
	Setup SetupConfig
	// Observer, when set, is told how creates and launches go (observe.go).
	Observer Observer
	// Events, when set, is told what happens to sessions (created, running, ended,
	// navigation blocked) for webhooks (events.go, internal/webhooks).
	Events EventSink

	// StoreTimeout bounds one store write that ends a session [10s]; an end the store
	// does not take in time is retried in the background (endrecord.go).
	StoreTimeout time.Duration
	// SweepInterval is how often the sweep ends sessions the store has as live on this
	// node that no browser backs, and retries pending ends [1m]; <0 disables it. It
	// starts at the end of Reconcile.
	SweepInterval time.Duration
	// Disk sets disk quotas and the free-space floor (disk.go).
	Disk DiskConfig
}

// Manager owns the sessions of one node: it launches their browsers, enforces limits,
// and ends them (release, timeout, disconnect, crash, shutdown). Browsers belong to the
// Manager, never to the request that created them.
type Manager struct {
	cfg    ManagerConfig
	store  Store
	log    *slog.Logger
	ctx    context.Context // owns every browser; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	launchSem chan struct{}
	pool      *pool // nil when off

	mu           sync.Mutex
	live         map[string]*liveSession
	reserved     int // capacity taken: live sessions plus creates in progress
	closed       bool
	closing      chan struct{} // closed when Close begins: background loops return
	poolStarted  bool
	sweepStarted bool
	diskStarted  bool
	ends         endRecords    // pending session ends, creates in progress (endrecord.go)
	admission    nodeAdmission // draining, fenced (member.go)

	parts []SessionPart // the built-in ones, then ManagerConfig.Parts (part.go)
	auth  authCache     // API keys verified lately (authcache.go)
}

// DefaultMaxSessions is a node's capacity when none is configured: the default of both
// ManagerConfig.MaxSessions and `browserd serve --max-sessions`.
const DefaultMaxSessions = 32

// NewManager returns a Manager. Call Reconcile before serving, and Close to stop.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Store == nil || cfg.Launcher == nil || cfg.Signer == nil {
		return nil, errors.New("manager: store, launcher and signer are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.MaxLaunches <= 0 {
		cfg.MaxLaunches = 2
	}
	if cfg.LaunchTimeout <= 0 {
		cfg.LaunchTimeout = 30 * time.Second
	}
	if cfg.DisconnectGrace <= 0 {
		cfg.DisconnectGrace = 2 * time.Second
	}
	if cfg.DefaultViewport.Width <= 0 || cfg.DefaultViewport.Height <= 0 {
		cfg.DefaultViewport = Viewport{Width: 1280, Height: 720}
	}
	if cfg.NodeID == "" {
		cfg.NodeID = "local"
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = 10 * time.Second
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = time.Minute
	}
	cfg.Disk = cfg.Disk.withDefaults() // disk.go
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg:       cfg,
		store:     cfg.Store,
		log:       cfg.Logger,
		ctx:       ctx,
		cancel:    cancel,
		launchSem: make(chan struct{}, cfg.MaxLaunches),
		live:      make(map[string]*liveSession),
		closing:   make(chan struct{}),
	}
	if cfg.Pool.Size > 0 {
		m.pool = newPool(poolDeps{
			ctx: ctx,
			launch: func(ctx context.Context, opts LaunchOptions, started func(Browser)) (Browser, error) {
				return m.startBrowser(ctx, opts, false, started)
			},
			slots: m.launchSem,
			wg:    &m.wg,
			log:   m.log,
		}, cfg.Pool, LaunchOptions{Viewport: cfg.DefaultViewport, Args: m.launchArgs()})
	}
	m.parts = []SessionPart{&setupPart{m: m}}
	m.parts = append(m.parts, cfg.Parts...)
	return m, nil
}

// PoolStats returns the state of the warm pool (zero when it is off).
func (m *Manager) PoolStats() PoolStats { return m.pool.stats() }

// SigningKey returns the signing key of a session (spec §2.3).
func (m *Manager) SigningKey(sessionID string) string { return m.cfg.Signer.SigningKey(sessionID) }

// Authenticate returns the API key for a raw key, or a CodeUnauthorized error.
func (m *Manager) Authenticate(ctx context.Context, rawKey string) (*APIKey, error) {
	if rawKey == "" {
		return nil, Errorf(CodeUnauthorized, "Unauthorized: missing X-BB-API-Key header")
	}
	hash := HashAPIKey(rawKey)
	now := time.Now()
	if k, ok := m.auth.get(hash, now); ok {
		return k, nil
	}
	k, err := m.store.APIKeyByHash(ctx, hash)
	if CodeOf(err) == CodeNotFound {
		return nil, Errorf(CodeUnauthorized, "Unauthorized: invalid API key")
	} else if err != nil {
		return nil, fmt.Errorf("look up api key: %w", err)
	}
	if !EqualHash(k.Hash, hash) {
		return nil, Errorf(CodeUnauthorized, "Unauthorized: invalid API key")
	}
	m.auth.put(hash, k, now)
	return k, nil
}

// Session returns a session of the project, or CodeNotFound (also for another project's).
// A live session's usage is measured (usage.go).
func (m *Manager) Session(ctx context.Context, projectID, id string) (*Session, error) {
	s, err := m.session(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	return m.withUsage(s), nil // usage.go
}

// session is Session without measuring the usage (tens of ms of /proc reading for a
// large browser), for calls that answer with other things or measure later anyway.
func (m *Manager) session(ctx context.Context, projectID, id string) (*Session, error) {
	if !ValidID(id) {
		return nil, Errorf(CodeNotFound, "Session not found")
	}
	s, err := m.store.Session(ctx, id)
	if err != nil {
		if CodeOf(err) == CodeNotFound {
			return nil, Errorf(CodeNotFound, "Session not found")
		}
		return nil, err
	}
	if s.ProjectID != projectID {
		return nil, Errorf(CodeNotFound, "Session not found")
	}
	return s, nil
}

// Sessions lists the project's sessions matching f, newest first.
func (m *Manager) Sessions(ctx context.Context, projectID string, f SessionFilter) ([]*Session, error) {
	f.ProjectID = projectID
	return m.withUsages(m.store.Sessions(ctx, f)) // usage.go
}

// Project returns a project the key may see: only its own (docs/COMPATIBILITY.md).
func (m *Manager) Project(ctx context.Context, keyProjectID, id string) (*Project, error) {
	if id != keyProjectID {
		return nil, Errorf(CodeNotFound, "Project not found")
	}
	return m.store.Project(ctx, id)
}

// Projects lists the projects the key may see.
func (m *Manager) Projects(ctx context.Context, keyProjectID string) ([]*Project, error) {
	p, err := m.store.Project(ctx, keyProjectID)
	if err != nil {
		return nil, err
	}
	return []*Project{p}, nil
}

// Usage returns a project's usage.
func (m *Manager) Usage(ctx context.Context, keyProjectID, id string) (ProjectUsage, error) {
	if _, err := m.Project(ctx, keyProjectID, id); err != nil {
		return ProjectUsage{}, err
	}
	return m.store.Usage(ctx, id, time.Now())
}

// CreateSession starts a session for the key's project and returns it RUNNING. ctx
// bounds only the wait for the browser; the browser itself belongs to the Manager.
func (m *Manager) CreateSession(ctx context.Context, keyProjectID string, req CreateSessionRequest) (_ *Session, err error) {
	defer m.observeCreate(keyProjectID, time.Now(), &err)
	if err := CheckProject(keyProjectID, req.ProjectID); err != nil {
		return nil, err
	}
	for _, part := range m.parts { // 4xx before anything is recorded
		if err := part.Check(ctx, keyProjectID, &req); err != nil {
			return nil, err
		}
	}
	if err := m.checkFreeDisk(); err != nil { // disk.go: 503 below the free-space floor
		return nil, err
	}
	p, err := m.store.Project(ctx, keyProjectID)
	if err != nil {
		return nil, fmt.Errorf("load project: %w", err)
	}
	if err := m.reserve(); err != nil {
		return nil, err
	}
	defer m.wg.Done() // reserve's Add: Close waits for creates in flight
	reserved := true
	defer func() {
		if reserved {
			m.unreserve()
		}
	}()

	s := m.newSession(p, req)
	defer m.startingCreate(s.ID)() // endrecord.go: the sweep leaves it alone until it is live
	if err := m.store.CreateSession(ctx, s, p.Concurrency); err != nil {
		return nil, err
	}
	m.emit(EventSessionCreated, s)

	opts := LaunchOptions{SessionID: s.ID, Viewport: m.viewportFor(&req), Args: m.launchArgs()}
	runs, err := m.prepareParts(ctx, s, &req, &opts)
	if err != nil {
		m.fail(s.ID, "prepare: "+err.Error())
		return nil, err
	}
	b, err := m.launch(ctx, opts)
	if err == nil {
		if err = startParts(ctx, runs, b); err != nil {
			if cerr := b.Close(context.WithoutCancel(ctx)); cerr != nil {
				m.log.Warn("close browser", "session_id", s.ID, "err", cerr)
			}
		}
	}
	if err != nil {
		endParts(context.WithoutCancel(ctx), runs)
		m.fail(s.ID, "launch: "+err.Error())
		if ctx.Err() != nil {
			return nil, fmt.Errorf("launch browser for session %s: %w", s.ID, ctx.Err())
		}
		if errors.Is(err, ErrLaunchArgs) { // validation should have caught it: the request's fault
			return nil, &Error{Code: CodeInvalid, NoRetry: true, Err: err,
				Message: "body/browserSettings could not be passed to the browser (an argument is too long or holds a NUL)"}
		}
		if CodeOf(err) == CodeUnavailable { // the launch's files (a context's snapshot) could not be read
			return nil, &Error{Code: CodeUnavailable, Retry: true, Err: err,
				Message: "the session's files (context, extension) are unavailable for now; retry later"}
		}
		return nil, &Error{Code: CodeInternal, Message: "the browser failed to start", Err: err}
	}
	ls := m.track(s, b, runs)
	reserved = false // the live session holds the reservation now
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed { // Close may have missed it; finish is idempotent
		m.finish(ls, StatusCompleted, "server shutting down")
		return nil, &Error{Code: CodeUnavailable, Message: "the server is shutting down", Err: ErrManagerClosed}
	}
	if reason, fenced := m.fencedNow(); fenced { // Fence may have missed it (member.go)
		m.fenceSession(ls, reason)
		return nil, &Error{Code: CodeUnavailable, Retry: true, Err: ErrFenced,
			Message: "This browserd node lost its cluster membership while the session started; retry on another node."}
	}

	started := time.Now().UTC().Truncate(time.Millisecond)
	s, err = m.store.UpdateSession(context.WithoutCancel(ctx), s.ID, func(cur *Session) error {
		if cur.Status.Terminal() {
			return errSessionEnded
		}
		cur.Status = StatusRunning
		cur.StartedAt = started
		cur.ExpiresAt = started.Add(time.Duration(cur.Timeout) * time.Second)
		cur.UpdatedAt = started
		cur.PID = b.PID()
		return nil
	})
	if errors.Is(err, errSessionEnded) {
		// Released (or crashed) while starting: report what the store says.
		m.finish(ls, StatusCompleted, "ended while starting")
		return m.store.Session(context.WithoutCancel(ctx), ls.id)
	} else if err != nil {
		m.finish(ls, StatusError, "store: "+err.Error())
		return nil, fmt.Errorf("mark session %s running: %w", ls.id, err)
	}
	m.arm(ls, s.ExpiresAt)
	m.emit(EventSessionRunning, s)
	m.log.Info("session started", "session_id", s.ID, "project_id", s.ProjectID, "pid", b.PID())
	return s, nil
}

// newSession is the PENDING record of a create in project p.
func (m *Manager) newSession(p *Project, req CreateSessionRequest) *Session {
	now := time.Now().UTC().Truncate(time.Millisecond)
	timeout := req.Timeout
	if timeout == 0 {
		timeout = p.DefaultTimeout
	}
	s := &Session{
		ID:              NewID(),
		ProjectID:       p.ID,
		Status:          StatusPending,
		CreatedAt:       now,
		UpdatedAt:       now,
		StartedAt:       now,
		ExpiresAt:       now.Add(time.Duration(timeout) * time.Second),
		KeepAlive:       req.KeepAlive,
		Region:          req.Region,
		Timeout:         timeout,
		ExtensionID:     req.ExtensionID,
		UserMetadata:    req.UserMetadata,
		BrowserSettings: req.BrowserSettings,
		Settings:        req.Settings,
		Request:         req.Raw,
		NodeID:          m.cfg.NodeID,
	}
	if s.Region == "" {
		s.Region = RegionUSWest2
	}
	if c := req.Settings.Context; c != nil {
		s.ContextID = c.ID
	}
	return s
}

// viewportFor is the viewport a create asks for, over the default.
func (m *Manager) viewportFor(req *CreateSessionRequest) Viewport {
	v := m.cfg.DefaultViewport
	if vp := req.Settings.Viewport; vp != nil {
		if vp.Width > 0 {
			v.Width = vp.Width
		}
		if vp.Height > 0 {
			v.Height = vp.Height
		}
	}
	return v
}

var errSessionEnded = errors.New("session already ended")

// ErrManagerClosed is the cause of work refused because the Manager is closing.
var ErrManagerClosed = errors.New("browserd: manager closed")

// fail marks a session that never ran as ERROR.
func (m *Manager) fail(id, reason string) {
	ctx, cancel := m.storeTimeout()
	defer cancel()
	end := &pendingEnd{status: StatusError, reason: reason, endedAt: time.Now()}
	if _, err := m.recordEnd(ctx, id, end); err != nil {
		end.err = err
		m.pendEnd(id, end) // endrecord.go: retried until stored
	}
	m.log.Warn("session failed to start", "session_id", id, "reason", reason)
}

// reserve takes one unit of node capacity and registers the caller with m.wg (under
// m.mu, so that it happens before Close's Wait); the caller must call m.wg.Done.
func (m *Manager) reserve() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return &Error{Code: CodeUnavailable, Message: "the server is shutting down", Err: ErrManagerClosed}
	}
	if err := m.refusal(); err != nil { // member.go: draining, fenced
		return err
	}
	if m.reserved >= m.cfg.MaxSessions {
		return &Error{Code: CodeLimit, Err: ErrNodeFull, Message: fmt.Sprintf(
			"This browserd node is at capacity (%d sessions). Try again when a session ends.", m.cfg.MaxSessions)}
	}
	m.reserved++
	m.wg.Add(1)
	return nil
}

func (m *Manager) unreserve() {
	m.mu.Lock()
	m.reserved--
	m.mu.Unlock()
}

// ReleaseSession ends a session of the project (REQUEST_RELEASE). It is idempotent: an
// ended session is returned as it is.
func (m *Manager) ReleaseSession(ctx context.Context, keyProjectID, id string) (*Session, error) {
	// No fresh usage sample: the answer carries the last one, and the final one is
	// measured once the answer is out, before the browser stops (finish).
	s, err := m.session(ctx, keyProjectID, id)
	if err != nil {
		return nil, err
	}
	if s.Status.Terminal() {
		return s, nil
	}
	m.mu.Lock()
	ls := m.live[id]
	m.mu.Unlock()
	if ls != nil {
		ended, err := m.finish(ls, StatusCompleted, "released")
		if err != nil {
			return nil, endNotRecorded(id, err) // 503: the end is retried (security-review F7)
		} else if ended != nil {
			return ended, nil
		}
		// Ending already (a timeout, a crash, another release): answer once its end
		// is recorded, or known not to be.
		select {
		case <-ls.recorded:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if p := m.pendingEndOf(id); p != nil {
		// Its browser is gone but its end is not stored: one more try, now.
		s, err := m.tryPendingEnd(id)
		if err != nil {
			return nil, endNotRecorded(id, err)
		} else if s != nil {
			return s, nil
		}
	}
	if ls != nil {
		return m.store.Session(ctx, id)
	}
	// Not running here: starting, or lost. Mark it in the store; a create still
	// launching sees the terminal status and stops its browser.
	s, err = m.endInStore(ctx, id, StatusCompleted, "released")
	if err != nil && CodeOf(err) == CodeInternal {
		return nil, endNotRecorded(id, err)
	}
	return s, err
}

func (m *Manager) endInStore(ctx context.Context, id string, status SessionStatus, reason string) (*Session, error) {
	return m.endInStoreWith(ctx, id, status, reason, nil)
}

// endInStoreWith is endInStore that also calls also (unless nil) on the ending record.
func (m *Manager) endInStoreWith(ctx context.Context, id string, status SessionStatus, reason string, also func(*Session)) (*Session, error) {
	s, err := m.store.UpdateSession(ctx, id, func(s *Session) error {
		if s.Status.Terminal() {
			return errSessionEnded
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		s.Status, s.EndedAt, s.UpdatedAt, s.EndReason = status, now, now, reason
		if also != nil {
			also(s)
		}
		return nil
	})
	if errors.Is(err, errSessionEnded) {
		return m.store.Session(ctx, id)
	}
	if err == nil {
		m.emit(EventSessionEnded, s)
	}
	return s, err
}

// Close ends every live session (COMPLETED, "server shutting down"), waits for their
// browsers to stop, and stops the Manager.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if !m.closed {
		close(m.closing)
	}
	m.closed = true
	if m.pool != nil {
		m.pool.stop() // its loop closes the warm browsers and returns
	}
	live := make([]*liveSession, 0, len(m.live))
	for _, ls := range m.live {
		live = append(live, ls)
	}
	m.mu.Unlock()
	for _, ls := range live {
		m.finish(ls, StatusCompleted, "server shutting down")
	}
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		m.cancel()
		return ctx.Err()
	}
	m.cancel()
	return nil
}
