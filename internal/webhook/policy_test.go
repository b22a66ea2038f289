package webhook

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// checkCase is one URL and what a policy says of it: ok, or a refusal whose reason holds want.
type checkCase struct {
	url  string
	want string // "" = accepted
}

func runChecks(t *testing.T, p Policy, cases []checkCase) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range cases {
		err := p.Check(ctx, c.url)
		if c.want == "" {
			if err != nil {
				t.Errorf("%+v Check(%q) = %v, want accepted", p, c.url, err)
			}
			continue
		}
		var uerr *URLError
		if !errors.As(err, &uerr) {
			t.Errorf("%+v Check(%q) = %v, want a *URLError", p, c.url, err)
			continue
		}
		if !strings.Contains(uerr.Reason, c.want) {
			t.Errorf("%+v Check(%q) reason %q, want it to say %q", p, c.url, uerr.Reason, c.want)
		}
		if !strings.HasPrefix(err.Error(), "webhook URL refused: ") {
			t.Errorf("Check(%q) error %q", c.url, err)
		}
	}
}

func TestCheckURLShape(t *testing.T) {
	long := "https://8.8.8.8/" + strings.Repeat("a", MaxURLLen)
	runChecks(t, Policy{}, []checkCase{
		{"https://8.8.8.8/hooks", ""},
		{"HTTPS://8.8.8.8/hooks?x=1#frag", ""},
		{"https://8.8.8.8:8443/", ""},
		{"http://8.8.8.8/hooks", "must use https"},
		{"ftp://8.8.8.8/", "absolute https:// URL"},
		{"mailto:hooks@example.com", "absolute https:// URL"},
		{"//8.8.8.8/hooks", "absolute https:// URL"},
		{"/hooks", "absolute https:// URL"},
		{"example.com/hooks", "absolute https:// URL"},
		{"https:8.8.8.8", "absolute https:// URL"},
		{"", "absolute https:// URL"},
		{"https://user:pass@8.8.8.8/", "user name or password"},
		{"https://user@8.8.8.8/", "user name or password"},
		{"https:///hooks", "no host"},
		{"https://:443/hooks", "no host"},
		{"https://8.8.8.8:0/", "port"},
		{"https://8.8.8.8:99999/", "port"},
		{"https://exa mple.com/", "not valid"},
		{"https://8.8.8.8/\x7f", "not valid"},
		{long, "longer than 2048"},
		// Numbers that only some resolvers take for an IPv4 address.
		{"https://2130706433/", "standard form"},
		{"https://0x7f000001/", "standard form"},
		{"https://0x7f.1/", "standard form"},
		{"https://127.1/", "standard form"},
		{"https://017700000001/", "standard form"},
		{"https://10.1/", "standard form"},
		// Percent-encoding is no way around the address rules.
		{"https://%31%32%37.0.0.1/", "not valid"},
	})
	runChecks(t, Policy{AllowHTTP: true}, []checkCase{
		{"http://8.8.8.8/hooks", ""},
		{"https://8.8.8.8/hooks", ""},
		{"ws://8.8.8.8/", "absolute http:// or https:// URL"},
	})
}

