package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/server"
)

// benchConfig holds the flags of `browserd bench`.
type benchConfig struct {
	quick          bool
	write          bool
	out            string
	tmpDir         string
	chromePath     string
	profileDir     string
	rounds         int
	heavyRounds    int
	createN        int
	lifecycleN     int
	rttCalls       int
	rttWarmup      int
	shots          int
	shotHeight     int
	apiConc        int
	apiDur         time.Duration
	burst          int
	burstGetters   int
	density        int
	densityMax     int
	densityStep    int
	settle         time.Duration
	minFreeMiB     int
	poolSize       int
	maxLaunches    int
	clientsN       int
	clientsRounds  int
	clientsPace    time.Duration
	compatDir      string
	clientsJSON    string
	node           string
	clusterDB      string
	clusterCreates int
	clusterConc    int
	serverArgs     []string
	phases         map[string]bool // nil: all

	args []string // as given, for the report
}

const benchUsage = `Usage: browserd bench [flags]

Starts its own browserd (temporary data dir, real Chromium, real SQLite, its own API key,
127.0.0.1:0) and bare Chromium with the same flags, measures create latency, the full
lifecycle (also as users run it: the official SDK and playwright-core, from compat/'s
npm packages, which the clients phase needs installed: npm ci --prefix compat), CDP round
trips, screenshot throughput, density, API throughput and, with --cluster-database, the cost of
a cluster's non-owner hop and create throughput on 1 and 3 nodes, prints a
table and writes it to docs/PERFORMANCE.md (between the bench markers; text outside
them is kept). --quick runs a smoke-test sized version in well under a minute.

Flags:
`

