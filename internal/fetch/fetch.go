package fetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	bb "github.com/browserd/browserd"
)

// Defaults of Config's limits, also the flags' (internal/server).
const (
	// DefaultMaxSize is Browserbase's documented content limit (5 MB): a client that
	// works there works here.
	DefaultMaxSize = 5 << 20
	// DefaultTimeout bounds a fetch, redirects included; the SDK gives up after 60 s.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxConcurrent bounds the fetches running on a node.
	DefaultMaxConcurrent = 16
	// DefaultMaxPerProject bounds the fetches of one project running on a node, so
	// that one API key cannot take every slot.
	DefaultMaxPerProject = 8
	// DefaultMaxConversions bounds the HTML-to-Markdown conversions running at once on a
	// node: a 5 MiB page takes seconds of CPU and ~350 MB of allocations
	// (BenchmarkMarkdown), which the fetch concurrency alone would multiply by 16.
	DefaultMaxConversions = 2
	// MaxRedirects is how many redirects a fetch with allowRedirects follows, as
	// browsers and Go's client do.
	MaxRedirects = 10
)

// DefaultUserAgent is sent when Config.UserAgent is empty. Browserbase sends a real
// browser's; so does the server (the Chromium it runs).
const DefaultUserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36"

// Config configures a Fetcher.
type Config struct {
	// Dial connects to addr (host:port) directly when u is nil, else through u; required.
	// It enforces the address policy: a refusal must be a *bb.Error (CodeForbidden)
	// whose message says why, which the client sees.
	Dial func(ctx context.Context, u *bb.ProxyUpstream, addr string) (net.Conn, error)
	// Upstreams are the operator's managed proxies behind proxies:true, used in turn;
	// without any, proxies:true is refused (400).
	Upstreams []bb.ProxyUpstream
	// MaxSize bounds a response body, after decompression [DefaultMaxSize]; a larger
	// one is a 502.
	MaxSize int64
	// Timeout bounds a fetch from the first dial to the last byte, redirects included
	// [DefaultTimeout]; past it the answer is a 504.
	Timeout time.Duration
	// MaxConcurrent bounds the fetches running at once [DefaultMaxConcurrent];
	// MaxPerProject those of one project [DefaultMaxPerProject]. Past them: 429.
	MaxConcurrent, MaxPerProject int
	// MaxConversions bounds the HTML-to-Markdown conversions (format markdown and json)
	// running at once [DefaultMaxConversions]; a fetch waits for a slot within its
	// Timeout (504 past it).
	MaxConversions int
	// UserAgent is the User-Agent header of every fetch [DefaultUserAgent].
	UserAgent string
	// Extractor serves format "json"; nil refuses it (400, no model configured).
	Extractor *Extractor
	// Logger gets one "fetch" line per fetch (the project's usage) ; nil discards.
	Logger *slog.Logger
	// Observe, when set, is called once per fetch that passed the limits (metrics).
	Observe func(Record)
}

// Record is what a fetch did, for usage and metrics.
type Record struct {
	ProjectID string
	Format    bb.FetchFormat
	Proxied   bool
	// Outcome is ok (the site answered, whatever its status), refused (the address
	// policy), too_large, timeout, unprocessable (content the format cannot take),
	// extract_failed (the model), or error (the site could not be reached or read).
	Outcome  string
	Status   int   // the site's status; 0 when it did not answer
	Bytes    int64 // body bytes read from the site
	Duration time.Duration
}

// Fetcher fetches URLs for projects. Create it with New; it is safe for concurrent use.
type Fetcher struct {
	cfg Config
	log *slog.Logger
	// transports[i][insecure]: i = 0 direct, i > 0 through Upstreams[i-1]. Separate
	// transports keep a connection made without certificate checks from serving a
	// fetch that wants them.
	transports [][2]*http.Transport
	next       atomic.Uint64 // round-robin over Upstreams
	convert    chan struct{} // a slot per running HTML-to-Markdown conversion

	mu         sync.Mutex
	running    int
	perProject map[string]int
}

