// Command onboarding-bench is what `make bench` runs: the service started as `make run` starts
// it (on free ports, with a database of its own), driven over HTTP as the portal and invitees
// do, and measured against raw Temporal StartWorkflow on the same dev server in the same run.
// It writes docs/benchmarks.md (between its markers), test-artifacts/bench.txt and
// test-artifacts/bench.json. It exits non-zero only when the stack or a request fails.
//
//	onboarding-bench [-quick] [-temporal dev|cluster] [-n 800] [-n1 200] [-pending 10000] [-profile DIR] ...
//
// BENCH_QUICK=1 is -quick: about a minute, for development; it writes its Markdown to
// test-artifacts/bench.md and leaves docs/benchmarks.md alone unless -doc names it.
//
// -temporal cluster (or TEST_TEMPORAL=cluster; `make bench BENCH_FLAGS='-temporal cluster'`)
// runs everything against a Temporal cluster in `make cluster`'s shape instead of the dev
// server: temporal-server's four services as processes of their own on Postgres persistence and
// SQL visibility (devstack.StartTestTemporal; .bin/temporal-server, temporal-sql-tool and
// temporal-ui-server, which `make cluster-binaries` builds), in databases <bench database>_temporal
// and <bench database>_temporal_visibility dropped at the end. Raw StartWorkflow is measured on
// that cluster, so the ratios are to it. Such a run never touches docs/benchmarks.md: it prints
// its figures and writes test-artifacts/bench-cluster.txt, bench-cluster.json and (a preview of
// the doc's section) bench-cluster.md, and the processes' logs to test-artifacts/bench-cluster/.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/onboarding-service/onboarding/internal/devstack"
	"github.com/onboarding-service/onboarding/internal/testkit/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "onboarding-bench: %v\n", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) {
	fmt.Fprintf(os.Stdout, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, args []string) error {
	root, err := devstack.RepoRoot()
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("onboarding-bench", flag.ContinueOnError)
	quick := fs.Bool("quick", os.Getenv("BENCH_QUICK") == "1", "small samples (about a minute), for development; also BENCH_QUICK=1")
	n := fs.Int("n", 0, "operations per scenario at -callers callers (default 800; 60 with -quick)")
	n1 := fs.Int("n1", 0, "operations per single-caller scenario (default 200; 15 with -quick)")
	callers := fs.Int("callers", 16, "concurrent callers of the concurrent scenarios")
	pending := fs.Int("pending", -1, "pending invitations of the second phase; 0 skips it (default 10000; 300 with -quick)")
	fillCallers := fs.Int("fill-callers", 16, "concurrent callers filling the system with pending invitations (32 made the worker starve new workflows: see docs/benchmarks.md)")
	historyRuns := fs.Int("history-runs", 5, "happy paths whose history is read live")
	settle := fs.Duration("settle-timeout", 3*time.Minute, "longest wait for a scenario's emails before the next scenario")
	encrypt := fs.Bool("encrypt", true, "payload encryption on (PAYLOAD_ENCRYPTION_KEY), as production requires")
	profile := fs.String("profile", "", "directory for CPU profiles of the API and the worker (during the concurrent create), heap profiles and pg_stat_statements")
	profileSeconds := fs.Int("profile-seconds", 15, "length of the CPU profiles; the profiled create runs at least this long")
	doc := fs.String("doc", "", "the Markdown report whose generated section is rewritten (default docs/benchmarks.md; test-artifacts/bench.md with -quick)")
	text := fs.String("out", filepath.Join(root, "test-artifacts", "bench.txt"), "the raw figures")
	jsonPath := fs.String("json", filepath.Join(root, "test-artifacts", "bench.json"), "the raw figures as JSON (empty: none)")
	defaultTemporal := "dev"
	if devstack.ClusterMode() {
		defaultTemporal = "cluster"
	}
	temporal := fs.String("temporal", defaultTemporal, "the Temporal server: dev (the CLI's dev server) or cluster (make cluster's four processes on Postgres; reports to test-artifacts/bench-cluster.*, never docs/benchmarks.md); default cluster under TEST_TEMPORAL=cluster")
	cli := fs.String("temporal-cli", os.Getenv("TEMPORAL_CLI"), "the Temporal CLI (default .bin/temporal)")
	keep := fs.Bool("keep", false, "keep the bench database and the dev server's files afterwards")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *temporal != "dev" && *temporal != "cluster" {
		return fmt.Errorf("-temporal must be dev or cluster, not %q", *temporal)
	}
	cluster := *temporal == "cluster"
	// An unset count takes the full run's default, or the quick run's.
	size := func(v *int, unset, full, short int) {
		if *v == unset {
			*v = map[bool]int{false: full, true: short}[*quick]
		}
	}
	size(n, 0, 800, 60)
	size(n1, 0, 200, 15)
	size(pending, -1, 10000, 300)
	if *n < 1 || *n1 < 1 || *callers < 1 || *fillCallers < 1 || *pending < 0 {
		return fmt.Errorf("-n, -n1, -callers and -fill-callers must be positive, -pending at least 0")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	artifacts := filepath.Join(root, "test-artifacts", "bench")
	if cluster {
		// The cluster's figures go beside the dev server's, never over them.
		artifacts += "-cluster"
		if !set["out"] {
			*text = filepath.Join(root, "test-artifacts", "bench-cluster.txt")
		}
		if !set["json"] {
			*jsonPath = filepath.Join(root, "test-artifacts", "bench-cluster.json")
		}
		if !set["doc"] {
			*doc = filepath.Join(root, "test-artifacts", "bench-cluster.md")
		}
		if d := *doc; d != "" {
			if !filepath.IsAbs(d) {
				d = filepath.Join(root, d)
			}
			if filepath.Clean(d) == filepath.Join(root, "docs", "benchmarks.md") {
				return fmt.Errorf("-temporal cluster does not write docs/benchmarks.md (its table is the dev server's); leave -doc unset for test-artifacts/bench-cluster.md")
			}
		}
	}
	switch {
	case set["doc"] || cluster:
	case *quick: // a preview of the doc that leaves the committed one alone
		*doc = filepath.Join(root, "test-artifacts", "bench.md")
	default:
		*doc = filepath.Join("docs", "benchmarks.md")
	}
	if *cli == "" {
		*cli = filepath.Join(root, ".bin", "temporal")
	} else if !filepath.IsAbs(*cli) {
		*cli = filepath.Join(root, *cli)
	}
	if _, err := os.Stat(*cli); err != nil {
		return fmt.Errorf("temporal CLI not found at %s: `make temporal-cli` builds it", *cli)
	}
	if *profile != "" && !filepath.IsAbs(*profile) {
		*profile = filepath.Join(root, *profile)
	}
	command := "onboarding-bench " + strings.Join(args, " ")
	if os.Getenv("MAKELEVEL") != "" {
		command = "make bench"
		if os.Getenv("BENCH_QUICK") == "1" {
			command += " BENCH_QUICK=1"
		}
		if f := os.Getenv("BENCH_FLAGS"); f != "" {
			command += " BENCH_FLAGS='" + f + "'"
		}
	}
	if cluster && !set["temporal"] {
		command = "TEST_TEMPORAL=cluster " + command
	}
	return bench.Run(ctx, bench.Options{
		N: *n, N1: *n1, Callers: *callers, Pending: *pending, FillCallers: *fillCallers,
		HistoryRuns: *historyRuns, SettleTimeout: *settle, Quick: *quick, Encrypt: *encrypt,
		Cluster: cluster, Echo: cluster,
		ProfileDir: *profile, ProfileSeconds: *profileSeconds,
		Root: root, DocPath: *doc, TextPath: *text, JSONPath: *jsonPath,
		Artifacts:   artifacts,
		TemporalCLI: *cli, DatabaseURL: os.Getenv("DATABASE_URL"), Keep: *keep,
		Command: strings.TrimSpace(command), Say: say,
	})
}
