package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// MaxURLLen is the longest webhook URL taken.
const MaxURLLen = 2048

// Policy says which webhook URLs the service calls. Whatever it allows, a URL must be absolute
// http(s) without user info, and every address its host resolves to must be a public unicast
// address: loopback, private, link-local (cloud metadata services: 169.254.169.254, AWS's
// fd00:ec2::254 in fc00::/7, Oracle's 192.0.0.192), carrier-grade NAT (Alibaba's metadata
// 100.100.100.200), unspecified, multicast, broadcast, reserved, benchmarking and documentation
// ranges are all refused, in IPv4 and IPv6, and through the IPv6 forms that carry an IPv4
// address (IPv4-mapped, the deprecated IPv4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16).
// Documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32,
// 3fff::/20) are refused too: nothing real listens there, and a route to them would be
// someone's internal network.
type Policy struct {
	// AllowHTTP takes http:// URLs (development); otherwise only https://.
	AllowHTTP bool
	// AllowLocalhost takes loopback addresses, and only them: localhost, 127.0.0.0/8, ::1
	// (WEBHOOK_ALLOW_LOCALHOST, for `make run`). Private addresses stay refused.
	AllowLocalhost bool
	// Resolver looks host names up; nil is net.DefaultResolver.
	Resolver *net.Resolver
}

// URLError is why a webhook URL, or a connection for one, was refused. Reason is a sentence
// fit for the detail of a 422 webhook_url_invalid answer; it names the host and the address,
// never the URL's path or query (which may hold the consumer's own token).
type URLError struct {
	Host   string // the URL's host, when it has one
	Reason string
	Err    error // the underlying error (a DNS one, say), if any
}

func (e *URLError) Error() string { return "webhook URL refused: " + e.Reason }

func (e *URLError) Unwrap() error { return e.Err }

// publicOnly is appended to refusals of an address, so the reason says what would be taken.
const publicOnly = "; webhook URLs must reach a public internet address"

// Check says whether the service may deliver to rawURL, looking its host up now. The same
// address rules are applied again when a Client connects, so a name that later resolves
// elsewhere (DNS rebinding) still cannot reach a refused address. It returns a *URLError.
func (p Policy) Check(ctx context.Context, rawURL string) error {
	if len(rawURL) > MaxURLLen {
		return &URLError{Reason: fmt.Sprintf("the URL is longer than %d characters", MaxURLLen)}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return &URLError{Reason: "the URL is not valid", Err: err}
	}
	if !u.IsAbs() || u.Opaque != "" || (u.Scheme != "http" && u.Scheme != "https") {
		if p.AllowHTTP {
			return &URLError{Reason: "the URL must be an absolute http:// or https:// URL"}
		}
		return &URLError{Reason: "the URL must be an absolute https:// URL"}
	}
	if u.Scheme == "http" && !p.AllowHTTP {
		return &URLError{Host: u.Hostname(), Reason: "the URL must use https"}
	}
	if u.User != nil {
		return &URLError{Host: u.Hostname(), Reason: "the URL must not contain a user name or password"}
	}
	host := u.Hostname()
	if host == "" {
		return &URLError{Reason: "the URL has no host"}
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return &URLError{Host: host, Reason: fmt.Sprintf("the port %q is not valid", port)}
		}
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if addr.Zone() != "" {
			return &URLError{Host: host, Reason: "the address must not name a network interface (an IPv6 zone)"}
		}
		if reason := p.refusal(addr); reason != "" {
			return &URLError{Host: host, Reason: fmt.Sprintf("%s is %s%s", addr, reason, publicOnly)}
		}
		return nil
	}
	addrs, uerr := p.lookup(ctx, host)
	if uerr != nil {
		return uerr
	}
	for _, addr := range addrs {
		if reason := p.refusal(addr); reason != "" {
			return &URLError{Host: host, Reason: fmt.Sprintf("the host %s resolves to %s, %s%s", host, addr.WithZone(""), reason, publicOnly)}
		}
	}
	return nil
}

// lookup resolves a host name. "localhost" and names under ".localhost" are loopback without
// asking DNS (RFC 6761); names that only a non-standard resolver would read as an IPv4 address
// ("2130706433", "0x7f.1") are refused rather than guessed at.
func (p Policy) lookup(ctx context.Context, host string) ([]netip.Addr, *URLError) {
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}, nil
	}
	labels := strings.Split(name, ".")
	if last := labels[len(labels)-1]; numericLabel(last) {
		return nil, &URLError{Host: host, Reason: fmt.Sprintf("the host %s is neither a host name nor an IP address in standard form", host)}
	}
	r := p.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		reason := fmt.Sprintf("the host %s does not resolve", host)
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && (dnsErr.IsTimeout || dnsErr.IsTemporary) && !dnsErr.IsNotFound {
			reason += " (a temporary DNS failure: try again)"
		}
		return nil, &URLError{Host: host, Reason: reason, Err: err}
	}
	return addrs, nil
}

