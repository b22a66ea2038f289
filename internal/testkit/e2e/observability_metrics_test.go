package e2e

import (
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// What the observability stack's /metrics endpoints export, parsed.

// exposition is one scrape of a /metrics endpoint.
type exposition struct {
	families map[string]*dto.MetricFamily
	// names holds what PromQL can select: each family's name, and a histogram's _bucket, _sum
	// and _count series (a summary's _sum and _count).
	names map[string]bool
}

func parseExposition(t *testing.T, text string) exposition {
	t.Helper()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	e := exposition{families: families, names: map[string]bool{}}
	for name, f := range families {
		if len(f.GetMetric()) == 0 {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			e.names[name+"_bucket"], e.names[name+"_sum"], e.names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			e.names[name], e.names[name+"_sum"], e.names[name+"_count"] = true, true, true
		default:
			e.names[name] = true
		}
	}
	return e
}

// value sums the samples of a metric whose labels include want; a histogram's name with _count
// sums its sample counts.
func (e exposition) value(name string, want map[string]string) float64 {
	count := false
	f, ok := e.families[name]
	if !ok {
		if f, ok = e.families[strings.TrimSuffix(name, "_count")]; !ok || f.GetType() != dto.MetricType_HISTOGRAM {
			return 0
		}
		count = true
	}
	var sum float64
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case count:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}

var (
	labelUUID = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	labelHex  = regexp.MustCompile(`[0-9a-f]{24,}`)
)

// labelProblems lists label values that carry an id, an email or a token: labels must be
// kinds and outcomes, so that series stay few and nothing personal reaches Prometheus.
func (e exposition) labelProblems() []string {
	var out []string
	for name, f := range e.families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				v := l.GetValue()
				if labelUUID.MatchString(v) || labelHex.MatchString(v) || strings.Contains(v, "@") ||
					strings.Contains(v, "invitation:") || strings.Contains(strings.ToLower(v), "token") {
					out = append(out, fmt.Sprintf("%s{%s=%q}: a label value must not carry an id, an email or a token", name, l.GetName(), v))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func obsUnion(sets ...map[string]bool) map[string]bool {
	out := map[string]bool{}
	for _, s := range sets {
		maps.Copy(out, s)
	}
	return out
}

// checkBusinessMetrics scrapes both endpoints until the worker's counters say what the scenario
// did (the SDK's metrics reach the registry once a second), saves the scrapes as artifacts and
// returns them.
func (o *obsStack) checkBusinessMetrics(t *testing.T) (worker, api exposition) {
	t.Helper()
	type want struct {
		name    string
		labels  map[string]string
		value   float64
		atLeast bool
	}
	wants := []want{
		{"onboarding_invitations_created_total", nil, 9, false},
		{"onboarding_invitations_completed_total", map[string]string{"outcome": "accepted"}, 2, false},
		{"onboarding_invitations_completed_total", map[string]string{"outcome": "declined"}, 1, false},
		{"onboarding_invitations_completed_total", map[string]string{"outcome": "revoked"}, 1, false},
		{"onboarding_invitations_completed_total", map[string]string{"outcome": "expired"}, 2, false},
		{"onboarding_seat_refusals_total", map[string]string{"action": "renew"}, 1, false},
		{"onboarding_emails_total", map[string]string{"kind": "invite", "result": "failed"}, 1, false},
		{"onboarding_emails_total", map[string]string{"kind": "invite", "result": "error"}, 1, false},
		{"onboarding_emails_total", map[string]string{"kind": "invite", "result": "sent"}, 9, false}, // 8 of generation 1, 1 renewal
		{"onboarding_emails_total", map[string]string{"kind": "welcome", "result": "sent"}, 2, false},
		{"onboarding_emails_total", map[string]string{"kind": "reminder", "result": "sent"}, 2, true},
		{"onboarding_invitation_acceptance_seconds_count", nil, 2, false},
		{"onboarding_provisioning_duration_seconds_count", nil, 2, false},
		// Postgres is shared with the package's other tests, which leave invitations pending.
		{"onboarding_invitations_pending", nil, 4, true},
		{"temporal_workflow_task_execution_failed_total", map[string]string{"workflow_type": "InvitationV0"}, 2, true},
		{"temporal_activity_execution_failed_total", map[string]string{"activity_type": "SendEmail"}, 1, false},
		// The Postgres steps of lifecycle-2 runs are local activities, reported under
		// temporal_local_activity_*; the lifecycle-0 run (renewed) keeps regular activities for
		// its create, its expiry and its renew, until it continues as new into lifecycle 2.
		// The revoke whose connection the database dropped: one CloseInvitation attempt failed.
		{"temporal_local_activity_execution_failed_total", map[string]string{"activity_type": "CloseInvitation"}, 1, false},
		// The renew refused for want of a seat (expired) is a benign refusal: counted by
		// onboarding_seat_refusals_total above, by neither of the SDK's failure counters.
		{"temporal_local_activity_execution_failed_total", map[string]string{"activity_type": "RenewInvitation"}, 0, false},
		{"temporal_activity_execution_failed_total", map[string]string{"activity_type": "RenewInvitation"}, 0, false},
		// The lifecycle-0 run's create, expiry and renew, as regular activities; every accept
		// ran in a lifecycle-2 run, as a local activity (at least once: a rewound workflow task
		// runs a local activity again).
		{"temporal_activity_execution_latency_seconds_count", map[string]string{"activity_type": "CreateInvitation"}, 1, false},
		// Expiries close in a regular activity: the lifecycle-0 run's and the "expired" one's.
		{"temporal_activity_execution_latency_seconds_count", map[string]string{"activity_type": "CloseInvitation"}, 2, false},
		{"temporal_activity_execution_latency_seconds_count", map[string]string{"activity_type": "RenewInvitation"}, 1, false},
		{"temporal_activity_execution_latency_seconds_count", map[string]string{"activity_type": "ProvisionUser"}, 0, false},
		{"temporal_local_activity_execution_latency_seconds_count", map[string]string{"activity_type": "ProvisionUser"}, 2, true},
		// The lifecycle-0 run handing over to lifecycle 2 on its renew: the only continue-as-new
		// (a renew of a lifecycle-2 run does not continue as new, and no history grows long).
		{"temporal_workflow_continue_as_new_total", map[string]string{"workflow_type": "Invitation"}, 1, false},
		// The two welcome emails, each delivered by its own InvitationEmail workflow.
		{"temporal_workflow_completed_total", map[string]string{"workflow_type": "InvitationEmail"}, 2, false},
	}
	var last []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		worker = parseExposition(t, o.scrape(t, o.WorkerMetricsURL(), "worker-metrics.txt"))
		api = parseExposition(t, o.scrape(t, o.APIMetricsURL(), "api-metrics.txt"))
		last = last[:0]
		for _, w := range wants {
			got := worker.value(w.name, w.labels)
			if got != w.value && !(w.atLeast && got >= w.value) {
				op := "="
				if w.atLeast {
					op = ">="
				}
				last = append(last, fmt.Sprintf("%s%v = %v, want %s %v", w.name, w.labels, got, op, w.value))
			}
		}
		if len(last) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, l := range last {
		t.Error(l)
	}
	// The API counts by route template and status.
	for _, w := range []struct {
		route, status string
	}{
		{"/v1/accounts/:account_id/invitations", "201"},
		{"/v1/accounts/:account_id/invitations", "409"},
		{"/v1/invitations/accept", "200"},
		{"/v1/invitations/decline", "200"},
		{"/v1/accounts/:account_id/invitations/:invitation_id/revoke", "200"},
		{"/v1/accounts/:account_id/invitations/:invitation_id/renew", "409"},
	} {
		if api.value("http_requests_total", map[string]string{"route": w.route, "status": w.status}) < 1 {
			t.Errorf("http_requests_total{route=%q, status=%q} missing", w.route, w.status)
		}
	}
	if api.value("http_request_duration_seconds_count", map[string]string{"route": "/v1/invitations/accept"}) < 2 {
		t.Error("http_request_duration_seconds has no accept observations")
	}
	t.Logf("worker exports %d series names, the API %d (scrapes in %s)", len(worker.names), len(api.names), o.Artifacts)
	return worker, api
}