// refusedLiterals are addresses of every refused class, as URL hosts, and what the reason says.
var refusedLiterals = []checkCase{
	{"0.0.0.0", "unspecified"},
	{"0.1.2.3", "this network"},
	{"10.0.0.1", "private"},
	{"10.255.255.255", "private"},
	{"100.64.0.1", "carrier-grade NAT"},
	{"100.100.100.200", "carrier-grade NAT"}, // Alibaba Cloud metadata
	{"100.127.255.255", "carrier-grade NAT"},
	{"127.0.0.1", "loopback"},
	{"127.255.255.254", "loopback"},
	{"169.254.169.254", "link-local"}, // AWS, GCP, Azure metadata
	{"169.254.0.1", "link-local"},
	{"172.16.0.1", "private"},
	{"172.31.255.255", "private"},
	{"192.0.0.192", "IETF protocol-assignment"}, // Oracle Cloud metadata
	{"192.0.2.10", "documentation"},
	{"192.88.99.1", "reserved"},
	{"192.168.1.1", "private"},
	{"198.18.0.1", "benchmarking"},
	{"198.19.255.255", "benchmarking"},
	{"198.51.100.7", "documentation"},
	{"203.0.113.9", "documentation"},
	{"224.0.0.1", "multicast"},
	{"239.255.255.250", "multicast"},
	{"240.0.0.1", "reserved"},
	{"255.255.255.255", "broadcast"},
	{"[::]", "unspecified"},
	{"[::1]", "loopback"},
	// IPv4-mapped IPv6: the IPv4 address decides.
	{"[::ffff:127.0.0.1]", "loopback"},
	{"[::ffff:7f00:1]", "loopback"},
	{"[::ffff:10.0.0.1]", "private"},
	{"[::ffff:169.254.169.254]", "link-local"},
	{"[::ffff:100.64.0.1]", "carrier-grade NAT"},
	{"[::ffff:0.0.0.0]", "unspecified"},
	{"[::ffff:224.0.0.1]", "multicast"},
	{"[::ffff:255.255.255.255]", "broadcast"},
	// IPv4-compatible (deprecated) IPv6: refused whatever the IPv4 part.
	{"[::127.0.0.1]", "IPv4-compatible"},
	{"[::10.0.0.1]", "IPv4-compatible"},
	{"[::a9fe:a9fe]", "IPv4-compatible"},
	{"[::8.8.8.8]", "IPv4-compatible"},
	// Translators to IPv4.
	{"[64:ff9b::a9fe:a9fe]", "NAT64 address leading to 169.254.169.254, a link-local"},
	{"[64:ff9b::127.0.0.1]", "NAT64 address leading to 127.0.0.1, a loopback"},
	{"[64:ff9b::10.0.0.1]", "private"},
	{"[64:ff9b:1::1]", "local-use NAT64"},
	{"[2002:a9fe:a9fe::1]", "6to4 address leading to 169.254.169.254, a link-local"},
	{"[2002:c0a8:101::]", "6to4 address leading to 192.168.1.1, a private"},
	{"[2002:7f00:1::]", "loopback"},
	// IPv6 ranges.
	{"[fc00::1]", "unique local"},
	{"[fd12:3456:789a::1]", "unique local"},
	{"[fd00:ec2::254]", "unique local"}, // AWS metadata over IPv6
	{"[fe80::1]", "link-local"},
	{"[febf:ffff::1]", "link-local"},
	{"[fe80::1%25eth0]", "IPv6 zone"},
	{"[fec0::1]", "site-local"},
	{"[ff02::1]", "multicast"},
	{"[ff05::1:3]", "multicast"},
	{"[2001:db8::1]", "documentation"},
	{"[3fff::1]", "documentation"},
	{"[2001::1]", "Teredo"},
	{"[100::1]", "discard-only"},
	{"[4000::1]", "reserved"},
	{"[::2]", "IPv4-compatible"},
	{"[1::1]", "reserved"},
}

var acceptedLiterals = []string{
	"8.8.8.8", "1.1.1.1", "9.255.255.255", "11.0.0.1", "100.63.255.255", "100.128.0.1",
	"126.255.255.255", "128.0.0.1", "169.253.255.255", "169.255.0.1", "172.15.255.255",
	"172.32.0.1", "192.167.255.255", "192.169.0.1", "198.17.255.255", "198.20.0.1",
	"223.255.255.255",
	"[2606:4700:4700::1111]", "[2001:4860:4860::8888]", "[2a00:1450:4001:82b::200e]",
	"[::ffff:8.8.8.8]", "[64:ff9b::808:808]", "[2002:808:808::1]",
}

func TestCheckRefusesAddressClasses(t *testing.T) {
	var cases []checkCase
	for _, c := range refusedLiterals {
		cases = append(cases, checkCase{"https://" + c.url + "/hooks", c.want})
	}
	for _, a := range acceptedLiterals {
		cases = append(cases, checkCase{"https://" + a + "/hooks", ""})
	}
	runChecks(t, Policy{}, cases)
	runChecks(t, Policy{AllowHTTP: true}, cases) // http changes nothing about addresses
}

func TestCheckAllowLocalhostTakesOnlyLoopback(t *testing.T) {
	var cases []checkCase
	loopback := map[string]bool{
		"127.0.0.1": true, "127.255.255.254": true, "[::1]": true,
		"[::ffff:127.0.0.1]": true, "[::ffff:7f00:1]": true,
	}
	for _, c := range refusedLiterals {
		want := c.want
		if loopback[c.url] {
			want = ""
		}
		cases = append(cases, checkCase{"http://" + c.url + ":8080/hooks", want})
	}
	cases = append(cases,
		checkCase{"http://localhost:8080/hooks", ""},
		checkCase{"http://LOCALHOST.:8080/hooks", ""},
		checkCase{"http://api.localhost/hooks", ""},
		checkCase{"http://8.8.8.8/", ""},
	)
	runChecks(t, Policy{AllowHTTP: true, AllowLocalhost: true}, cases)
	// AllowLocalhost does not imply http.
	runChecks(t, Policy{AllowLocalhost: true}, []checkCase{{"http://localhost:8080/", "must use https"}, {"https://localhost:8443/", ""}})
}

