package accountpolicy

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestNormalizeDomain(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	for _, tc := range []struct {
		in, want string
		err      error // nil: any refusal when want is ""
	}{
		{in: "acme.com", want: "acme.com"},
		{in: "  Acme.COM  ", want: "acme.com"},
		{in: "acme.com.", want: "acme.com"},
		{in: "mail.eu.acme.com", want: "mail.eu.acme.com"},
		{in: "localhost", want: "localhost"},
		{in: "a-b.example", want: "a-b.example"},
		{in: "bücher.example", want: "xn--bcher-kva.example"},
		{in: "BÜCHER.Example", want: "xn--bcher-kva.example"},
		{in: "xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		{in: "XN--BCHER-KVA.EXAMPLE.", want: "xn--bcher-kva.example"},
		{in: "ａｃｍｅ.com", want: "acme.com"}, // full-width letters map to ASCII
		{in: "acme。com", want: "acme.com"}, // an ideographic full stop is a dot
		{in: "faß.de", want: "xn--fa-hia.de"},
		{in: "例え.テスト", want: "xn--r8jz45g.xn--zckzah"},
		{in: "1password.com", want: "1password.com"},
		{in: long63 + ".com", want: long63 + ".com"},

		{in: "", err: errEmpty},
		{in: "   ", err: errEmpty},
		{in: ".", err: errEmpty},
		{in: "*.acme.com", err: errWildcard},
		{in: "*", err: errWildcard},
		{in: "a*b.com", err: errWildcard},
		{in: "1.2.3.4", err: errIPLiteral},
		{in: "192.168.1", err: errIPLiteral},
		{in: "0x7f.1", err: errIPLiteral},
		{in: "acme.0x", err: errIPLiteral},
		{in: "::1", err: errIPLiteral},
		{in: "[::1]", err: errIPLiteral},
		{in: "[1.2.3.4]", err: errIPLiteral},
		{in: "a..b.com", err: errEmptyLabel},
		{in: ".acme.com", err: errEmptyLabel},
		{in: "acme.com..", err: errEmptyLabel},
		{in: strings.Repeat("a", 64) + ".com", err: errLongLabel},
		{in: strings.Repeat(long63+".", 4) + "com", err: errTooLong},
		{in: "-acme.com", err: errBadDomain},
		{in: "acme-.com", err: errBadDomain},
		{in: "ac_me.com", err: errBadDomain},
		{in: "acme.com:443", err: errBadDomain},
		{in: "acme .com", err: errBadDomain},
		{in: "acme\x00.com", err: errBadDomain},
		{in: "xn--zz.com", err: errBadDomain}, // not valid punycode
		{in: "ab--cd.com", err: errBadDomain},
		{in: "a\u200d.com", err: errBadDomain},
		{in: "jane@acme.com", err: errBadDomain},
		{in: "https://acme.com", err: errBadDomain},
	} {
		got, err := NormalizeDomain(tc.in)
		if tc.want != "" {
			if err != nil || got != tc.want {
				t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || (tc.err != nil && err != tc.err) {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want the error %v", tc.in, got, err, tc.err)
		}
	}
}

func TestWildcardRefusalExplains(t *testing.T) {
	_, err := NormalizeDomain("*.acme.com")
	if err == nil || !strings.Contains(err.Error(), "subdomains") {
		t.Fatalf("err = %v, want one that says an entry covers its subdomains", err)
	}
}

func TestNormalizeOrigin(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{in: "https://app.acme.com", want: "https://app.acme.com"},
		{in: "https://app.acme.com/", want: "https://app.acme.com"},
		{in: " HTTPS://App.Acme.COM ", want: "https://app.acme.com"},
		{in: "https://app.acme.com:443", want: "https://app.acme.com"},
		{in: "https://app.acme.com:0443", want: "https://app.acme.com"},
		{in: "http://app.acme.com:80", want: "http://app.acme.com"},
		{in: "http://app.acme.com:443", want: "http://app.acme.com:443"},
		{in: "https://app.acme.com:80", want: "https://app.acme.com:80"},
		{in: "https://app.acme.com:8443/", want: "https://app.acme.com:8443"},
		{in: "https://app.acme.com:", want: "https://app.acme.com"},
		{in: "https://app.acme.com.", want: "https://app.acme.com"},
		{in: "http://localhost:3000", want: "http://localhost:3000"},
		{in: "http://127.0.0.1:3000", want: "http://127.0.0.1:3000"},
		{in: "http://[::1]:3000", want: "http://[::1]:3000"},
		{in: "http://[0:0::1]", want: "http://[::1]"},
		{in: "https://bücher.example", want: "https://xn--bcher-kva.example"},
		{in: "https://BÜCHER.example:443/", want: "https://xn--bcher-kva.example"},
		{in: "https://xn--bcher-kva.example", want: "https://xn--bcher-kva.example"},

		{in: "", err: errEmpty},
		{in: "app.acme.com", err: errScheme},
		{in: "//app.acme.com", err: errScheme},
		{in: "/welcome", err: errScheme},
		{in: "javascript:alert(1)", err: errScheme},
		{in: "javascript://app.acme.com/%0aalert(1)", err: errScheme},
		{in: "data:text/html,hi", err: errScheme},
		{in: "ftp://app.acme.com", err: errScheme},
		{in: "https:app.acme.com", err: errScheme},
		{in: "https:\\\\app.acme.com", err: errOriginChars},
		{in: "https://app.acme.com\\@evil.example", err: errOriginChars},
		{in: "https://app.acme.com\t", want: "https://app.acme.com"}, // trimmed
		{in: "https://app.\tacme.com", err: errOriginChars},
		{in: "https://app.acme.com\u200b", err: errOriginChars},
		{in: "https://ev%69l.example", err: errOriginChars},
		{in: "https://user@app.acme.com", err: errUserinfo},
		{in: "https://user:pw@app.acme.com", err: errUserinfo},
		{in: "https://app.acme.com/welcome", err: errOriginPath},
		{in: "https://app.acme.com/?", err: errOriginPath},
		{in: "https://app.acme.com?x=1", err: errOriginPath},
		{in: "https://app.acme.com#top", err: errOriginPath},
		{in: "https://app.acme.com#", err: errOriginPath},
		{in: "https://*.acme.com", err: errOriginWild},
		{in: "https://app.acme.com:0", err: errPort},
		{in: "https://app.acme.com:65536", err: errPort},
		{in: "https://app.acme.com:99999999999999999999", err: errPort},
		{in: "https://", err: errBadOrigin},
		{in: "https:///app.acme.com", err: errBadOrigin},
		{in: "https://[fe80::1%25eth0]", err: errOriginChars},
		{in: "https://app..acme.com", err: errEmptyLabel},
		{in: "https://ac_me.com", err: errBadDomain},
		{in: "https://192.168.1", err: errIPLiteral},
	} {
		got, err := NormalizeOrigin(tc.in)
		if tc.want != "" {
			if err != nil || got != tc.want {
				t.Errorf("NormalizeOrigin(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || (tc.err != nil && err != tc.err) {
			t.Errorf("NormalizeOrigin(%q) = %q, %v; want the error %v", tc.in, got, err, tc.err)
		}
	}
}

func TestEmailAllowed(t *testing.T) {
	if !(Settings{}).EmailAllowed("jane@anywhere.example") || !(Settings{AllowedEmailDomains: []string{}}).EmailAllowed("x@y.z") {
		t.Fatal("an empty list must allow every domain")
	}
	acme := Settings{AllowedEmailDomains: []string{"acme.com", "xn--bcher-kva.example"}}
	unicodeEntries := Settings{AllowedEmailDomains: []string{"ACME.com.", "bücher.example"}} // stored in another form
	for _, tc := range []struct {
		email string
		want  bool
	}{
		{"jane@acme.com", true},
		{"Jane@ACME.COM", true},
		{"jane@acme.com.", true},
		{"jane@mail.acme.com", true},
		{"jane@eu.mail.acme.com", true},
		{"jane@evilacme.com", false},
		{"jane@acme.com.evil.example", false},
		{"jane@acme.co", false},
		{"jane@cme.com", false},
		{"jane@com", false},
		{"a@bücher.example", true},
		{"a@BÜCHER.example", true},
		{"a@xn--bcher-kva.example", true},
		{"a@shop.bücher.example", true},
		{"a@bucher.example", false},
		{`"x@acme.com"@evil.example`, false}, // the domain is after the last @
		{"jane@evil.example@acme.com", true},
		{"acme.com", false},
		{"jane@", false},
		{"", false},
		{"jane@[1.2.3.4]", false},
		{"jane@*.acme.com", false},
	} {
		for _, st := range []Settings{acme, unicodeEntries} {
			if got := st.EmailAllowed(tc.email); got != tc.want {
				t.Errorf("%v.EmailAllowed(%q) = %v, want %v", st.AllowedEmailDomains, tc.email, got, tc.want)
			}
		}
	}
	// A bad entry matches nothing, and does not stop the others from matching.
	bad := Settings{AllowedEmailDomains: []string{"*.acme.com", "", "globex.example"}}
	if bad.EmailAllowed("jane@mail.acme.com") || !bad.EmailAllowed("jane@globex.example") {
		t.Error("a bad entry matched, or stopped a good one")
	}
}

func TestRedirectAllowed(t *testing.T) {
	for _, st := range []Settings{{}, {AllowedRedirectOrigins: []string{}}} {
		if st.RedirectAllowed("https://app.acme.com/welcome") {
			t.Fatal("an empty list must allow no redirect")
		}
	}
	st := Settings{AllowedRedirectOrigins: []string{
		"https://app.acme.com", "http://localhost:3000", "https://xn--bcher-kva.example", "https://portal.acme.com:8443",
	}}
	stored := Settings{AllowedRedirectOrigins: []string{ // the same entries in other forms
		"HTTPS://App.Acme.com:443/", "http://LOCALHOST:3000", "https://bücher.example", "https://portal.acme.com:8443/",
	}}
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"https://app.acme.com", true},
		{"https://app.acme.com/", true},
		{"https://app.acme.com/welcome?from=invite#top", true},
		{"HTTPS://APP.ACME.COM/welcome", true},
		{"https://app.acme.com:443/welcome", true},
		{"https://app.acme.com./welcome", true},
		{"http://localhost:3000/done", true},
		{"https://bücher.example/willkommen", true},
		{"https://BÜCHER.example/", true},
		{"https://xn--bcher-kva.example/", true},
		{"https://portal.acme.com:8443/x", true},
		{"https://app.acme.com/a%20b", true}, // escapes in the path are fine

		{"http://app.acme.com/welcome", false}, // another scheme is another origin
		{"https://app.acme.com:8443/", false},  // another port
		{"https://portal.acme.com/x", false},   // the default port is not 8443
		{"http://localhost/done", false},       // nor 3000
		{"https://evil.acme.com/", false},      // origins match exactly, not subdomains
		{"https://app.acme.com.evil.example/", false},
		{"https://evilapp.acme.com/", false},
		{"https://app.acme.com@evil.example/", false},
		{"https://user:pw@app.acme.com/", false},
		{"https://evil.example/https://app.acme.com", false},
		{"https://evil.example#https://app.acme.com", false},
		{"javascript:alert(document.domain)", false},
		{"JavaScript://app.acme.com/%0aalert(1)", false},
		{"data:text/html,<script>alert(1)</script>", false},
		{"//evil.example/x", false},
		{"//app.acme.com/x", false}, // protocol-relative, even to an allowed host
		{"/welcome", false},
		{"welcome", false},
		{"", false},
		{"https:\\\\evil.example", false},
		{"/\\evil.example", false},
		{"https://app.acme.com\\@evil.example", false},
		{"https://app.acme.com/\\evil.example", false},
		{"https:/app.acme.com/x", false},
		{"https:app.acme.com/x", false},
		{"https:///app.acme.com/x", false},
		{" https://app.acme.com/", false},
		{"https://app.acme.com/\n", false},
		{"https://app.acme.com/\tx", false},
		{"https://app.acme.com/ x", false},
		{"https://app.acme.com/\x00", false},
		{"https://app.acme.com/\u202e", false},
		{"\x01https://app.acme.com/", false},
		{"https://ap%70.acme.com/", false},
		{"https://app.acme.com:99999/", false},
		{"ftp://app.acme.com/", false},
	} {
		for _, s := range []Settings{st, stored} {
			if got := s.RedirectAllowed(tc.url); got != tc.want {
				t.Errorf("%v.RedirectAllowed(%q) = %v, want %v", s.AllowedRedirectOrigins, tc.url, got, tc.want)
			}
		}
	}
}

func TestSettingsJSON(t *testing.T) {
	b, err := json.Marshal(Settings{AllowedEmailDomains: []string{"acme.com"}, AllowedRedirectOrigins: []string{}})
	if err != nil || string(b) != `{"allowed_email_domains":["acme.com"],"allowed_redirect_origins":[]}` {
		t.Fatalf("%s %v", b, err)
	}
}
