package webhook

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// fakeDNS is an authoritative DNS server on 127.0.0.1 (UDP) answering A and AAAA questions
// from a table the test can change between look-ups, and a Resolver that asks only it.
type fakeDNS struct {
	conn net.PacketConn

	mu      sync.Mutex
	records map[string][]netip.Addr // lower-case name without the final dot
	queries map[string]int
}

func newFakeDNS(t *testing.T) *fakeDNS {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDNS{conn: conn, records: map[string][]netip.Addr{}, queries: map[string]int{}}
	t.Cleanup(func() { conn.Close() })
	go f.serve()
	return f
}

// set makes name resolve to addrs (none: the name exists with no address).
func (f *fakeDNS) set(name string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	list := []netip.Addr{}
	for _, a := range addrs {
		list = append(list, netip.MustParseAddr(a))
	}
	f.records[strings.ToLower(name)] = list
}

func (f *fakeDNS) queried(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries[strings.ToLower(name)]
}

func (f *fakeDNS) resolver() *net.Resolver {
	addr := f.conn.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

func (f *fakeDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := f.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := f.answer(buf[:n]); resp != nil {
			_, _ = f.conn.WriteTo(resp, from)
		}
	}
}

func (f *fakeDNS) answer(query []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))
	f.mu.Lock()
	addrs, known := f.records[name]
	if q.Type == dnsmessage.TypeA {
		f.queries[name]++ // one per look-up (each asks A and AAAA)
	}
	f.mu.Unlock()

	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	res := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}
	for _, a := range addrs {
		switch {
		case q.Type == dnsmessage.TypeA && a.Is4():
			_ = b.AResource(res, dnsmessage.AResource{A: a.As4()})
		case q.Type == dnsmessage.TypeAAAA && !a.Is4():
			_ = b.AAAAResource(res, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}
