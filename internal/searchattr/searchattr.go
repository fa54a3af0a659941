// Package searchattr registers imageflow's typed search attributes with a Temporal namespace.
package searchattr

import (
	"context"
	"fmt"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/imageflow/imageflow/workflows"
)

// Register adds the attributes the namespace lacks. Servers that refuse (Temporal Cloud without
// the permission, for one) return an error the caller may log and carry on from: workflows only
// write the attributes when a run was started with them.
func Register(ctx context.Context, c client.Client, namespace string) error {
	have, err := c.OperatorService().
		ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of %s: %w", namespace, err)
	}
	missing := map[string]enums.IndexedValueType{}
	for _, k := range workflows.SearchAttributeKeys {
		if _, ok := have.GetCustomAttributes()[k.GetName()]; !ok {
			missing[k.GetName()] = indexedType(k)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().
		AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	if err != nil {
		return fmt.Errorf("add search attributes to %s: %w", namespace, err)
	}
	return nil
}

// Present reports whether every imageflow attribute is registered, so starters know whether
// they may set them.
func Present(ctx context.Context, c client.Client, namespace string) bool {
	have, err := c.OperatorService().
		ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return false
	}
	for _, k := range workflows.SearchAttributeKeys {
		if _, ok := have.GetCustomAttributes()[k.GetName()]; !ok {
			return false
		}
	}
	return true
}

func indexedType(k temporal.SearchAttributeKey) enums.IndexedValueType {
	return k.GetValueType()
}
