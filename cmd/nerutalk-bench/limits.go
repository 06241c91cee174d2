package main

import (
	"errors"
	"strings"
	"syscall"
)

// Each connection costs one file descriptor on both ends; these margins leave room for the
// rest of each process (database files, listeners, the REST client's pool).
const (
	clientFDMargin = 128
	serverFDMargin = 128
)

// connLimit raises this process's open-file limit and returns how many WebSockets both ends can
// hold, warning when the server's limit is what stops want.
func (r *runner) connLimit(want int) int {
	limit := want
	own, err := raiseNoFile()
	if err != nil {
		r.warn("cannot raise this tool's open-file limit: %v", err)
	} else if int(own)-clientFDMargin < limit {
		r.warn("this tool's open-file limit is %d (hard): at most %d connections; raise it with `ulimit -Hn` as root", own, int(own)-clientFDMargin)
		limit = int(own) - clientFDMargin
	}
	if r.opt.pid <= 0 {
		r.warn("server's open-file limit unknown (no -pid); it needs more than %d", want+serverFDMargin)
		return limit
	}
	soft, _, err := readNoFile(r.opt.pid)
	if err != nil {
		r.warn("cannot read the server's open-file limit: %v", err)
		return limit
	}
	if int(soft)-serverFDMargin < limit {
		r.warn("the server's open-file limit is %d: too low for %d connections (it needs about %d); start it after `ulimit -n %d`",
			soft, want, want+serverFDMargin, want+serverFDMargin)
		limit = int(soft) - serverFDMargin
	}
	return max(limit, 0)
}

// setDialer prepares the WebSocket dialer for up to n connections, spreading them over
// several source addresses when one address's ephemeral ports would not be enough.
func (r *runner) setDialer(n int) {
	ips := r.opt.srcIPs
	if ips == nil {
		ips = autoSrcIPs(n, r.opt.perIP)
	}
	if len(ips) > 1 {
		r.logf("spreading %d connections over %d source addresses (%v … %v)", n, len(ips), ips[0], ips[len(ips)-1])
	}
	r.dialer = newWSDialer(r.opt.wsBases, ips, r.opt.perIP)
}

// hintLimits turns a dial failure that looks like a resource limit into advice.
func (r *runner) hintLimits(err error) {
	switch {
	case errors.Is(err, syscall.EMFILE), strings.Contains(err.Error(), "too many open files"):
		r.warn("out of file descriptors: raise RLIMIT_NOFILE of the server and the tool (`ulimit -n`)")
	case errors.Is(err, syscall.EADDRNOTAVAIL), strings.Contains(err.Error(), "cannot assign requested address"):
		r.warn("out of ephemeral ports: spread connections over more source addresses (-src-ips, -conns-per-ip)")
	}
}
