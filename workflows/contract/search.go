package contract

import (
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// Typed search attributes, registered on the namespace (make run does it for the dev server).
var (
	SearchStatus         = temporal.NewSearchAttributeKeyKeyword("InvitationStatus")
	SearchAccountID      = temporal.NewSearchAttributeKeyKeyword("AccountId")
	SearchSubscriptionID = temporal.NewSearchAttributeKeyKeyword("SubscriptionId")
	SearchApplication    = temporal.NewSearchAttributeKeyKeyword("Application")
	SearchGeneration     = temporal.NewSearchAttributeKeyInt64("InvitationGeneration")
	SearchDelivery       = temporal.NewSearchAttributeKeyKeyword("DeliveryStatus")
	// SearchEmailHash is a keyed hash of the invitee's lower-cased email (see
	// internal/emailhash), so support can find a person's invitations without the address
	// being written into visibility.
	SearchEmailHash = temporal.NewSearchAttributeKeyKeyword("InviteeEmailHash")
)

// SearchAttributes are the keys the workflow sets.
var SearchAttributes = []temporal.SearchAttributeKey{
	SearchStatus, SearchAccountID, SearchSubscriptionID, SearchApplication,
	SearchGeneration, SearchDelivery, SearchEmailHash,
}

// SearchAttributeTypes names every custom search attribute with its Temporal type, as the
// server spells it (`temporal server start-dev --search-attribute NAME=TYPE`), built from the
// keys themselves.
func SearchAttributeTypes() map[string]enums.IndexedValueType {
	types := make(map[string]enums.IndexedValueType, len(SearchAttributes))
	for _, k := range SearchAttributes {
		types[k.GetName()] = k.GetValueType()
	}
	return types
}

// Created is the state a create is started to reach: pending, generation 1, invite queued.
var Created = State{Status: StatusPending, Generation: 1, Delivery: Delivery{Status: DeliveryQueued}}

// StartSearchAttributes are the search attributes a run of in starts with: the invitation's
// ids, and the state it starts from (a create: Created; a run started from an expired
// invitation's row: the row's). The run upserts only what then differs, so the usual path
// writes no upsert until something changes.
func StartSearchAttributes(in InvitationInput, st State) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(StartSearchAttributeUpdates(in, st)...)
}

// StartSearchAttributeUpdates are StartSearchAttributes as updates.
func StartSearchAttributeUpdates(in InvitationInput, st State) []temporal.SearchAttributeUpdate {
	updates := []temporal.SearchAttributeUpdate{
		SearchAccountID.ValueSet(in.AccountID.String()),
		SearchSubscriptionID.ValueSet(in.SubscriptionID.String()),
		SearchApplication.ValueSet(in.Application),
		SearchStatus.ValueSet(string(st.Status)),
		SearchGeneration.ValueSet(int64(st.Generation)),
	}
	if st.Delivery.Status != "" {
		updates = append(updates, SearchDelivery.ValueSet(string(st.Delivery.Status)))
	}
	if in.EmailHash != "" {
		updates = append(updates, SearchEmailHash.ValueSet(in.EmailHash))
	}
	return updates
}
