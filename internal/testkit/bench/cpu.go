package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// The load average counts the bench's own stack, which keeps both cores busy; what says
// whether the machine was quiet is the CPU that other processes took meanwhile. cpuSample
// reads the machine's busy CPU time (/proc/stat) and the stack's own (/proc/<pid>/stat of the
// bench, the API, the worker, the dev server and the Postgres backends serving the bench's
// database); the difference between two samples is everyone else's.
type cpuSample struct {
	at          time.Time
	total, ours float64 // seconds of CPU time
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
	pids := []int{os.Getpid(), r.st.api.Pid(), r.st.worker.Pid(), r.st.temporalPid()}
	if r.db != nil {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if rows, err := r.db.Query(ctx, "select pid from pg_stat_activity where datname = current_database()"); err == nil {
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
		if pid == 0 {
			continue
		}
		r.ownPids[pid] = true
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			s.ours += processCPU(string(b))
		}
	}
	return s
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

// processCPU returns a process's user and system CPU seconds from the text of /proc/<pid>/stat.
// The command name (field 2) may hold spaces and parentheses, so fields count from its end.
func processCPU(stat string) float64 {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state); utime and stime are fields 14 and 15
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / clockTicks
}
