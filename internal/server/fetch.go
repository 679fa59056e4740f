package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/fetch"
	"github.com/browserd/browserd/internal/httpapi"
	"github.com/browserd/browserd/internal/metrics"
	"github.com/browserd/browserd/internal/proxy"
)

// LLMAPIKeyEnv is the environment variable of the model endpoint's key (never a flag,
// which `ps` would show).
const LLMAPIKeyEnv = "BROWSERD_LLM_API_KEY"

// FetchFlags configure POST /v1/fetch (internal/fetch; docs/SECURITY.md, "Fetch").
type FetchFlags struct {
	MaxSize            int64         // response body limit, bytes
	Timeout            time.Duration // one fetch, redirects included
	Concurrency        int           // fetches at once on this node; 0 turns fetching off
	ProjectConcurrency int           // fetches at once of one project on this node; 0 = Concurrency
	LLMURL, LLMModel   string        // the OpenAI-compatible endpoint behind format "json"; "" = none
	LLMTimeout         time.Duration
	LLMAPIKey          string // from LLMAPIKeyEnv
}

func defaultFetchFlags() FetchFlags {
	return FetchFlags{
		MaxSize: fetch.DefaultMaxSize, Timeout: fetch.DefaultTimeout,
		Concurrency: fetch.DefaultMaxConcurrent, ProjectConcurrency: fetch.DefaultMaxPerProject,
		LLMTimeout: fetch.DefaultExtractTimeout,
	}
}

// flags defines the flags of FetchFlags.
func (ff *FetchFlags) flags(f flagTable) {
	f.size(&ff.MaxSize, "fetch-max-size", "POST /v1/fetch: largest response body read (bytes, or with KiB/MiB/GiB); a larger one answers 502")
	f.dur(&ff.Timeout, "fetch-timeout", "POST /v1/fetch: time for one fetch, from the first connection to the last byte, redirects included; past it 504")
	f.num(&ff.Concurrency, "fetch-concurrency", "POST /v1/fetch: fetches running at once on this node, more answer 429; 0 turns POST /v1/fetch off (501)")
	f.num(&ff.ProjectConcurrency, "fetch-project-concurrency", "POST /v1/fetch: fetches of one project running at once on this node, more answer 429; 0 = fetch-concurrency")
	f.str(&ff.LLMURL, "llm-url", "POST /v1/fetch with format json: base URL of an OpenAI-compatible API (e.g. https://api.openai.com/v1; requests go to …/chat/completions), its key in "+LLMAPIKeyEnv+"; without it format json answers 400")
	f.str(&ff.LLMModel, "llm-model", "POST /v1/fetch with format json: the model to ask at llm-url")
	f.dur(&ff.LLMTimeout, "llm-timeout", "POST /v1/fetch with format json: time for the model's answer; past it 504")
}

// validate checks the fetch flags.
func (ff FetchFlags) validate() []error {
	var errs []error
	if ff.MaxSize < 1 {
		errs = append(errs, errors.New("fetch-max-size must be at least 1 byte"))
	}
	if ff.Timeout <= 0 || ff.LLMTimeout <= 0 {
		errs = append(errs, errors.New("fetch-timeout and llm-timeout must be positive"))
	}
	if ff.Concurrency < 0 || ff.ProjectConcurrency < 0 {
		errs = append(errs, errors.New("fetch-concurrency and fetch-project-concurrency must not be negative"))
	}
	if (ff.LLMURL == "") != (ff.LLMModel == "") {
		errs = append(errs, errors.New("llm-url and llm-model go together: set both, or neither"))
	}
	if ff.LLMURL != "" {
		if u, err := url.Parse(ff.LLMURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("llm-url must be an absolute http(s) URL"))
		}
	}
	return errs
}