// parseBenchFlags parses args; --quick changes the defaults of the flags not given.
func parseBenchFlags(args []string, stderr io.Writer) (benchConfig, error) {
	c := benchConfig{args: args}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	fs.BoolVar(&c.quick, "quick", false, "smoke-test sizes (< 60 s); does not write the report unless --write is given")
	fs.BoolVar(&c.write, "write", true, "write the report to --out")
	fs.StringVar(&c.out, "out", filepath.Join("docs", "PERFORMANCE.md"), "report file")
	fs.StringVar(&c.tmpDir, "tmp-dir", "", "parent of the bench's temporary directory (default: $TMPDIR)")
	fs.StringVar(&c.chromePath, "chrome", "", "Chromium binary (default: as browserd serve finds it)")
	fs.StringVar(&c.profileDir, "profile-dir", "", "write a CPU profile of every phase here (go tool pprof)")
	fs.IntVar(&c.rounds, "rounds", 5, "repeated runs of each measurement; the table shows their median")
	fs.IntVar(&c.heavyRounds, "heavy-rounds", 3, "repeated runs of the create burst")
	fs.IntVar(&c.createN, "create-n", 10, "creates per round, warm and cold each")
	fs.IntVar(&c.lifecycleN, "lifecycle-n", 6, "lifecycles per round, browserd and bare each")
	fs.IntVar(&c.rttCalls, "rtt-calls", 2000, "Runtime.evaluate round trips per path per round")
	fs.IntVar(&c.rttWarmup, "rtt-warmup", 100, "untimed round trips per path before the first round")
	fs.IntVar(&c.shots, "shots", 3, "full-page screenshots per path per round")
	fs.IntVar(&c.shotHeight, "shot-height", 2000, "height of the noise canvas on the tall page, px")
	fs.IntVar(&c.apiConc, "api-conc", 16, "concurrent clients of GET /v1/sessions/{id}")
	fs.DurationVar(&c.apiDur, "api-duration", 3*time.Second, "length of one GET throughput round")
	fs.IntVar(&c.burst, "burst", 40, "creates sent at once in the burst")
	fs.IntVar(&c.burstGetters, "burst-getters", 4, "clients polling GET /v1/sessions/{id} during the burst")
	fs.IntVar(&c.density, "density", 20, "concurrent idle sessions compared with as many bare browsers")
	fs.IntVar(&c.densityMax, "density-max", 0, "then add sessions up to this many while healthy (0: no ramp)")
	fs.IntVar(&c.densityStep, "density-step", 20, "sessions added per ramp step")
	fs.DurationVar(&c.settle, "settle", 5*time.Second, "wait after starting browsers before measuring memory")
	fs.IntVar(&c.minFreeMiB, "min-free", 2048, "unhealthy (and the ramp stops) below this MemAvailable, MiB")
	fs.IntVar(&c.poolSize, "pool-size", 2, "warm pool size of the bench's server")
	fs.IntVar(&c.maxLaunches, "max-launches", 2, "browsers starting at the same time at most")
	fs.IntVar(&c.clientsN, "clients-n", 10, "clients phase: lifecycles per scenario per round (one block)")
	fs.IntVar(&c.clientsRounds, "clients-rounds", 2, "clients phase: rounds over every scenario")
	fs.DurationVar(&c.clientsPace, "clients-pace", 1500*time.Millisecond, "clients phase: pause between lifecycles of the paced scenarios (which run interleaved)")
	fs.StringVar(&c.compatDir, "compat-dir", "", "clients phase: the compat suite's directory, with node_modules from `npm ci` (default: compat/ in the working directory or a parent)")
	fs.StringVar(&c.node, "node", "node", "clients phase: the Node.js binary (20 or later)")
	fs.StringVar(&c.clientsJSON, "clients-json", "", "clients phase: also write every lifecycle's steps (the script's JSON) to this file")
	fs.StringVar(&c.clusterDB, "cluster-database", "", "cluster phase: an empty PostgreSQL database for its nodes, postgres://USER:PASS@HOST:PORT/DB?sslmode=disable (scripts/bench-cluster.sh starts one); without it the phase is skipped")
	fs.IntVar(&c.clusterCreates, "cluster-creates", 30, "cluster phase: creates (each then released) per round, with 1 node and with 3")
	fs.IntVar(&c.clusterConc, "cluster-conc", 3, "cluster phase: clients sending those creates back to back")
	serverArgs := fs.String("server-args", "", "more `browserd serve` flags, space-separated (e.g. --record-sessions=false)")
	phases := fs.String("phases", "", "comma-separated phases to run (create,lifecycle,clients,cdp,api,burst,density,cluster); default all; the report then has empty rows")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.serverArgs = strings.Fields(*serverArgs)
	if *phases != "" {
		c.phases = map[string]bool{}
		for p := range strings.SplitSeq(*phases, ",") {
			if !slices.Contains(benchPhaseNames, p) {
				return c, fmt.Errorf("unknown phase %q (phases: %s)", p, strings.Join(benchPhaseNames, ","))
			}
			c.phases[p] = true
		}
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := map[string]func(){
			"write":           func() { c.write = false },
			"rounds":          func() { c.rounds = 2 },
			"heavy-rounds":    func() { c.heavyRounds = 1 },
			"create-n":        func() { c.createN = 2 },
			"lifecycle-n":     func() { c.lifecycleN = 1 },
			"rtt-calls":       func() { c.rttCalls = 100 },
			"rtt-warmup":      func() { c.rttWarmup = 20 },
			"shots":           func() { c.shots = 1 },
			"shot-height":     func() { c.shotHeight = 300 },
			"api-conc":        func() { c.apiConc = 8 },
			"api-duration":    func() { c.apiDur = 300 * time.Millisecond },
			"burst":           func() { c.burst = 4 },
			"burst-getters":   func() { c.burstGetters = 2 },
			"density":         func() { c.density = 2 },
			"settle":          func() { c.settle = 300 * time.Millisecond },
			"clients-n":       func() { c.clientsN = 1 },
			"clients-rounds":  func() { c.clientsRounds = 1 },
			"cluster-creates": func() { c.clusterCreates = 3 },
		}
		for name, apply := range quick {
			if !set[name] {
				apply()
			}
		}
	}
	var errs []error
	for name, v := range map[string]int{"rounds": c.rounds, "heavy-rounds": c.heavyRounds, "create-n": c.createN,
		"lifecycle-n": c.lifecycleN, "rtt-calls": c.rttCalls, "shots": c.shots, "api-conc": c.apiConc,
		"burst": c.burst, "burst-getters": c.burstGetters, "density": c.density, "shot-height": c.shotHeight, "density-step": c.densityStep,
		"max-launches": c.maxLaunches, "clients-n": c.clientsN, "clients-rounds": c.clientsRounds,
		"cluster-creates": c.clusterCreates, "cluster-conc": c.clusterConc} {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1", name))
		}
	}
	if c.poolSize < 1 {
		errs = append(errs, errors.New("pool-size must be at least 1 (warm creates need the pool)"))
	}
	if c.rttWarmup < 0 || c.minFreeMiB < 0 || c.apiDur <= 0 || c.settle < 0 || c.clientsPace < 0 {
		errs = append(errs, errors.New("rtt-warmup, min-free, settle and clients-pace must not be negative, api-duration positive"))
	}
	if c.densityMax != 0 && c.densityMax < c.density {
		errs = append(errs, errors.New("density-max must be 0 or at least density"))
	}
	return c, errors.Join(errs...)
}

// benchPhaseNames are the phases in the order they run.
var benchPhaseNames = []string{"create", "lifecycle", "clients", "cdp", "api", "burst", "density", "cluster"}

