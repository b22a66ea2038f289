// Package accountpolicy is an account's settings and the rules they apply: which email domains
// may be invited (allowed_email_domains) and which origins an invitation's redirect_url may
// point to (allowed_redirect_origins). It normalises entries to one canonical ASCII form, so an
// internationalised domain and its punycode are the same entry, and it matches addresses and
// URLs against them. It does no I/O.
package accountpolicy

import (
	"errors"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/net/idna"
)

// Settings are an account's settings. The lists are never nil when this package or the store
// produce them.
type Settings struct {
	// AllowedEmailDomains are the domains (ASCII form) invitees' emails may be at, each with its
	// subdomains; empty = any domain.
	AllowedEmailDomains []string `json:"allowed_email_domains"`
	// AllowedRedirectOrigins are the origins ("https://app.acme.com") a redirect_url may be
	// at; empty = no redirect allowed.
	AllowedRedirectOrigins []string `json:"allowed_redirect_origins"`
}

// Length limits of a domain name in its ASCII form (RFC 1035).
const (
	maxDomainLen = 253
	maxLabelLen  = 63
)

// The normalisers' refusals. Their texts are written to follow a field name in an API answer
// ("allowed_email_domains[2] must ...").
var (
	errEmpty       = errors.New("must not be empty")
	errWildcard    = errors.New("must not be a wildcard: a domain entry already covers its subdomains (write acme.com, not *.acme.com)")
	errIPLiteral   = errors.New("must be a domain name, not an IP address")
	errTooLong     = errors.New("must have at most 253 characters in its ASCII (punycode) form")
	errEmptyLabel  = errors.New("must not have empty labels (two dots in a row, or a leading dot)")
	errLongLabel   = errors.New("must have labels (the parts between dots) of at most 63 characters in their ASCII (punycode) form")
	errBadDomain   = errors.New("must be a domain name such as acme.com: letters, digits and inner hyphens between dots")
	errBadOrigin   = errors.New("must be an origin such as https://app.acme.com or http://localhost:3000 (scheme, host and optional port)")
	errScheme      = errors.New("must start with https:// or http://")
	errUserinfo    = errors.New("must not contain a user name or password")
	errOriginPath  = errors.New("must be an origin only: no path, query or fragment (write https://app.acme.com, not https://app.acme.com/welcome)")
	errPort        = errors.New("must have a port between 1 and 65535")
	errOriginWild  = errors.New("must not contain a wildcard: list each origin")
	errOriginChars = errors.New("must not contain white space, control characters, backslashes or percent escapes")
)

// NormalizeDomain returns the canonical form of a domain entry: trimmed, lower-cased, without
// one trailing dot, internationalised labels in their ASCII (punycode) form. It refuses
// wildcards, IP literals, empty labels and names too long for DNS.
func NormalizeDomain(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimSuffix(s, ".")
	switch {
	case s == "":
		return "", errEmpty
	case strings.Contains(s, "*"):
		return "", errWildcard
	case strings.HasPrefix(s, "["):
		return "", errIPLiteral
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return "", errIPLiteral
	}
	ascii, err := idna.Lookup.ToASCII(s)
	if err != nil {
		// The mapping may have made an empty label (a full-width dot at the end, say): name it.
		if slices.Contains(strings.Split(ascii, "."), "") {
			return "", errEmptyLabel
		}
		return "", errBadDomain
	}
	if len(ascii) > maxDomainLen {
		return "", errTooLong
	}
	labels := strings.Split(ascii, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return "", errEmptyLabel
		case len(l) > maxLabelLen:
			return "", errLongLabel
		}
	}
	if numeric(labels[len(labels)-1]) {
		// Browsers and resolvers read a name ending in a number (192.168.1, 0x7f.1) as an IPv4
		// address.
		return "", errIPLiteral
	}
	return ascii, nil
}

// numeric reports whether a label is a number as the WHATWG URL standard's IPv4 parser reads
// one: decimal digits, or 0x followed by hexadecimal digits (or none).
func numeric(label string) bool {
	digits := "0123456789"
	if rest, ok := strings.CutPrefix(label, "0x"); ok {
		label, digits = rest, "0123456789abcdef"
		if label == "" {
			return true
		}
	}
	if label == "" {
		return false
	}
	for _, r := range label {
		if !strings.ContainsRune(digits, r) {
			return false
		}
	}
	return true
}