// newFetcher wires POST /v1/fetch: the session proxies' address policy (private
// networks as --allow-private-networks, the server's own ports never), the managed
// upstreams, the model, the metrics and the log. It returns nil when fetching is off.
// resolve replaces DNS in tests; nil uses the system's.
//
// usage, when set, is given the body bytes of every fetch that went through a managed
// proxy, for the project's proxyBytes.
func newFetcher(cfg Config, reserved *bb.ReservedPorts, chromeVersion string, m *metrics.Fetches, usage func(projectID string, n int64),
	resolve func(ctx context.Context, host string) ([]netip.Addr, error), logger *slog.Logger) (*fetch.Fetcher, error) {
	ff := cfg.Fetch
	if ff.Concurrency == 0 {
		return nil, nil
	}
	ups, err := parseUpstreams(cfg.ProxyUpstream)
	if err != nil {
		return nil, err
	}
	for i := range ups {
		ups[i].Managed = true // the operator's: reached wherever they are, as for sessions
	}
	allowPrivate := cfg.Sandbox.AllowPrivateNetworks
	d := proxy.NewDialer(proxy.Config{AllowPrivate: allowPrivate, Reserved: reserved, Resolve: resolve})
	fc := fetch.Config{
		Dial: func(ctx context.Context, u *bb.ProxyUpstream, addr string) (net.Conn, error) {
			c, err := d.Dial(ctx, u, addr)
			if err != nil {
				return nil, fetchDialError(err)
			}
			return c, nil
		},
		Upstreams:     ups,
		MaxSize:       ff.MaxSize,
		Timeout:       ff.Timeout,
		MaxConcurrent: ff.Concurrency,
		MaxPerProject: ff.ProjectConcurrency,
		UserAgent:     fetchUserAgent(chromeVersion),
		Logger:        logger,
	}
	if fc.MaxPerProject == 0 {
		fc.MaxPerProject = ff.Concurrency
	}
	fc.Observe = func(r fetch.Record) {
		if m != nil {
			m.Observe(r.ProjectID, string(r.Format), r.Outcome, r.Bytes, r.Duration)
		}
		if usage != nil && r.Proxied && r.Bytes > 0 {
			usage(r.ProjectID, r.Bytes)
		}
	}
	if ff.LLMURL != "" {
		fc.Extractor, err = fetch.NewExtractor(fetch.ExtractorConfig{
			URL: ff.LLMURL, Model: ff.LLMModel, APIKey: ff.LLMAPIKey, Timeout: ff.LLMTimeout, Logger: logger,
		})
		if err != nil {
			return nil, err
		}
	}
	return fetch.New(fc)
}

// fetchDialError is the API's answer to a refused or failed connection of a fetch: the
// policy's refusal as 403 (400 for a host that is no valid name or address), saying why
// and, for private addresses, how the operator opens them.
func fetchDialError(err error) error {
	if errors.Is(err, proxy.ErrUpstreamAuth) {
		return &bb.Error{Code: bb.CodeBadGateway, Err: err, Message: "this server's managed proxy (--proxy-upstream) refused the server's credentials"}
	}
	be, ok := errors.AsType[*proxy.BlockedError](err)
	if !ok {
		return err
	}
	target := net.JoinHostPort(be.Host, strconv.Itoa(int(be.Port)))
	what := target + " resolves to " + be.Addr.String() + " (" + string(be.Class) + ")"
	if a, perr := netip.ParseAddr(be.Host); perr == nil && a.WithZone("") == be.Addr {
		what = target + " is " + string(be.Class)
	}
	switch {
	case be.BadHost:
		return &bb.Error{Code: bb.CodeInvalid, Err: err, Message: fmt.Sprintf("the host %q is not a valid host name or IP address (write IPv4 addresses as four decimal numbers, IPv6 ones in brackets)", be.Host)}
	case be.ServerPort:
		return &bb.Error{Code: bb.CodeForbidden, Err: err, Message: what + ", and its port is one this browserd server listens on itself; fetches never reach the server's own ports"}
	}
	return &bb.Error{Code: bb.CodeForbidden, Err: err, Message: what + ", not a public address, which this server does not fetch; " +
		strings.Replace(proxy.AllowPrivateHint, "allow private networks", "allow private networks (for fetches and browsers alike)", 1)}
}

// fetchUserAgent is the User-Agent of fetches: that of the Chromium the server runs,
// in Chrome's reduced form (major version only), as Browserbase sends a browser's.
func fetchUserAgent(chromeVersion string) string {
	major, _, _ := strings.Cut(chromeVersion, ".")
	if _, err := strconv.Atoi(major); err != nil {
		return ""
	}
	return "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/" + major + ".0.0.0 Safari/537.36"
}

// openFetch builds the fetcher of POST /v1/fetch into api (left without one when
// fetching is off), with its metrics on o's registry; Close closes its connections.
func (m *Main) openFetch(cfg Config, o *ops, reserved *bb.ReservedPorts, chromeVersion string, logger *slog.Logger, api *httpapi.Config) error {
	fm, err := metrics.NewFetches(o.reg)
	if err != nil {
		return err
	}
	// The bytes a fetch read through a managed proxy count in the project's proxyBytes
	// (GET /v1/projects/{id}/usage), as a session's proxy traffic does.
	usage := func(projectID string, n int64) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.DB.AddFetchProxyBytes(ctx, projectID, n); err != nil {
			logger.Error("fetch proxy bytes not counted in the project's usage", "project_id", projectID, "bytes", n, "err", err)
		}
	}
	f, err := newFetcher(cfg, reserved, chromeVersion, fm, usage, nil, logger)
	if err != nil || f == nil {
		return err
	}
	m.onClose(func(context.Context) error { f.Close(); return nil })
	api.Fetch = f
	return nil
}
