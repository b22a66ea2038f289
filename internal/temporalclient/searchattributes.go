package temporalclient

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/onboarding-service/onboarding/workflows/contract"
)

// RegisterSearchAttributes makes sure every attribute of contract.SearchAttributeTypes is
// registered on namespace with its type, adding the missing ones; it returns their names. It is
// idempotent, so deployments run it at every release (`onboarding-worker
// register-search-attributes`). An attribute registered with another type is an error: that
// needs a person to decide.
func RegisterSearchAttributes(ctx context.Context, c client.Client, namespace string) ([]string, error) {
	want := contract.SearchAttributeTypes()
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil, err
	}
	missing := map[string]enums.IndexedValueType{}
	for name, typ := range want {
		got, ok := resp.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = typ
		case got != typ:
			return nil, fmt.Errorf("search attribute %s is registered as %s but the workflows need %s", name, got, typ)
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		SearchAttributes: missing,
		Namespace:        namespace,
	}); err != nil {
		return nil, fmt.Errorf("add search attributes: %w", err)
	}
	return slices.Sorted(maps.Keys(missing)), nil
}
