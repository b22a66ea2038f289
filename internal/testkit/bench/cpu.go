package bench

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The load average counts the bench's own stack, which keeps both cores busy; what says
// whether the machine was quiet is the CPU that other processes took meanwhile. cpuSample
// reads the machine's busy CPU time (/proc/stat) and the stack's own (/proc/<pid>/stat of the
// bench, the API, the worker, the dev server or the cluster's four services, and the Postgres
// backends serving the bench's database); the difference between two samples is everyone
// else's. A cluster's Postgres backends, on its two databases, are the stack's too.
type cpuSample struct {
	at          time.Time
	total, ours float64 // seconds of CPU time
	// procs is every process's CPU seconds, to name the busiest others.
	procs map[int]procTime
}

// procTime is a process's command name and CPU seconds.
type procTime struct {
	comm string
	cpu  float64
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every Linux Go supports.
const clockTicks = 100

// othersShare returns the share (0 to 1) of all CPUs that other processes used between a and b.
func othersShare(a, b cpuSample) float64 {
	wall := b.at.Sub(a.at).Seconds() * float64(runtime.NumCPU())
	if wall <= 0 {
		return 0
	}
	return min(max((b.total-a.total-(b.ours-a.ours))/wall, 0), 1)
}

// sampleCPU reads the machine's and the stack's CPU time now.
func (r *runner) sampleCPU(ctx context.Context) cpuSample {
	s := cpuSample{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		s.total = machineBusy(string(b))
	}
	pids := append([]int{os.Getpid(), r.st.api.Pid(), r.st.worker.Pid()}, r.st.temporalPids()...)
	if r.db != nil {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if rows, err := r.db.Query(ctx, "select pid from pg_stat_activity where datname = current_database() or datname = any($1)", r.st.temporalDatabases()); err == nil {
			for rows.Next() {
				var pid int
				if rows.Scan(&pid) == nil {
					pids = append(pids, pid)
				}
			}
			rows.Close()
		}
		cancel()
	}
	for _, pid := range pids {
		if pid != 0 {
			r.ownPids[pid] = true
		}
	}
	s.procs = map[int]procTime{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			comm, cpu := processCPU(string(b))
			s.procs[pid] = procTime{comm: comm, cpu: cpu}
			if r.ownPids[pid] {
				s.ours += cpu
			}
		}
	}
	return s
}

// busiestOthers names the processes outside own that used the most CPU between a and b (at
// least 2% of all CPUs), with their share. A process that started and ended between the two
// samples (a compile, a short test) is counted in othersShare but cannot be named.
func busiestOthers(a, b cpuSample, own map[int]bool) []string {
	wall := b.at.Sub(a.at).Seconds() * float64(runtime.NumCPU())
	if wall <= 0 {
		return nil
	}
	type busy struct {
		name  string
		share float64
	}
	var list []busy
	for pid, p := range b.procs {
		if own[pid] {
			continue
		}
		if share := (p.cpu - a.procs[pid].cpu) / wall; share >= 0.02 {
			list = append(list, busy{fmt.Sprintf("%s[%d]", p.comm, pid), share})
		}
	}
	slices.SortFunc(list, func(x, y busy) int { return cmp.Compare(y.share, x.share) })
	var out []string
	for _, x := range list[:min(len(list), 5)] {
		out = append(out, fmt.Sprintf("%s %.0f%%", x.name, 100*x.share))
	}
	return out
}

// machineBusy returns the non-idle CPU seconds of /proc/stat's "cpu" line (user, nice, system,
// irq, softirq, steal; not idle or iowait).
func machineBusy(stat string) float64 {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy float64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, _ := strconv.ParseFloat(f[i], 64)
		busy += v
	}
	return busy / clockTicks
}

// processCPU returns a process's command name and user and system CPU seconds from the text of
// /proc/<pid>/stat. The name (field 2, in parentheses) may hold spaces and parentheses, so
// fields count from its end.
func processCPU(stat string) (string, float64) {
	open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return "", 0
	}
	comm := stat[open+1 : end]
	f := strings.Fields(stat[end+1:]) // f[0] is field 3 (state); utime and stime are fields 14 and 15
	if len(f) < 13 {
		return comm, 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return comm, (u + s) / clockTicks
}
