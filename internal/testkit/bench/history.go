package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// HistoryCount is the number of events of one lifecycle path's run.
type HistoryCount struct {
	// Path names the lifecycle path: a recorded file's name without ".json", or what the live
	// run did.
	Path string `json:"path"`
	// Source is "live" (measured in this run) or the recorded file under
	// workflows/testdata/histories.
	Source string `json:"source"`
	// Events is the count; for live runs the largest of the runs read, Min the smallest.
	Events int `json:"events"`
	Min    int `json:"min,omitempty"`
	Runs   int `json:"runs,omitempty"`
	// Types counts the events by type (EVENT_TYPE_ trimmed): the file's, or the largest live
	// run's. Against names the recorded path a live path is compared with ("" for none).
	Types   map[string]int `json:"types,omitempty"`
	Against string         `json:"against,omitempty"`
	// TaskFailures are the distinct causes of the live runs' failed workflow tasks, with the
	// failure's message.
	TaskFailures []string `json:"task_failures,omitempty"`
}

// beyond says how the event types of live differ from those of recorded: "+1 WORKFLOW_TASK_TIMED_OUT,
// −1 MARKER_RECORDED", or "none".
func beyond(live, recorded map[string]int) string {
	types := map[string]bool{}
	for t := range live {
		types[t] = true
	}
	for t := range recorded {
		types[t] = true
	}
	var diffs []string
	for _, t := range slices.Sorted(maps.Keys(types)) {
		switch d := live[t] - recorded[t]; {
		case d > 0:
			diffs = append(diffs, fmt.Sprintf("+%d %s", d, t))
		case d < 0:
			diffs = append(diffs, fmt.Sprintf("−%d %s", -d, t))
		}
	}
	if len(diffs) == 0 {
		return "none"
	}
	return strings.Join(diffs, ", ")
}

// eventType names an event type as the recorded files do, without the EVENT_TYPE_ prefix.
func eventType(name string) string { return strings.TrimPrefix(name, "EVENT_TYPE_") }

// recordedHistories counts the events of every recorded history in dir (the replay tests'
// workflows/testdata/histories), in file-name order.
func recordedHistories(dir string) ([]HistoryCount, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	var out []HistoryCount
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		n, types, err := readHistory(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		name := filepath.Base(f)
		out = append(out, HistoryCount{Path: strings.TrimSuffix(name, ".json"), Source: name, Events: n, Types: types})
	}
	return out, nil
}

// countEvents counts the events of a history exported as JSON ({"events": [...]}, the format
// of `temporal workflow show --output json` and the replayer's files).
func countEvents(b []byte) (int, error) {
	n, _, err := readHistory(b)
	return n, err
}

// readHistory counts the events of a history exported as JSON, in all and by type.
func readHistory(b []byte) (int, map[string]int, error) {
	var h struct {
		Events []struct {
			EventType string `json:"eventType"`
		} `json:"events"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return 0, nil, err
	}
	if h.Events == nil {
		return 0, nil, fmt.Errorf("no events array")
	}
	types := map[string]int{}
	for _, e := range h.Events {
		types[eventType(e.EventType)]++
	}
	return len(h.Events), types, nil
}

// liveHistory waits (up to a minute) for each workflow to complete and counts its events.
// against names the recorded path the counts are compared with ("" for none).
func liveHistory(ctx context.Context, tc client.Client, path, against string, workflowIDs []string) (HistoryCount, error) {
	hc := HistoryCount{Path: path, Source: "live", Against: against}
	for _, id := range workflowIDs {
		if err := waitClosed(ctx, tc, id); err != nil {
			return hc, err
		}
		n, types := 0, map[string]int{}
		it := tc.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				return hc, fmt.Errorf("history of %s: %w", id, err)
			}
			n++
			types[eventType(enumspb.EventType_name[int32(e.GetEventType())])]++
			if a := e.GetWorkflowTaskFailedEventAttributes(); a != nil {
				f := a.GetCause().String() + ": " + a.GetFailure().GetMessage()
				if !slices.Contains(hc.TaskFailures, f) {
					hc.TaskFailures = append(hc.TaskFailures, f)
				}
			}
		}
		if hc.Runs == 0 || n < hc.Min {
			hc.Min = n
		}
		if n > hc.Events || hc.Types == nil {
			hc.Types = types
		}
		hc.Events = max(hc.Events, n)
		hc.Runs++
	}
	return hc, nil
}

// waitClosed waits until the latest run of workflow id is closed.
func waitClosed(ctx context.Context, tc client.Client, id string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		d, err := tc.DescribeWorkflowExecution(ctx, id, "")
		if err == nil && d.WorkflowExecutionInfo.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("workflow %s still running after a minute (last error: %v)", id, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// historyVariants are the recorded histories' suffixes, newest lifecycle first: the current
// code's recordings have none.
var historyVariants = []string{"", ".lifecycle0", ".before-v1"}

// renderHistories writes the live counts, then one row per recorded path with the current
// lifecycle's count beside the older recordings of the same path.
func renderHistories(b *strings.Builder, hs []HistoryCount) {
	fmt.Fprintf(b, "\n### History events per run\n\nMeasured in this run (the last column: the event types of the largest run read beyond the recorded path's):\n\n| lifecycle path | runs read | events | beyond the recorded path |\n|---|---:|---:|---|\n")
	recorded := map[string]HistoryCount{}
	for _, h := range hs {
		if h.Source != "live" {
			recorded[h.Path] = h
		}
	}
	counts := map[string]map[string]int{}
	var paths []string
	for _, h := range hs {
		if h.Source == "live" {
			n := fmt.Sprint(h.Events)
			if h.Min != h.Events {
				n = fmt.Sprintf("%d–%d", h.Min, h.Events)
			}
			diff := "–"
			if r, ok := recorded[h.Against]; ok && h.Types != nil && r.Types != nil {
				diff = fmt.Sprintf("`%s.json`: %s", h.Against, beyond(h.Types, r.Types))
			}
			for _, f := range h.TaskFailures {
				diff += "; workflow task failed: " + strings.ReplaceAll(f, "|", "/")
			}
			fmt.Fprintf(b, "| %s | %d | %s | %s |\n", h.Path, h.Runs, n, diff)
			continue
		}
		path, variant := h.Path, ""
		for _, v := range historyVariants[1:] {
			if p, ok := strings.CutSuffix(h.Path, v); ok {
				path, variant = p, v
			}
		}
		if counts[path] == nil {
			counts[path] = map[string]int{}
			paths = append(paths, path)
		}
		counts[path][variant] = h.Events
	}
	if len(paths) == 0 {
		return
	}
	fmt.Fprintf(b, "\nRecorded (`workflows/testdata/histories/<path>[.lifecycle0|.before-v1].json`, the replay tests' files):\n\n| recorded path | current lifecycle | lifecycle 0 | before v1 |\n|---|---:|---:|---:|\n")
	for _, p := range paths {
		fmt.Fprintf(b, "| %s |", p)
		for _, v := range historyVariants {
			if n, ok := counts[p][v]; ok {
				fmt.Fprintf(b, " %d |", n)
			} else {
				b.WriteString(" – |")
			}
		}
		b.WriteString("\n")
	}
}