func TestCheckResolvesNames(t *testing.T) {
	dns := newFakeDNS(t)
	dns.set("public.example.test", "93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
	dns.set("private.example.test", "10.1.2.3")
	dns.set("mixed.example.test", "93.184.216.34", "192.168.0.10")
	dns.set("metadata.example.test", "169.254.169.254")
	dns.set("aws6.example.test", "fd00:ec2::254")
	dns.set("mapped.example.test", "::ffff:10.0.0.1")
	dns.set("loop.example.test", "127.0.0.1")
	dns.set("loop6.example.test", "::1")
	dns.set("cgnat.example.test", "100.64.1.1")
	dns.set("nodata.example.test")
	p := Policy{Resolver: dns.resolver()}

	runChecks(t, p, []checkCase{
		{"https://public.example.test/hooks", ""},
		{"https://PUBLIC.example.test./hooks", ""},
		{"https://private.example.test/hooks?token=s3cret", "the host private.example.test resolves to 10.1.2.3, a private address"},
		{"https://mixed.example.test/", "resolves to 192.168.0.10, a private address"},
		{"https://metadata.example.test/", "169.254.169.254, a link-local"},
		{"https://aws6.example.test/", "fd00:ec2::254, a private (unique local)"},
		{"https://mapped.example.test/", "private"},
		{"https://loop.example.test/", "loopback"},
		{"https://loop6.example.test/", "loopback"},
		{"https://cgnat.example.test/", "carrier-grade NAT"},
		{"https://missing.example.test/", "the host missing.example.test does not resolve"},
		{"https://nodata.example.test/", "does not resolve"},
		{"https://localhost/", "the host localhost resolves to 127.0.0.1, a loopback address"},
		{"https://api.localhost/", "loopback"},
	})
	if n := dns.queried("localhost") + dns.queried("api.localhost"); n != 0 {
		t.Errorf("localhost names went to DNS %d times", n)
	}
	runChecks(t, Policy{Resolver: p.Resolver, AllowLocalhost: true}, []checkCase{
		{"https://loop.example.test/", ""},
		{"https://loop6.example.test/", ""},
		{"https://private.example.test/", "private"},
		{"https://metadata.example.test/", "link-local"},
	})

	// The reason names the host and the address, never the path or the query.
	err := p.Check(context.Background(), "https://private.example.test/hooks/s3cret-path?token=s3cret")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("reason %v", err)
	}
	var uerr *URLError
	if !errors.As(err, &uerr) || uerr.Host != "private.example.test" {
		t.Fatalf("URLError %+v", uerr)
	}
	// A name that does not resolve keeps the resolver's error.
	err = p.Check(context.Background(), "https://missing.example.test/")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Fatalf("missing name: %v, want a not-found *net.DNSError inside", err)
	}
}

func TestCheckResolverFailure(t *testing.T) {
	broken := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS today")
	}}
	runChecks(t, Policy{Resolver: broken}, []checkCase{
		{"https://example.test/", "does not resolve"},
		{"https://8.8.8.8/", ""}, // literals need no DNS
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (Policy{Resolver: newFakeDNS(t).resolver()}).Check(ctx, "https://example.test/"); err == nil {
		t.Fatal("a cancelled look-up was accepted")
	}
}

func TestClassifyIsTotal(t *testing.T) {
	// Every refused literal is refused by the connect-time check as well.
	p := Policy{}
	for _, c := range refusedLiterals {
		host := strings.Trim(strings.ReplaceAll(c.url, "%25", "%"), "[]")
		addr := net.JoinHostPort(host, "443")
		if err := p.control("tcp", addr, nil); err == nil {
			t.Errorf("control(%q) accepted", addr)
		}
	}
	for _, a := range acceptedLiterals {
		addr := net.JoinHostPort(strings.Trim(a, "[]"), "443")
		if err := p.control("tcp", addr, nil); err != nil {
			t.Errorf("control(%q) = %v", addr, err)
		}
	}
	if err := p.control("tcp", "not-an-address", nil); err == nil {
		t.Error("control took an unparsable address")
	}
}
