package bench

import (
	"context"
	"encoding/json"
	"fmt"
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
}

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
		n, err := countEvents(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		name := filepath.Base(f)
		out = append(out, HistoryCount{Path: strings.TrimSuffix(name, ".json"), Source: name, Events: n})
	}
	return out, nil
}

// countEvents counts the events of a history exported as JSON ({"events": [...]}, the format
// of `temporal workflow show --output json` and the replayer's files).
func countEvents(b []byte) (int, error) {
	var h struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return 0, err
	}
	if h.Events == nil {
		return 0, fmt.Errorf("no events array")
	}
	return len(h.Events), nil
}

// liveHistory waits (up to a minute) for each workflow to complete and counts its events.
func liveHistory(ctx context.Context, tc client.Client, path string, workflowIDs []string) (HistoryCount, error) {
	hc := HistoryCount{Path: path, Source: "live"}
	for _, id := range workflowIDs {
		if err := waitClosed(ctx, tc, id); err != nil {
			return hc, err
		}
		n := 0
		it := tc.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			if _, err := it.Next(); err != nil {
				return hc, fmt.Errorf("history of %s: %w", id, err)
			}
			n++
		}
		if hc.Runs == 0 || n < hc.Min {
			hc.Min = n
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