// numericLabel reports whether a top-level label is all decimal digits or a 0x hex number: no
// real top-level domain is, and some resolvers would take the name for an IPv4 address.
func numericLabel(s string) bool {
	if s == "" {
		return false
	}
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		s = h
		for _, c := range s {
			if !strings.ContainsRune("0123456789abcdef", c) {
				return false
			}
		}
		return true
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// refusal returns why the policy refuses to connect to addr ("" when it may).
func (p Policy) refusal(addr netip.Addr) string {
	loopback, reason := classify(addr)
	if loopback && p.AllowLocalhost {
		return ""
	}
	return reason
}

type addrRange struct {
	prefix netip.Prefix
	reason string
}

func ranges(rs ...string) []addrRange {
	out := make([]addrRange, 0, len(rs)/2)
	for i := 0; i < len(rs); i += 2 {
		out = append(out, addrRange{netip.MustParsePrefix(rs[i]), rs[i+1]})
	}
	return out
}

const (
	private       = "a private address"
	documentation = "a documentation address"
	reserved      = "a reserved address"
)

// refused4 are the IPv4 ranges that are not public unicast (IANA's special-purpose registry).
var refused4 = ranges(
	"0.0.0.0/8", `a "this network" address`,
	"10.0.0.0/8", private,
	"100.64.0.0/10", "a carrier-grade NAT (shared) address",
	"127.0.0.0/8", "a loopback address",
	"169.254.0.0/16", "a link-local address (where cloud metadata services answer)",
	"172.16.0.0/12", private,
	"192.0.0.0/24", "an IETF protocol-assignment address",
	"192.0.2.0/24", documentation,
	"192.88.99.0/24", reserved,
	"192.168.0.0/16", private,
	"198.18.0.0/15", "a benchmarking address",
	"198.51.100.0/24", documentation,
	"203.0.113.0/24", documentation,
	"224.0.0.0/4", "a multicast address",
	"255.255.255.255/32", "a broadcast address",
	"240.0.0.0/4", reserved,
)

// refused6 are the IPv6 ranges refused outright. Loopback, the unspecified address and the
// forms that embed an IPv4 address are handled before them; anything outside 2000::/3 (global
// unicast) is refused after them.
var refused6 = ranges(
	"::/96", "an IPv4-compatible IPv6 address (deprecated)",
	"64:ff9b:1::/48", "a local-use NAT64 address",
	"100::/64", "a discard-only address",
	"2001::/32", "a Teredo tunnel address",
	"2001:db8::/32", documentation,
	"3fff::/20", documentation,
	"fc00::/7", "a private (unique local) address",
	"fe80::/10", "a link-local address",
	"fec0::/10", "a site-local address (deprecated)",
	"ff00::/8", "a multicast address",
)

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
	global6   = netip.MustParsePrefix("2000::/3")
)

// classify returns why addr is not a public unicast address ("" when it is), and whether it is
// a loopback address (the one class AllowLocalhost takes).
func classify(addr netip.Addr) (loopback bool, reason string) {
	addr = addr.WithZone("").Unmap() // an IPv4-mapped address is its IPv4 address
	switch {
	case !addr.IsValid():
		return false, "not an IP address"
	case addr.IsUnspecified():
		return false, "an unspecified address"
	case addr.IsLoopback():
		return true, "a loopback address"
	case addr.Is4():
		for _, r := range refused4 {
			if r.prefix.Contains(addr) {
				return false, r.reason
			}
		}
		return false, ""
	}
	b := addr.As16()
	switch {
	case nat64.Contains(addr):
		return false, embedded(netip.AddrFrom4([4]byte(b[12:16])), "NAT64")
	case sixToFour.Contains(addr):
		return false, embedded(netip.AddrFrom4([4]byte(b[2:6])), "6to4")
	}
	for _, r := range refused6 {
		if r.prefix.Contains(addr) {
			return false, r.reason
		}
	}
	if !global6.Contains(addr) {
		return false, reserved
	}
	return false, ""
}

// embedded classifies the IPv4 address an IPv6 transition address leads to. Loopback is
// refused there even under AllowLocalhost: nothing local is reached through a translator.
func embedded(v4 netip.Addr, via string) string {
	if _, reason := classify(v4); reason != "" {
		return fmt.Sprintf("a %s address leading to %s, %s", via, v4, reason)
	}
	return ""
}
