package store

import (
	"regexp"
	"slices"
	"testing"

	"github.com/onboarding-service/onboarding/workflows/contract"
)

// The schema's check constraints are the one other place that names the statuses: they must
// allow exactly the contract's values, so a status added on one side cannot be written or read
// on the other.
func TestSchemaStatusesMatchTheContract(t *testing.T) {
	s := catalogTestStore(t)
	allowed := func(table, column string) []string {
		t.Helper()
		var def string
		err := s.Pool.QueryRow(t.Context(), `
			select pg_get_constraintdef(c.oid) from pg_constraint c
			join pg_class r on r.oid = c.conrelid
			where r.relname = $1 and c.contype = 'c' and pg_get_constraintdef(c.oid) like '%(' || $2 || ' = ANY%'`,
			table, column).Scan(&def)
		if err != nil {
			t.Fatalf("check constraint on %s.%s: %v", table, column, err)
		}
		var values []string
		for _, m := range regexp.MustCompile(`'([a-z_]+)'::text`).FindAllStringSubmatch(def, -1) {
			values = append(values, m[1])
		}
		slices.Sort(values)
		return values
	}
	var statuses []string
	for _, st := range contract.Statuses {
		statuses = append(statuses, string(st))
	}
	slices.Sort(statuses)
	if got := allowed("invitations", "status"); !slices.Equal(got, statuses) {
		t.Errorf("invitations.status allows %v, the contract has %v", got, statuses)
	}
	// Skipped emails are never stored: an email row is queued, sent or failed, and then what the
	// provider reported (delivered, bounced, complained).
	deliveries := []string{string(contract.DeliveryBounced), string(contract.DeliveryComplained), string(contract.DeliveryDelivered),
		string(contract.DeliveryFailed), string(contract.DeliveryQueued), string(contract.DeliverySent)}
	if got := allowed("emails", "status"); !slices.Equal(got, deliveries) {
		t.Errorf("emails.status allows %v, want %v", got, deliveries)
	}
}