// New returns a Fetcher for cfg.
func New(cfg Config) (*Fetcher, error) {
	if cfg.Dial == nil {
		return nil, errors.New("fetch: Config.Dial is required")
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.MaxPerProject <= 0 {
		cfg.MaxPerProject = DefaultMaxPerProject
	}
	if cfg.MaxConversions <= 0 {
		cfg.MaxConversions = DefaultMaxConversions
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	f := &Fetcher{cfg: cfg, log: cfg.Logger, perProject: make(map[string]int), convert: make(chan struct{}, cfg.MaxConversions)}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.transports = append(f.transports, [2]*http.Transport{f.transport(nil, false), f.transport(nil, true)})
	for i := range cfg.Upstreams {
		u := &cfg.Upstreams[i]
		f.transports = append(f.transports, [2]*http.Transport{f.transport(u, false), f.transport(u, true)})
	}
	return f, nil
}

func (f *Fetcher) transport(u *bb.ProxyUpstream, insecure bool) *http.Transport {
	return &http.Transport{
		Proxy: nil, // never the environment's: the route is Dial's
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return f.cfg.Dial(ctx, u, addr)
		},
		// #nosec G402 -- only for a fetch whose client asked for allowInsecureSsl.
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: insecure, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        30 * time.Second,
		MaxResponseHeaderBytes: 256 << 10,
	}
}

// Close closes the idle connections.
func (f *Fetcher) Close() {
	for _, ts := range f.transports {
		ts[0].CloseIdleConnections()
		ts[1].CloseIdleConnections()
	}
}

// acquire takes a slot for projectID, or fails with CodeLimit.
func (f *Fetcher) acquire(projectID string) (release func(), err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running >= f.cfg.MaxConcurrent {
		return nil, bb.Errorf(bb.CodeLimit, "this server is running %d fetches, its limit (--fetch-concurrency); retry shortly", f.running)
	}
	if f.perProject[projectID] >= f.cfg.MaxPerProject {
		return nil, bb.Errorf(bb.CodeLimit, "this project is running %d fetches on this server, its limit per project (--fetch-project-concurrency); retry shortly", f.perProject[projectID])
	}
	f.running++
	f.perProject[projectID]++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.running--
		if f.perProject[projectID]--; f.perProject[projectID] <= 0 {
			delete(f.perProject, projectID)
		}
	}, nil
}

// Fetch fetches req.URL for projectID and returns the response in req.Format.
func (f *Fetcher) Fetch(ctx context.Context, projectID string, req bb.FetchRequest) (*bb.FetchResult, error) {
	var schema *compiledSchema
	if req.Format == bb.FetchJSON { // before anything is fetched: a refusal costs nothing
		if f.cfg.Extractor == nil {
			return nil, bb.Errorf(bb.CodeInvalid, "format \"json\" needs a model, and this browserd server has none: its operator can configure an OpenAI-compatible endpoint with --llm-url and --llm-model (key in BROWSERD_LLM_API_KEY); use format \"raw\" or \"markdown\" meanwhile")
		}
		var err error
		if schema, err = compileSchema(req.Schema); err != nil {
			return nil, err
		}
	}
	upstream := 0
	if req.Proxies {
		if len(f.cfg.Upstreams) == 0 {
			return nil, bb.Errorf(bb.CodeInvalid, "body/proxies: this server has no managed proxies; its operator can configure them with --proxy-upstream")
		}
		upstream = 1 + int(f.next.Add(1)%uint64(len(f.cfg.Upstreams)))
	}
	release, err := f.acquire(projectID)
	if err != nil {
		return nil, err
	}
	defer release()

	start := time.Now()
	rec := Record{ProjectID: projectID, Format: req.Format, Proxied: req.Proxies, Outcome: "ok"}
	res, err := f.fetch(ctx, req, upstream, &rec, schema)
	rec.Duration = time.Since(start)
	if err != nil {
		rec.Outcome = outcomeOf(err)
	}
	f.log.InfoContext(ctx, "fetch", "project_id", projectID, "host", req.URL.Hostname(), "format", string(req.Format),
		"proxied", req.Proxies, "outcome", rec.Outcome, "status", rec.Status, "bytes", rec.Bytes, "duration", rec.Duration)
	if f.cfg.Observe != nil {
		f.cfg.Observe(rec)
	}
	return res, err
}

