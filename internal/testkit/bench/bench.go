// Package bench is `make bench`: it starts the service as `make run` does, on free ports and a
// database of its own, drives it over HTTP as the portal and invitees do, and measures raw
// Temporal (StartWorkflow, no worker) on the same dev server in the same run, so that every
// figure is a ratio to the engine (DESIGN.md, "Speed is measured against the engine"). It
// writes docs/benchmarks.md (a generated section between markers) and test-artifacts/bench.txt.
// With Options.Cluster (onboarding-bench -temporal cluster) the server is instead a Temporal
// cluster as `make cluster` runs it (devstack.StartTestTemporal: four processes on Postgres
// persistence and SQL visibility), raw Temporal measured on that cluster; the command then
// leaves docs/benchmarks.md alone and writes test-artifacts/bench-cluster.txt.
// It never judges a duration: it fails only when the stack or a request does.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/onboarding-service/onboarding/internal/devstack"
)

// Options configure one run; the command's flags set them.
type Options struct {
	// N is the number of operations of each scenario at Callers callers; N1 of each scenario
	// with one caller.
	N, N1   int
	Callers int
	// Pending is how many pending invitations the second phase runs beside; 0 skips it.
	Pending     int
	FillCallers int
	// HistoryRuns is how many happy paths' histories are read live.
	HistoryRuns int
	// SettleTimeout bounds the wait for a scenario's emails before the next one starts.
	SettleTimeout time.Duration
	Quick         bool
	// Encrypt runs the API and the worker with payload encryption, as production must.
	Encrypt bool
	// Cluster runs on a Temporal cluster on Postgres (`make cluster`'s shape) instead of the
	// CLI's dev server; raw Temporal is measured on that cluster.
	Cluster bool
	// Echo prints the text report (TextPath's) to stdout as well.
	Echo bool
	// ProfileDir, when set, receives CPU profiles of the API and the worker taken over
	// ProfileSeconds of the 16-caller create, heap profiles after each phase, and Postgres'
	// top statements when pg_stat_statements is loaded.
	ProfileDir     string
	ProfileSeconds int
	// Root is the repository; DocPath (relative to it, empty = none), TextPath and JSONPath
	// are where the report goes.
	Root                        string
	DocPath, TextPath, JSONPath string
	Artifacts                   string
	TemporalCLI                 string
	DatabaseURL                 string
	Keep                        bool
	Command                     string
	Say                         func(format string, args ...any)
}

// Run starts the stack, runs every scenario, writes the report and stops the stack. The
// report files are written even when a scenario fails (with the failure in them), except
// docs/benchmarks.md, which only a complete run rewrites.
func Run(ctx context.Context, o Options) (err error) {
	r := &runner{opts: o, runID: randomHex(3), ownPids: map[int]bool{}, report: &Report{Started: time.Now(), Command: o.Command, Quick: o.Quick}}
	r.report.LoadStart = loadAverage()
	st, err := startStack(ctx, stackOptions{
		root: o.Root, temporalCLI: o.TemporalCLI, artifacts: o.Artifacts, baseDatabaseURL: o.DatabaseURL,
		encrypt: o.Encrypt, keep: o.Keep, cluster: o.Cluster, say: o.Say,
	})
	if err != nil {
		return fmt.Errorf("starting the stack: %w", err)
	}
	defer st.stop()
	r.st = st
	r.report.Machine = describeMachine(ctx, o.Root, o.TemporalCLI, st.dbURL)
	r.report.Settings = st.settingsSummary()
	r.report.Temporal = st.temporalKind()
	if st.cluster != nil {
		r.report.Machine.TemporalServer = devstack.TemporalServerVersion
	}
	var runCPU cpuSample
	defer func() {
		if r.db != nil {
			defer r.db.Close() // after the last CPU sample, which asks Postgres for the stack's backends
		}
		r.report.Took = time.Since(r.report.Started)
		r.report.LoadEnd = loadAverage()
		if rs := st.temporalRestarts(); rs != "" {
			r.note("the Temporal cluster's Keepers restarted services during the run (" + rs + "): see their logs in " + filepath.Join(o.Artifacts, "cluster", "logs"))
		}
		if !runCPU.at.IsZero() {
			end := r.sampleCPU(ctx)
			r.report.OthersCPU = othersShare(runCPU, end)
			r.report.Busy = busiestOthers(runCPU, end, r.ownPids)
		}
		if r.prof != nil {
			r.report.Notes = append(r.report.Notes, r.prof.Notes...)
			r.report.Profiles = r.prof.Files
		}
		if err != nil {
			r.report.Failure = err.Error()
		}
		if werr := r.write(err == nil); werr != nil && err == nil {
			err = werr
		}
	}()

	if r.db, err = pgxpool.New(ctx, withParam(st.dbURL, "application_name", "bench-runner")); err != nil {
		return err
	}
	runCPU = r.sampleCPU(ctx)
	if o.ProfileDir != "" {
		targets := map[string]string{"api": st.apiPprof, "worker": st.workerPprof}
		if r.prof, err = newProfiler(o.ProfileDir, o.ProfileSeconds, targets, st.dbURL, o.Say); err != nil {
			return err
		}
	}
	r.portal = newPortal(st.apiURL, st.apiToken)
	if r.fix, err = r.portal.setUp(ctx, o.Callers); err != nil {
		return fmt.Errorf("setting up the account: %w", err)
	}

	empty, accepted, err := r.phase(ctx, "empty", "Empty system")
	r.report.Phases = append(r.report.Phases, empty)
	if err != nil {
		return err
	}
	if err := r.happyPathHistories(ctx, accepted[:min(len(accepted), o.HistoryRuns)]); err != nil {
		return fmt.Errorf("live histories: %w", err)
	}
	recorded, err := recordedHistories(filepath.Join(o.Root, "workflows", "testdata", "histories"))
	if err != nil {
		return fmt.Errorf("recorded histories: %w", err)
	}
	r.report.Histories = append(r.report.Histories, recorded...)
	if err := r.emailModes(ctx); err != nil {
		return err
	}

	if o.Pending > 0 {
		if err := r.fill(ctx, o.Pending); err != nil {
			return fmt.Errorf("filling: %w", err)
		}
		full, _, err := r.phase(ctx, "pending", fmt.Sprintf("With %d pending invitations", o.Pending))
		r.report.Phases = append(r.report.Phases, full)
		if err != nil {
			return err
		}
	}
	return nil
}

// write writes bench.txt and bench.json, and, after a complete run, the doc's section.
func (r *runner) write(complete bool) error {
	o := r.opts
	if err := os.MkdirAll(filepath.Dir(o.TextPath), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(o.TextPath, []byte(renderText(r.report)), 0o644); err != nil {
		return err
	}
	o.Say("wrote %s", o.TextPath)
	if o.Echo {
		fmt.Fprint(os.Stdout, "\n"+renderText(r.report)+"\n")
	}
	if o.JSONPath != "" {
		b, err := json.MarshalIndent(r.report, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.JSONPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if !complete || o.DocPath == "" {
		return nil
	}
	path := o.DocPath
	if !filepath.IsAbs(path) {
		path = filepath.Join(o.Root, path)
	}
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(rewriteDoc(string(old), renderMarkdown(r.report))), 0o644); err != nil {
		return err
	}
	o.Say("wrote %s", path)
	return nil
}
