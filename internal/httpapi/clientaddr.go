package httpapi

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Peer returns the address of the proxy that forwarded the request ctx belongs to, when
// realClient replaced the request's RemoteAddr with the client's address; "" otherwise.
func Peer(ctx context.Context) string {
	p, _ := ctx.Value(peerKey).(string)
	return p
}

// clientAddr returns the address of the client behind a chain of trusted proxies: peer is the
// address the connection came from, xff the X-Forwarded-For header lines in order. Each proxy
// appends the address it received the request from, so the list is read from the right: every
// trusted address is a proxy of ours and is skipped, and the first address that is not trusted
// is the client (what a client wrote itself stands further left and is never reached). When the
// peer is not trusted the header is ignored; an entry that is not an address ends the walk at
// the last proxy. ok is false when the answer is the peer itself.
func clientAddr(peer netip.Addr, xff []string, trusted []netip.Prefix) (client netip.Addr, ok bool) {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	client = peer
	if !isTrusted(peer) {
		return peer, false
	}
	for i := len(xff) - 1; i >= 0; i-- {
		entries := strings.Split(xff[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			a, good := parseForwarded(entries[j])
			if !good {
				return client, client != peer
			}
			client = a
			if !isTrusted(a) {
				return client, true
			}
		}
	}
	return client, client != peer
}

// parseForwarded reads one X-Forwarded-For entry: an address, optionally with a port
// (1.2.3.4:5678, [2001:db8::1]:443), as some proxies write it.
func parseForwarded(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// realClient makes r.RemoteAddr the client's address ("ip:0") when the request came through
// trusted proxies (their X-Forwarded-For, read by clientAddr), so that every per-address limit,
// the sessions' sign-in address and the access log see the client and not the load balancer.
// The proxy's own address stays available through Peer. With no trusted proxies the header is
// never read: anyone could write it.
func realClient(trusted []netip.Prefix) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if len(trusted) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			xff := r.Header.Values("X-Forwarded-For")
			if len(xff) == 0 {
				next.ServeHTTP(w, r)
				return
			}
			host, _, err := net.SplitHostPort(r.RemoteAddr)
			if err != nil {
				host = r.RemoteAddr
			}
			peer, err := netip.ParseAddr(host)
			if err != nil {
				next.ServeHTTP(w, r)
				return
			}
			client, ok := clientAddr(peer.Unmap(), xff, trusted)
			if !ok {
				next.ServeHTTP(w, r)
				return
			}
			r2 := r.WithContext(context.WithValue(r.Context(), peerKey, r.RemoteAddr))
			r2.RemoteAddr = netip.AddrPortFrom(client, 0).String()
			next.ServeHTTP(w, r2)
		})
	}
}
