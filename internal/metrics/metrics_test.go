package metrics

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gather returns the metric families of reg by name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// counterValue is the value of the counter of name whose labels include want.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mf := gather(t, reg)[name]
next:
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
				continue next
			}
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("%s%v: no such series", name, want)
	return 0
}

// Rules and panels must see every known series from the first scrape, at 0, not "no data".
func TestBusinessSeriesExistFromTheStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := NewBusiness(reg)
	families := gather(t, reg)
	for name, want := range map[string]int{
		"onboarding_invitations_completed_total": len(outcomes),
		"onboarding_seat_refusals_total":         len(seatActions),
		"onboarding_emails_total":                len(emailKinds) * len(emailResults),
	} {
		if got := len(families[name].GetMetric()); got != want {
			t.Errorf("%s: %d series, want %d", name, got, want)
		}
	}
	expired := map[string]string{"outcome": "expired"}
	if v := counterValue(t, reg, "onboarding_invitations_completed_total", expired); v != 0 {
		t.Errorf("expired outcomes = %v before any, want 0", v)
	}
	b.InvitationCompleted("expired")
	if v := counterValue(t, reg, "onboarding_invitations_completed_total", expired); v != 1 {
		t.Errorf("expired outcomes = %v after one, want 1", v)
	}
}

// The pending gauge reads Postgres at most once per pendingCacheFor, however often it is
// scraped, and reports -1 when the read fails.
func TestPendingGaugeReadsAtMostOncePerPeriod(t *testing.T) {
	reg := prometheus.NewRegistry()
	reads := 0
	RegisterPending(reg, func(context.Context) (int, error) { reads++; return 3, nil })
	for range 5 {
		if v := gather(t, reg)["onboarding_invitations_pending"].GetMetric()[0].GetGauge().GetValue(); v != 3 {
			t.Fatalf("pending = %v, want 3", v)
		}
	}
	if reads != 1 {
		t.Errorf("%d reads for 5 scrapes within %s, want 1", reads, pendingCacheFor)
	}

	failing := prometheus.NewRegistry()
	RegisterPending(failing, func(context.Context) (int, error) { return 0, errors.New("down") })
	mfs, err := failing.Gather()
	if err != nil || len(mfs) != 1 || mfs[0].GetMetric()[0].GetGauge().GetValue() != -1 {
		t.Errorf("failing count: %v %v, want -1", mfs, err)
	}
}
