package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

type bannerInfo struct {
	apiURL, uiURL, workerMetricsURL string
	temporal                        interface {
		Address() string
		Namespace() string
	}
	temporalLog              string
	apiToken, apiTokenSource string
	tokenSecretRandom        bool
	resend                   bool
	demo                     demoData
	// The codec: the endpoint the UI decodes through, the CLI's token and where the key and
	// token are kept; localUI is true when the UI's browser needs no token (CODEC_ALLOW_LOCAL_UI).
	codecEndpoint, codecToken          string
	codecTokenSource, payloadKeySource string
	localUI                            bool
	// make cluster's: each replica's metrics (the API's address balances over them) and what
	// runs where.
	apiMetricsURLs, workerMetricsURLs []string
	topology                          []string
}

func printBanner(b bannerInfo) {
	invitation, _ := json.Marshal(map[string]any{
		"email":           "jane.doe@example.com",
		"first_name":      "Jane",
		"last_name":       "Doe",
		"subscription_id": b.demo.SubscriptionID,
		"role":            "editor",
		"group_ids":       []string{b.demo.GroupID},
	})
	var s strings.Builder
	line := strings.Repeat("=", 78)
	p := func(format string, args ...any) { fmt.Fprintf(&s, format+"\n", args...) }
	p("")
	p(line)
	p("  Onboarding service is running. Ctrl-C stops it.")
	p("")
	p("  API              %s   (OpenAPI: %s/openapi.yaml)", b.apiURL, b.apiURL)
	p("  Temporal UI      %s", b.uiURL)
	if len(b.apiMetricsURLs) > 0 {
		p("  API metrics      %s", strings.Join(b.apiMetricsURLs, "  "))
		p("  Worker metrics   %s", strings.Join(b.workerMetricsURLs, "  "))
	} else {
		p("  API metrics      %s/metrics", b.apiURL)
		p("  Worker metrics   %s", b.workerMetricsURL)
	}
	p("  Temporal         %s, namespace %s (log: %s)", b.temporal.Address(), b.temporal.Namespace(), b.temporalLog)
	for i, t := range b.topology {
		if i == 0 {
			p("  Topology         %s", t)
		} else {
			p("                   %s", t)
		}
	}
	p("  API token        %s", b.apiToken)
	p("                   (%s)", b.apiTokenSource)
	p("  Payloads         encrypted in Temporal (key %s)", b.payloadKeySource)
	if b.localUI {
		p("                   and decoded for the Temporal UI by %s", b.codecEndpoint)
	} else {
		p("                   the Temporal UI cannot decode them (CODEC_ALLOW_LOCAL_UI=false): use the CLI")
	}
	p("  Codec for CLI    --codec-endpoint %s --codec-auth 'Bearer %s'", b.codecEndpoint, b.codecToken)
	p("                   (%s)", b.codecTokenSource)
	if b.tokenSecretRandom {
		p("  TOKEN_SECRET     random for this run: invite links from earlier runs no longer verify")
	}
	p("")
	p("  Demo data (Acme Corp, Adobe Creative Cloud / Acme Design Team, 5 seats)")
	p("    account        %s", b.demo.AccountID)
	p("    subscription   %s   (roles viewer, editor, admin)", b.demo.SubscriptionID)
	p("    group          %s   (Designers)", b.demo.GroupID)
	p("")
	p("  Invite Jane:")
	p("    curl -sS -X POST %s/v1/accounts/%s/invitations \\", b.apiURL, b.demo.AccountID)
	p("      -H 'Authorization: Bearer %s' \\", b.apiToken)
	p("      -H 'Content-Type: application/json' \\")
	p("      -d '%s'", invitation)
	p("")
	if b.resend {
		p("  Emails are sent through Resend (RESEND_API_KEY is set).")
	} else {
		p("  Emails go to the dev mailbox (RESEND_API_KEY is unset): nothing is sent, and the")
		p("  worker logs every email with its accept link. Look for the [worker] lines.")
	}
	p(line)
	_, _ = io.WriteString(terminal, s.String())
}