// NormalizeOrigin returns the canonical form of an origin entry, "scheme://host[:port]": the
// scheme http or https, lower-cased, the host lower-cased and in ASCII (punycode) form (or an
// IP address in its canonical form), the port dropped when it is the scheme's default. It
// refuses user names and passwords, paths other than "/", queries and fragments.
func NormalizeOrigin(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errEmpty
	}
	u, err := parseAbsolute(s)
	if err != nil {
		return "", err
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || strings.ContainsAny(s, "?#") {
		return "", errOriginPath
	}
	return origin(u)
}

// parseAbsolute parses an absolute http or https URL with a host, refusing anything a browser
// could read differently from net/url: white space and control characters (browsers drop
// some), backslashes (browsers read them as slashes), percent escapes before the path, and
// user names or passwords.
func parseAbsolute(s string) (*url.URL, error) {
	for _, r := range s {
		if r == '\\' || unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar {
			return nil, errOriginChars
		}
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok { // relative, protocol-relative ("//host"), or javascript:, data:, mailto: ...
		return nil, errScheme
	}
	if scheme = strings.ToLower(scheme); scheme != "http" && scheme != "https" {
		return nil, errScheme
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	switch {
	case strings.Contains(authority, "@"):
		return nil, errUserinfo
	case strings.Contains(authority, "%"):
		return nil, errOriginChars
	case strings.Contains(authority, "*"):
		return nil, errOriginWild
	case authority == "":
		return nil, errBadOrigin
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return nil, errBadOrigin
	}
	if u.User != nil {
		return nil, errUserinfo
	}
	return u, nil
}

// origin is the canonical "scheme://host[:port]" of a URL parseAbsolute accepted.
func origin(u *url.URL) (string, error) {
	scheme := strings.ToLower(u.Scheme)
	host := u.Hostname()
	if strings.HasPrefix(u.Host, "[") { // an IPv6 literal
		addr, err := netip.ParseAddr(host)
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", errBadOrigin
		}
		host = "[" + addr.String() + "]"
	} else if addr, err := netip.ParseAddr(host); err == nil {
		if !addr.Is4() {
			return "", errBadOrigin
		}
		host = addr.String()
	} else {
		// A name that ends with a dot is the same host.
		if host, err = NormalizeDomain(host); err != nil {
			return "", err
		}
	}
	port := u.Port() // empty also for "host:", the default port as browsers read it
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", errPort
		}
		port = strconv.Itoa(n)
		if (scheme == "https" && n == 443) || (scheme == "http" && n == 80) {
			port = ""
		}
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// EmailAllowed reports whether the settings allow inviting email: any address when
// AllowedEmailDomains is empty; otherwise one whose domain (after the last '@'), in ASCII form,
// is an entry or a subdomain of one. Entries are compared in their canonical form whatever
// form they are stored in.
func (st Settings) EmailAllowed(email string) bool {
	if len(st.AllowedEmailDomains) == 0 {
		return true
	}
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return false
	}
	domain, err := NormalizeDomain(email[at+1:])
	if err != nil {
		return false
	}
	for _, entry := range st.AllowedEmailDomains {
		e, err := NormalizeDomain(entry)
		if err != nil {
			continue // a bad entry matches nothing
		}
		if domain == e || strings.HasSuffix(domain, "."+e) {
			return true
		}
	}
	return false
}

// RedirectAllowed reports whether an invitation may redirect to rawURL: never when
// AllowedRedirectOrigins is empty; otherwise only an absolute http or https URL with a host
// and no user name or password, whose canonical origin is an entry. Relative and
// protocol-relative URLs, other schemes (javascript:, data:), backslashes, white space and
// control characters are never allowed.
func (st Settings) RedirectAllowed(rawURL string) bool {
	if len(st.AllowedRedirectOrigins) == 0 {
		return false
	}
	u, err := parseAbsolute(rawURL)
	if err != nil {
		return false
	}
	o, err := origin(u)
	if err != nil {
		return false
	}
	for _, entry := range st.AllowedRedirectOrigins {
		if e, err := NormalizeOrigin(entry); err == nil && e == o {
			return true
		}
	}
	return false
}
