package bench

import (
	"math"
	"slices"
	"time"
)

// Stats summarises one scenario: how many operations completed, over how long, and the
// distribution of their latencies.
type Stats struct {
	Ops     int           `json:"ops"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// PerSecond is Ops divided by Elapsed: the throughput the callers together reached.
	PerSecond float64       `json:"ops_per_second"`
	Min       time.Duration `json:"min_ns"`
	Mean      time.Duration `json:"mean_ns"`
	P50       time.Duration `json:"p50_ns"`
	P90       time.Duration `json:"p90_ns"`
	P95       time.Duration `json:"p95_ns"`
	P99       time.Duration `json:"p99_ns"`
	Max       time.Duration `json:"max_ns"`
}

// Percentile returns the q-quantile (0 < q <= 1) of sorted by the nearest-rank method: the
// smallest value such that at least q of the values are at or below it. sorted must be in
// ascending order; an empty slice gives 0.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Summarize computes the Stats of latencies measured over elapsed. It sorts a copy, so the
// caller's slice keeps its order.
func Summarize(latencies []time.Duration, elapsed time.Duration) Stats {
	s := Stats{Ops: len(latencies), Elapsed: elapsed}
	if len(latencies) == 0 {
		return s
	}
	sorted := slices.Clone(latencies)
	slices.Sort(sorted)
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	s.Min, s.Max = sorted[0], sorted[len(sorted)-1]
	s.Mean = sum / time.Duration(len(sorted))
	s.P50 = Percentile(sorted, 0.50)
	s.P90 = Percentile(sorted, 0.90)
	s.P95 = Percentile(sorted, 0.95)
	s.P99 = Percentile(sorted, 0.99)
	if elapsed > 0 {
		s.PerSecond = float64(len(sorted)) / elapsed.Seconds()
	}
	return s
}
