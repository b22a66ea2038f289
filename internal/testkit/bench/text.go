package bench

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// renderText renders test-artifacts/bench.txt: every raw figure, in milliseconds and KiB.
func renderText(r *Report) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("onboarding bench, %s, took %s\n", r.Started.UTC().Format(time.RFC3339), r.Took.Round(time.Second))
	w("command: %s\n", r.Command)
	if r.Quick {
		w("quick mode\n")
	}
	m := r.Machine
	w("machine: %d CPUs, %s, %s, %s, %s, Temporal CLI %s, PostgreSQL %s, commit %s\n",
		m.CPUs, m.CPUModel, m.MemTotal, m.OS, m.GoVersion, m.TemporalCLI, m.Postgres, m.Commit)
	w("load average (1 min): start %.2f, end %.2f; CPU used by processes outside the stack: %.1f%% over the run, at most %.1f%% in a scenario; quiet: %v\n",
		r.LoadStart, r.LoadEnd, 100*r.OthersCPU, 100*r.OthersCPUMax, quiet(r))
	if len(r.Busy) > 0 {
		w("busiest processes outside the stack over the run: %s\n", strings.Join(r.Busy, ", "))
	}
	if r.Temporal == "cluster" {
		w("temporal: cluster, temporal-server %s, 4 services on Postgres persistence and SQL visibility (memory: the 4 processes summed)\n", m.TemporalServer)
	} else {
		w("temporal: dev server (Temporal CLI)\n")
	}
	w("settings: %s\n", strings.Join(r.Settings, " "))
	if r.Failure != "" {
		w("\nFAILED: %s\n", r.Failure)
	}
	scenarios := func(ss []Scenario) {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "key\tcallers\tops\tseconds\tops/s\tmin\tmean\tp50\tp90\tp95\tp99\tmax\tload1\tothers%\t")
		for _, s := range ss {
			st := s.Stats
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.1f\t\n", s.Key, s.Callers, st.Ops, st.Elapsed.Seconds(),
				st.PerSecond, ms(st.Min), ms(st.Mean), ms(st.P50), ms(st.P90), ms(st.P95), ms(st.P99), ms(st.Max), s.Load1, 100*s.OthersCPU)
		}
		_ = tw.Flush()
		for _, s := range ss {
			if len(s.Busiest) > 0 {
				w("  during %s, outside the stack: %s\n", s.Key, strings.Join(s.Busiest, ", "))
			}
		}
	}
	for _, ph := range r.Phases {
		w("\n== %s (%d pending invitations at the start; latencies in ms)\n", ph.Title, ph.Pending)
		scenarios(ph.Scenarios)
		w("\nmemory (KiB)\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "after\tapi VmRSS\tapi VmHWM\tworker VmRSS\tworker VmHWM\ttemporal VmRSS\ttemporal VmHWM\t")
		for _, p := range ph.Memory {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", p.After, p.API.RSSKiB, p.API.HWMKiB, p.Worker.RSSKiB, p.Worker.HWMKiB, p.Temporal.RSSKiB, p.Temporal.HWMKiB)
		}
		_ = tw.Flush()
	}
	if r.Fill != nil {
		w("\n== fill\n")
		scenarios([]Scenario{*r.Fill})
	}
	if len(r.Histories) > 0 {
		w("\n== history events per run\n")
		for _, h := range r.Histories {
			if h.Source == "live" {
				w("%-60s live (%d runs)  %d..%d\n", h.Path, h.Runs, h.Min, h.Events)
			} else {
				w("%-60s %s  %d\n", h.Path, h.Source, h.Events)
			}
		}
	}
	if len(r.EmailModes) > 0 {
		w("\n== email delivery shapes (latencies in ms)\n")
		for _, m := range r.EmailModes {
			w("%-7s emails %d, %.2f/s (limit %.0f), per worker %v, events %d..%d, workflow tasks %d..%d, update p50 %s p95 %s p99 %s max %s, welcome waited %s behind %d, took %s\n",
				m.Mode, m.Emails, m.Achieved, m.Rate, m.PerWorker, m.EventsMin, m.EventsMax, m.TasksMin, m.TasksMax,
				ms(m.Update.P50), ms(m.Update.P95), ms(m.Update.P99), ms(m.Update.Max), ms(m.Urgent), m.Behind, m.Took.Round(time.Second))
		}
	}
	for _, n := range r.Notes {
		w("note: %s\n", n)
	}
	for _, p := range r.Profiles {
		w("profile: %s\n", p)
	}
	return b.String()
}