// fetch does the request and converts the answer; rec gets the status and size.
func (f *Fetcher) fetch(ctx context.Context, req bb.FetchRequest, upstream int, rec *Record, schema *compiledSchema) (*bb.FetchResult, error) {
	fctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	insecure := 0
	if req.AllowInsecureSSL {
		insecure = 1
	}
	current := req.URL // the URL of the hop being fetched, for errors
	client := &http.Client{
		Transport: f.transports[upstream][insecure],
		CheckRedirect: func(next *http.Request, via []*http.Request) error {
			if !req.AllowRedirects {
				return http.ErrUseLastResponse // the 3xx is the answer, as Browserbase's default
			}
			if len(via) > MaxRedirects {
				return bb.Errorf(bb.CodeBadGateway, "%s redirected more than %d times", req.URL.Redacted(), MaxRedirects)
			}
			if next.URL.Scheme != "http" && next.URL.Scheme != "https" {
				return bb.Errorf(bb.CodeForbidden, "%s redirected to a %s: URL; only http and https are fetched", current.Redacted(), next.URL.Scheme)
			}
			current = next.URL
			return nil
		},
	}
	hreq, err := http.NewRequestWithContext(fctx, http.MethodGet, req.URL.String(), nil)
	if err != nil {
		return nil, bb.Errorf(bb.CodeInvalid, "body/url cannot be requested: %v", err)
	}
	hreq.Header.Set("User-Agent", f.cfg.UserAgent)
	hreq.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	hreq.Header.Set("Accept-Language", "en-US,en;q=0.9")
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, f.failure(ctx, fctx, req.URL, current, err)
	}
	defer resp.Body.Close()
	rec.Status = resp.StatusCode
	if resp.ContentLength > f.cfg.MaxSize {
		return nil, f.tooLarge(current)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxSize+1))
	rec.Bytes = int64(len(body))
	if err != nil {
		return nil, f.failure(ctx, fctx, req.URL, current, err)
	}
	if int64(len(body)) > f.cfg.MaxSize {
		return nil, f.tooLarge(current)
	}
	res := &bb.FetchResult{
		ID:          bb.NewID(),
		ContentType: resp.Header.Get("Content-Type"),
		Headers:     flattenHeaders(resp.Header),
		StatusCode:  resp.StatusCode,
	}
	c := decodeContent(res.ContentType, body)
	switch req.Format {
	case bb.FetchRaw:
		res.Content, res.Encoding = c.raw()
	case bb.FetchMarkdown:
		if res.Content, err = f.markdown(ctx, fctx, c, resp.Request.URL); err != nil {
			return nil, err
		}
		res.Encoding = "utf-8"
	case bb.FetchJSON:
		page, err := f.markdown(ctx, fctx, c, resp.Request.URL)
		if err != nil {
			return nil, err
		}
		if res.Extracted, err = f.cfg.Extractor.Extract(ctx, resp.Request.URL, page, schema); err != nil {
			return nil, err
		}
		res.Encoding = "utf-8"
	}
	return res, nil
}

// markdown converts c within the conversion limit: an HTML page waits for a slot
// until fctx's deadline (a 504 past it); the conversion itself is not interrupted.
func (f *Fetcher) markdown(ctx, fctx context.Context, c content, base *url.URL) (string, error) {
	if c.isText && c.isHTML() {
		select {
		case f.convert <- struct{}{}:
			defer func() { <-f.convert }()
		case <-fctx.Done():
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return "", &bb.Error{Code: bb.CodeTimeout, Err: fctx.Err(),
				Message: fmt.Sprintf("the page was fetched, but converting it to Markdown did not start within %s, this server's limit for a fetch (--fetch-timeout): the server is converting other large pages; retry shortly", f.cfg.Timeout)}
		}
	}
	return c.markdown(base)
}

func (f *Fetcher) tooLarge(u *url.URL) error {
	return &bb.Error{Code: bb.CodeBadGateway, NoRetry: true, Err: errTooLarge,
		Message: fmt.Sprintf("the response of %s is larger than %d bytes, this server's limit for a fetch (--fetch-max-size); use a browser session for it", u.Redacted(), f.cfg.MaxSize)}
}
