package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/onboarding-service/onboarding/internal/devstack"
)

// Memory is a process's resident set, read from /proc/<pid>/status: VmRSS now and VmHWM, the
// most it ever held.
type Memory struct {
	RSSKiB int64 `json:"vm_rss_kib"`
	HWMKiB int64 `json:"vm_hwm_kib"`
}

// readMemory reads VmRSS and VmHWM of pid.
func readMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	return parseStatus(b)
}

// parseStatus reads VmRSS and VmHWM (in kB) from the text of /proc/<pid>/status.
func parseStatus(b []byte) (Memory, error) {
	var m Memory
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("unexpected %s line %q", name, sc.Text())
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, err
		}
		if name == "VmRSS" {
			m.RSSKiB = n
		} else {
			m.HWMKiB = n
		}
		found++
	}
	if found != 2 {
		return m, fmt.Errorf("VmRSS or VmHWM missing")
	}
	return m, nil
}

// Machine describes where a run happened.
type Machine struct {
	CPUs        int    `json:"cpus"`
	CPUModel    string `json:"cpu_model"`
	MemTotal    string `json:"mem_total"`
	OS          string `json:"os"`
	GoVersion   string `json:"go_version"`
	TemporalCLI string `json:"temporal_cli"`
	// TemporalServer is the cluster's temporal-server version (-temporal cluster only).
	TemporalServer string `json:"temporal_server,omitempty"`
	Postgres       string `json:"postgres"`
	Commit         string `json:"commit"`
}

// describeMachine gathers the machine's description; a part it cannot read says so.
func describeMachine(ctx context.Context, root, temporalCLI, dbURL string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), CPUModel: "unknown", MemTotal: "unknown", OS: runtime.GOOS}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel = procField(b, "model name")
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kb, err := strconv.ParseInt(strings.TrimSuffix(procField(b, "MemTotal"), " kB"), 10, 64); err == nil {
			m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	m.TemporalCLI = devstack.TemporalCLIVersion
	if out, err := exec.CommandContext(ctx, temporalCLI, "--version").Output(); err == nil {
		// "temporal version 0.0.0-DEV (Server 1.29.1, UI 2.42.1)" for a go-install build.
		if _, rest, ok := strings.Cut(strings.TrimSpace(string(out)), "("); ok {
			m.TemporalCLI += " (" + rest
		}
	}
	m.Postgres = "unknown"
	if conn, err := pgx.Connect(ctx, dbURL); err == nil {
		var v string
		if conn.QueryRow(ctx, "show server_version").Scan(&v) == nil {
			m.Postgres = v
		}
		conn.Close(ctx)
	}
	m.Commit = "unknown"
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		// Others may be editing the tree: a dirty tree is said, so a figure is not pinned on a
		// commit it did not run.
		if st, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
			m.Commit += " with uncommitted changes"
		}
	}
	return m
}

// procField returns the value of the first "name : value" line of a /proc file.
func procField(b []byte, name string) string {
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// loadAverage returns the 1-minute load average, or -1 if unreadable.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// findPid returns the pid of the process whose command line contains needle, or 0. The dev
// server is started by devstack, which does not expose its pid; its command line names the
// bench's own database file.
func findPid(needle string) int {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && bytes.Contains(b, []byte(needle)) {
			return pid
		}
	}
	return 0
}
