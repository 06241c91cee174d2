package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustPrefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	lb := mustPrefixes(t, "10.0.0.0/8", "fd00::/8", "127.0.0.1/32")
	tests := []struct {
		name   string
		peer   string
		xff    []string
		want   string
		viaXFF bool
	}{
		{"no header", "10.0.0.5", nil, "10.0.0.5", false},
		{"untrusted peer: header ignored", "203.0.113.9", []string{"198.51.100.7"}, "203.0.113.9", false},
		{"one proxy", "10.0.0.5", []string{"198.51.100.7"}, "198.51.100.7", true},
		{"client's own entries on the left are never reached", "10.0.0.5", []string{"1.1.1.1, 198.51.100.7"}, "198.51.100.7", true},
		{"a chain of our proxies is skipped", "10.0.0.5", []string{"198.51.100.7, 10.1.2.3, 10.9.9.9"}, "198.51.100.7", true},
		{"several header lines, read as one list", "10.0.0.5", []string{"6.6.6.6, 198.51.100.7", "10.1.2.3"}, "198.51.100.7", true},
		{"every entry trusted: the leftmost", "10.0.0.5", []string{"10.2.0.1, 10.3.0.1"}, "10.2.0.1", true},
		{"garbage at the right: the peer", "10.0.0.5", []string{"198.51.100.7, nonsense"}, "10.0.0.5", false},
		{"garbage after a trusted hop: that hop", "10.0.0.5", []string{"nonsense, 10.7.7.7"}, "10.7.7.7", true},
		{"garbage left of the client is not read", "10.0.0.5", []string{"<script>, 198.51.100.7"}, "198.51.100.7", true},
		{"empty entry", "10.0.0.5", []string{""}, "10.0.0.5", false},
		{"entry with a port", "10.0.0.5", []string{"198.51.100.7:5555"}, "198.51.100.7", true},
		{"IPv6 client", "fd00::1", []string{"2001:db8::42"}, "2001:db8::42", true},
		{"IPv6 client with a port", "10.0.0.5", []string{"[2001:db8::42]:443"}, "2001:db8::42", true},
		{"IPv4-mapped IPv6 is unmapped", "10.0.0.5", []string{"::ffff:198.51.100.7"}, "198.51.100.7", true},
		{"zones are refused", "10.0.0.5", []string{"fe80::1%eth0"}, "10.0.0.5", false},
		{"spaces around entries", "127.0.0.1", []string{"  198.51.100.7  "}, "198.51.100.7", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := clientAddr(netip.MustParseAddr(tt.peer), tt.xff, lb)
			if got.String() != tt.want || ok != tt.viaXFF {
				t.Errorf("clientAddr(%s, %q) = %s, %v; want %s, %v", tt.peer, tt.xff, got, ok, tt.want, tt.viaXFF)
			}
		})
	}
}

// TestRealClient goes through the router: the address handlers see (huma's RemoteAddr), the
// proxy kept for the access log, and no rewriting at all without trusted proxies.
func TestRealClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		trusted    []netip.Prefix
		remote     string
		xff        string
		wantRemote string
		wantPeer   string
	}{
		{"no trusted proxies: header ignored", nil, "10.0.0.5:4000", "198.51.100.7", "10.0.0.5:4000", ""},
		{"trusted proxy", mustPrefixes(t, "10.0.0.0/8"), "10.0.0.5:4000", "198.51.100.7", "198.51.100.7:0", "10.0.0.5:4000"},
		{"trusted proxy, IPv6 client", mustPrefixes(t, "10.0.0.0/8"), "10.0.0.5:4000", "2001:db8::42", "[2001:db8::42]:0", "10.0.0.5:4000"},
		{"untrusted peer", mustPrefixes(t, "10.0.0.0/8"), "203.0.113.9:4000", "198.51.100.7", "203.0.113.9:4000", ""},
		{"trusted proxy without the header", mustPrefixes(t, "10.0.0.0/8"), "10.0.0.5:4000", "", "10.0.0.5:4000", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var gotRemote, gotPeer string
			h := realClient(tt.trusted)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotRemote, gotPeer = r.RemoteAddr, Peer(r.Context())
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = tt.remote
			if tt.xff != "" {
				req.Header.Set("X-Forwarded-For", tt.xff)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			if gotRemote != tt.wantRemote || gotPeer != tt.wantPeer {
				t.Errorf("RemoteAddr %q, Peer %q; want %q, %q", gotRemote, gotPeer, tt.wantRemote, tt.wantPeer)
			}
		})
	}
}

// FuzzClientAddr: X-Forwarded-For is written by anyone; reading it never panics, and the answer
// is always the peer or an address that stands in the header.
func FuzzClientAddr(f *testing.F) {
	for _, s := range []string{"", "198.51.100.7", "1.1.1.1, 10.0.0.1", "[::1]:80, x", ",,,", "fe80::1%eth0", "::ffff:1.2.3.4"} {
		f.Add("10.0.0.5", s)
		f.Add("203.0.113.9", s)
	}
	trusted := mustPrefixes(f, "10.0.0.0/8", "::1/128")
	f.Fuzz(func(t *testing.T, peer, xff string) {
		p, err := netip.ParseAddr(peer)
		if err != nil {
			return
		}
		p = p.Unmap()
		got, ok := clientAddr(p, []string{xff}, trusted)
		if !ok {
			if got != p {
				t.Fatalf("not via the header, yet %s instead of the peer %s", got, p)
			}
			return
		}
		found := false
		for _, e := range strings.Split(xff, ",") {
			if a, good := parseForwarded(e); good && a == got {
				found = true
			}
		}
		if !found {
			t.Fatalf("client %s is in no entry of %q", got, xff)
		}
		if !trustedBy(p, trusted) {
			t.Fatalf("header read for an untrusted peer %s", p)
		}
	})
}

func trustedBy(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