// Run runs `browserd bench args…`: it starts browserd in-process (server.Main) and bare
// Chromium, measures both, prints the table to stdout and writes the report (unless
// --write=false), logging its progress to stderr. version is this build's, shown in the
// report. Errors in the flags match server.ErrUsage; -help prints them and returns nil.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, version string) error {
	cfg, err := parseBenchFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return server.UsageError(err)
	}
	chromePath, err := chrome.FindChrome(cfg.chromePath)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(cfg.tmpDir, "bench-")
	if err != nil {
		return fmt.Errorf("bench temp dir: %w", err)
	}
	defer os.RemoveAll(tmp) // everything in it is the bench's; errors do not change the result
	if cfg.profileDir != "" {
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			return fmt.Errorf("profile dir: %w", err)
		}
	}

	r := &benchRun{cfg: cfg, log: stderr, tmp: tmp, started: time.Now(), machine: benchMachineInfo(chromePath), version: version}
	r.logf("machine: %s", r.machine.summary())
	pages, err := startBenchPages(cfg.shotHeight)
	if err != nil {
		return err
	}
	defer pages.close()
	r.pages = pages
	srv, err := startBenchServer(ctx, benchServerConfig{
		dataDir:     filepath.Join(tmp, "s"),
		chromePath:  chromePath,
		poolSize:    cfg.poolSize,
		maxLaunches: cfg.maxLaunches,
		maxSessions: max(cfg.density, cfg.densityMax, cfg.burst) + cfg.poolSize + 8,
		log:         stderr,
		extraArgs:   cfg.serverArgs,
		version:     version,
	})
	if err != nil {
		return err
	}
	r.srv = srv
	defer func() {
		if cerr := srv.close(); cerr != nil {
			r.logf("close server: %v", cerr)
		}
	}()
	if err := srv.waitPoolFull(ctx); err != nil {
		return err
	}
	if err := r.initBare(ctx); err != nil {
		return err
	}

	phases := []struct {
		name string
		run  func(context.Context) error
	}{
		{"create", r.createPhase},
		{"lifecycle", r.lifecyclePhase},
		{"clients", r.clientsPhase},
		{"cdp", r.cdpPhase},
		{"api", r.apiPhase},
		{"burst", r.burstPhase},
		{"density", r.densityPhase},
		{"cluster", r.clusterPhase},
	}
	// A failed phase does not stop the others, so one run shows every problem; but
	// its report is not written over the last good one.
	var failed []error
	for _, p := range phases {
		if cfg.phases != nil && !cfg.phases[p.name] {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		start := time.Now()
		r.logf("phase %s", p.name)
		if err := r.profiled(p.name, func() error { return p.run(ctx) }); err != nil {
			r.logf("phase %s FAILED: %v", p.name, err)
			failed = append(failed, fmt.Errorf("phase %s: %w", p.name, err))
			continue
		}
		r.logf("phase %s done in %s", p.name, time.Since(start).Round(time.Millisecond))
	}
	r.machine.loadEnd = benchLoadAvg()
	r.elapsed = time.Since(r.started)

	rows := r.rows()
	fmt.Fprint(stdout, benchTextTable(rows))
	if len(failed) > 0 {
		return fmt.Errorf("bench failed; %s not written: %w", cfg.out, errors.Join(failed...))
	}
	if cfg.write {
		if err := writeBenchReport(cfg.out, r.markdown(rows)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote %s\n", cfg.out)
	}
	return nil
}

// profiled runs fn, with a CPU profile in profileDir/cpu-<name>.pprof when asked for.
func (r *benchRun) profiled(name string, fn func() error) error {
	if r.cfg.profileDir == "" {
		return fn()
	}
	f, err := os.Create(filepath.Join(r.cfg.profileDir, "cpu-"+name+".pprof"))
	if err != nil {
		return err
	}
	defer f.Close() // closed again below for its error; a double close is harmless
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	err = fn()
	pprof.StopCPUProfile()
	return errors.Join(err, f.Close())
}

// benchRun is one invocation of the bench: its environment and what it measured.
type benchRun struct {
	cfg     benchConfig
	version string // this build's, for the report
	log     io.Writer
	tmp     string
	srv     *benchServer
	pages   *benchPages
	bare    *benchBareTemplate
	started time.Time
	elapsed time.Duration
	machine benchMachine

	create    benchCreateResult
	lifecycle benchLifecycleResult
	clients   benchClientsResult
	cdp       benchCDPResult
	api       benchAPIResult
	burst     benchBurstResult
	density   benchDensityResult
	cluster   benchClusterResult
}

func (r *benchRun) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "bench %6.1fs  %s\n", time.Since(r.started).Seconds(), fmt.Sprintf(format, args...))
}

// initBare learns the exact command line the server's launcher uses, from a warm
// session's browser, so that bare Chromium runs with the same flags.
func (r *benchRun) initBare(ctx context.Context) error {
	s, _, err := r.srv.create(ctx, `{}`)
	if err != nil {
		return err
	}
	pid, err := r.srv.pid(ctx, s.ID)
	if err != nil {
		return err
	}
	r.bare, err = benchBareFromPID(pid, filepath.Join(r.tmp, "b"))
	if rerr := r.srv.releaseAndWait(ctx, s.ID, pid); rerr != nil {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return err
	}
	r.logf("bare chromium: %s %s", r.bare.path, strings.Join(r.bare.args, " "))
	return r.srv.waitPoolFull(ctx)
}
