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
