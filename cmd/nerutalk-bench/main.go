package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if isPairChild() { // the bystander pair of the bystander scenario, started by the tool (pair.go)
		if err := pairChildMain(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "nerutalk-bench (bystander pair): %v\n", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "nerutalk-bench: %v\n", err)
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	scenarios  []string
	base       string   // http://host:port
	wsBases    []string // the nodes the WebSockets connect to, round robin: base, then -ws-addrs
	pid        int
	nodePIDs   []int // the other nodes' processes (-node-pids), counted in the server's CPU
	warmup     time.Duration
	window     time.Duration
	runs       int
	drain      time.Duration
	backlog    time.Duration // longest wait for the server to work off a backlog between runs
	slo        time.Duration
	size       int
	inflight   int
	clientIDs  string
	gomaxprocs int
	label      string
	note       string
	maxTime    time.Duration
	cpuProfile string
	keepGoing  bool
	password   string
	profileDir string
	admin      string
	dbMatch    string        // -db-cpu-match: command-line substring of the database's processes
	bestP99    time.Duration // -best-p99: the e2e p99 bound of the chat's "best_within_bound" step

	setupWorkers int
	dialWorkers  int
	srcIPs       []net.IP
	perIP        int

	idleConns []int
	settle    time.Duration
	groupSize int
	oneGroup  bool

	fanoutSizes   []int
	fanoutRates   []float64 // deliveries per second
	fanoutSenders int

	chatUsers, chatGroups, chatGroupSize, chatSenders int
	chatRates                                         []float64
	historyRate                                       float64

	authUsers, authWorkers int

	loopbackConns, loopbackFrame int
	loopbackRates                []float64

	callBackground, callWorkers int

	abusers       int      // bystander: accounts that abuse, one worker each
	bystanderRate float64  // bystander: messages per second of the bystander pair
	imagePixels   int      // bystander: pixels of the generated 16-bit PNG
	connFlood     int      // bystander: connections one abuser tries to hold at once
	phases        []string // bystander: the phases to run, in order (quiet first, quiet_end last)
	phaseGap      time.Duration
	isolation     string // bystander: where the bystander pair runs (pair.go)

	target      string // nerutalk or centrifugo
	cfSecret    string
	cfNamespace string
}

var allScenarios = []string{"idle", "fanout", "chat", "auth", "loopback", "calls", "bystander"}

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("nerutalk-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var abuses string
	var scenarios, addr, wsAddrs, nodePIDs, idle, fsizes, frates, crates, lrates, src string
	fs.StringVar(&scenarios, "scenario", "", "scenarios to run, comma-separated: idle, fanout, chat, auth, loopback, calls, bystander (required)")
	fs.StringVar(&addr, "addr", "http://127.0.0.1:8080", "server base URL (loopback only)")
	fs.StringVar(&nodePIDs, "node-pids", "", "process ids of the other nodes (-ws-addrs), comma-separated: their CPU is added to the server's")
	fs.StringVar(&wsAddrs, "ws-addrs", "", "more nodes of the same deployment (one database and Redis), comma-separated: the WebSockets are spread over -addr and these, round robin, so that a group's members sit on different nodes (REST and /metrics stay on -addr)")
	fs.IntVar(&o.pid, "pid", 0, "server process id: RSS from /proc/<pid>/status, CPU use, open-file limit and the server's configuration")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "warm-up before each measured window")
	fs.DurationVar(&o.window, "window", 30*time.Second, "measured window")
	fs.IntVar(&o.runs, "runs", 3, "measured runs per step; results give the median and spread")
	fs.DurationVar(&o.drain, "drain", 15*time.Second, "longest wait after a run for outstanding acks and deliveries")
	fs.DurationVar(&o.backlog, "backlog-limit", 3*time.Minute, "longest wait for the server to work off its backlog between runs (a saturated step can leave senders x max-inflight messages queued)")
	fs.DurationVar(&o.slo, "slo", time.Second, "ack p99 above this marks a step saturated")
	fs.IntVar(&o.size, "size", 100, "message text size in bytes (carries the send timestamp)")
	fs.IntVar(&o.inflight, "max-inflight", 64, "unacknowledged messages one sender may have before it skips sends")
	fs.StringVar(&o.clientIDs, "client-ids", "v4", "client_id of each message: v4 (random UUIDs, what most apps send) or v7 (time-ordered UUIDs)")
	fs.IntVar(&o.gomaxprocs, "gomaxprocs", 0, "GOMAXPROCS of the generator (0 = Go's default)")
	fs.StringVar(&o.label, "label", "", "free label stored with the results (a commit, say)")
	fs.StringVar(&o.note, "note", "", "free note stored with the results")
	fs.DurationVar(&o.maxTime, "max-duration", time.Hour, "hard limit on the whole run")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the generator's CPU profile to this file")
	fs.BoolVar(&o.keepGoing, "keep-going", false, "measure every rate step even after one saturates")
	fs.StringVar(&o.profileDir, "profile-dir", "", "save the server's CPU profiles (first run of each step) and heap profiles (idle) here; needs NERUTALK_PPROF=on and -admin")
	fs.StringVar(&o.admin, "admin", "", "login:password of a server admin, for -profile-dir")
	fs.StringVar(&o.password, "password", "bench-password-1234", "password of the accounts the tool registers")
	fs.IntVar(&o.setupWorkers, "setup-workers", 16, "concurrent REST calls while setting up")
	fs.IntVar(&o.dialWorkers, "dial-workers", 32, "concurrent WebSocket dials")
	fs.StringVar(&src, "src-ips", "auto", "client source addresses for WebSockets, comma-separated 127.x.y.z, or auto (spread over 127.0.0.1, .2, ... above -conns-per-ip)")
	fs.IntVar(&o.perIP, "conns-per-ip", 25000, "WebSockets per source address")
	fs.StringVar(&idle, "idle-conns", "1k,5k,10k,20k", "idle: connection counts to measure at")
	fs.DurationVar(&o.settle, "settle", 10*time.Second, "idle: wait after reaching a count before sampling")
	fs.IntVar(&o.groupSize, "idle-group-size", 10, "idle: members per group (every user is in one group and one direct chat)")
	fs.BoolVar(&o.oneGroup, "one-group", false, "idle: every user in one group of them all (no direct chats), to measure presence and membership traffic in a big group")
	fs.StringVar(&o.dbMatch, "db-cpu-match", "", "count the CPU of every process whose command line contains this (with PostgreSQL: the database's name, which picks out its backends) as the database's, per window")
	fs.DurationVar(&o.bestP99, "best-p99", 100*time.Millisecond, "chat: e2e p99 bound of the best_within_bound step (the highest rate that kept up under it)")
	fs.StringVar(&fsizes, "fanout-sizes", "100,1k,5k", "fanout: group sizes (members online)")
	fs.StringVar(&frates, "fanout-rates", "15k,30k,60k,90k,120k", "fanout: target deliveries per second, stepped")
	fs.IntVar(&o.fanoutSenders, "fanout-senders", 1, "fanout: members that post")
	fs.IntVar(&o.chatUsers, "chat-users", 2000, "chat: users online")
	fs.IntVar(&o.chatGroups, "chat-groups", 200, "chat: groups")
	fs.IntVar(&o.chatGroupSize, "chat-group-size", 10, "chat: members per group")
	fs.IntVar(&o.chatSenders, "chat-senders", 200, "chat: active senders (spread over the groups)")
	fs.StringVar(&crates, "chat-rates", "1k,2.5k,5k,7.5k,10k", "chat: total messages per second, stepped")
	fs.Float64Var(&o.historyRate, "history-rate", 20, "chat: GET /chats/{id}/messages?limit=50 per second during the window")
	fs.IntVar(&o.authUsers, "auth-users", 8, "auth: accounts to log in as")
	fs.IntVar(&o.authWorkers, "auth-workers", 4, "auth: concurrent clients")
	fs.IntVar(&o.loopbackConns, "loopback-conns", 2000, "loopback: TCP connections (no server: both ends in this process)")
	fs.IntVar(&o.loopbackFrame, "loopback-frame", 400, "loopback: bytes per frame (a message_new of a 100-byte text is about 400)")
	fs.StringVar(&lrates, "loopback-rates", "25k,50k", "loopback: frames per second, stepped")
	fs.IntVar(&o.callBackground, "call-background", 1000, "calls: active calls held open while set-ups are measured")
	fs.IntVar(&o.callWorkers, "call-workers", 16, "calls: caller/callee pairs setting up calls in a closed loop")
	fs.IntVar(&o.abusers, "abusers", 4, "bystander: abusing accounts, one worker each (2 + this many registrations: at most 8 under the default per-address sign-in limit)")
	fs.Float64Var(&o.bystanderRate, "bystander-rate", 20, "bystander: messages per second the bystander sends (under the WebSocket frame limit)")
	fs.IntVar(&o.imagePixels, "image-pixels", 39_000_000, "bystander: pixels of the generated 16-bit PNG (just under NERUTALK_IMAGE_MAX_PIXELS by default)")
	fs.StringVar(&o.isolation, "bystander-isolation", isolateIdle, "bystander: idle = the bystander pair in a process of its own and the abuse (this process) under SCHED_IDLE, so that on one machine the abuse cannot take the bystander's client's CPU; process = the pair in a process of its own, same priority; none = the pair inside this process")
	fs.DurationVar(&o.phaseGap, "phase-gap", 3*time.Second, "bystander: pause between two phases, so that what one abuse left running is not charged to the next (quiet_end shows what remains)")
	fs.StringVar(&abuses, "abuses", "all", "bystander: the abuse phases to run, comma-separated (e.g. image_uploads), or all; quiet and quiet_end always run")
	fs.IntVar(&o.connFlood, "conn-flood", 2000, "bystander: WebSockets one abuser tries to hold on its token")
	fs.StringVar(&o.target, "target", "nerutalk", "server under test: nerutalk, or centrifugo (fanout and chat, and loopback beside them: JSON protocol over /connection/websocket, client publish; see bench/centrifugo.sh)")
	fs.StringVar(&o.cfSecret, "centrifugo-secret", "", "centrifugo: the HMAC secret of its connection tokens (client.token.hmac_secret_key)")
	fs.StringVar(&o.cfNamespace, "centrifugo-namespace", "chat", "centrifugo: the namespace of the fanout channel (it must allow subscribe and publish for clients)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: nerutalk-bench -scenario idle|fanout|chat|auth|loopback|calls|bystander [flags]\n\n"+
			"Drives a running NeruTalk server over its public REST and WebSocket API and prints one JSON line\n"+
			"of results per scenario on stdout (a human summary goes to stderr). See docs/BENCHMARKS.md.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	phases, err := parseAbuses(abuses)
	if err != nil {
		return nil, err
	}
	o.phases = phases
	for _, s := range strings.Split(scenarios, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !contains(allScenarios, s) {
			return nil, fmt.Errorf("-scenario: unknown %q (want %s)", s, strings.Join(allScenarios, ", "))
		}
		o.scenarios = append(o.scenarios, s)
	}
	if len(o.scenarios) == 0 {
		fs.Usage()
		return nil, errors.New("-scenario is required")
	}
	base, err := loopbackBase(addr)
	if err != nil {
		return nil, fmt.Errorf("-addr: %w", err)
	}
	o.base = base
	o.wsBases = []string{base}
	for _, a := range strings.Split(wsAddrs, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		b, err := loopbackBase(a)
		if err != nil {
			return nil, fmt.Errorf("-ws-addrs: %w", err)
		}
		o.wsBases = append(o.wsBases, b)
	}
	for _, p := range strings.Split(nodePIDs, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-node-pids: %q is not a process id", p)
		}
		o.nodePIDs = append(o.nodePIDs, n)
	}
	if o.srcIPs, err = parseSrcIPs(src); err != nil {
		return nil, fmt.Errorf("-src-ips: %w", err)
	}
	lists := []struct {
		name, val string
		dst       *[]int
	}{{"idle-conns", idle, &o.idleConns}, {"fanout-sizes", fsizes, &o.fanoutSizes}}
	for _, l := range lists {
		if *l.dst, err = parseIntList(l.val); err != nil {
			return nil, fmt.Errorf("-%s: %w", l.name, err)
		}
	}
	if o.fanoutRates, err = parseList(frates); err != nil {
		return nil, fmt.Errorf("-fanout-rates: %w", err)
	}
	if o.chatRates, err = parseList(crates); err != nil {
		return nil, fmt.Errorf("-chat-rates: %w", err)
	}
	if o.loopbackRates, err = parseList(lrates); err != nil {
		return nil, fmt.Errorf("-loopback-rates: %w", err)
	}
	if o.clientIDs != "v4" && o.clientIDs != "v7" {
		return nil, fmt.Errorf("-client-ids must be v4 or v7, not %q", o.clientIDs)
	}
	for _, f := range []struct {
		name string
		v    int
		min  int
	}{
		{"runs", o.runs, 1}, {"size", o.size, 48}, {"max-inflight", o.inflight, 1}, {"setup-workers", o.setupWorkers, 1},
		{"dial-workers", o.dialWorkers, 1}, {"conns-per-ip", o.perIP, 1}, {"idle-group-size", o.groupSize, 2},
		{"fanout-senders", o.fanoutSenders, 1}, {"chat-users", o.chatUsers, 2}, {"chat-groups", o.chatGroups, 1},
		{"chat-group-size", o.chatGroupSize, 2}, {"chat-senders", o.chatSenders, 1}, {"auth-users", o.authUsers, 1},
		{"auth-workers", o.authWorkers, 1}, {"loopback-conns", o.loopbackConns, 1}, {"loopback-frame", o.loopbackFrame, 1},
		{"call-background", o.callBackground, 0}, {"call-workers", o.callWorkers, 1},
		{"abusers", o.abusers, 1}, {"image-pixels", o.imagePixels, 1}, {"conn-flood", o.connFlood, 1},
	} {
		if f.v < f.min {
			return nil, fmt.Errorf("-%s must be at least %d", f.name, f.min)
		}
	}
	for _, k := range o.fanoutSizes {
		if k < 2 {
			return nil, errors.New("-fanout-sizes: a group has at least 2 members")
		}
	}
	if o.chatGroupSize > o.chatUsers {
		return nil, errors.New("-chat-group-size cannot exceed -chat-users")
	}
	switch o.target {
	case "nerutalk":
	case "centrifugo":
		for _, sc := range o.scenarios {
			if sc != "fanout" && sc != "chat" && sc != "loopback" {
				return nil, fmt.Errorf("-target centrifugo runs the fanout, chat and loopback scenarios only, not %q", sc)
			}
		}
		if o.profileDir != "" {
			return nil, errors.New("-profile-dir needs -target nerutalk")
		}
	default:
		return nil, fmt.Errorf("-target must be nerutalk or centrifugo, not %q", o.target)
	}
	if (o.profileDir == "") != (o.admin == "") {
		return nil, errors.New("-profile-dir and -admin go together")
	}
	if !contains([]string{isolateNone, isolateProcess, isolateIdle}, o.isolation) {
		return nil, fmt.Errorf("-bystander-isolation must be none, process or idle, not %q", o.isolation)
	}
	if o.bystanderRate <= 0 {
		return nil, errors.New("-bystander-rate must be positive")
	}
	if o.bestP99 <= 0 {
		return nil, errors.New("-best-p99 must be positive")
	}
	if o.window <= 0 || o.warmup < 0 || o.drain <= 0 || o.backlog <= 0 {
		return nil, errors.New("-window and -drain must be positive, -warmup not negative")
	}
	return o, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// loopbackBase normalises -addr to http://host:port and refuses anything but a loopback address:
// the tool generates load, and load stays on this machine.
// serverPIDs lists the processes whose CPU is the server's: -pid and -node-pids.
func (o *options) serverPIDs() []int {
	if o.pid <= 0 {
		return nil
	}
	return append([]int{o.pid}, o.nodePIDs...)
}

func loopbackBase(addr string) (string, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%q is not a URL or host:port", addr)
	}
	if u.Scheme != "http" {
		return "", fmt.Errorf("scheme %q not supported (want http)", u.Scheme)
	}
	host := u.Hostname()
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("%q is not a loopback address: load stays on this machine", u.Hostname())
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return "http://" + net.JoinHostPort(ip.String(), port), nil
}

// parseAbuses reads -abuses: nil for all, else quiet, the chosen abuses in the order they
// normally run, and quiet_end.
func parseAbuses(s string) ([]string, error) {
	if s == "" || s == "all" {
		return nil, nil
	}
	abuses := bystanderPhases[1 : len(bystanderPhases)-1]
	chosen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if !contains(abuses, f) {
			return nil, fmt.Errorf("-abuses: unknown %q (want all or some of %s)", f, strings.Join(abuses, ", "))
		}
		chosen[f] = true
	}
	out := []string{"quiet"}
	for _, a := range abuses {
		if chosen[a] {
			out = append(out, a)
		}
	}
	return append(out, "quiet_end"), nil
}

// parseSrcIPs reads -src-ips; "auto" (or empty) gives nil (decided from the connection count).
func parseSrcIPs(s string) ([]net.IP, error) {
	if s == "" || s == "auto" {
		return nil, nil
	}
	var out []net.IP
	for _, f := range strings.Split(s, ",") {
		ip := net.ParseIP(strings.TrimSpace(f))
		if ip == nil || !ip.IsLoopback() || ip.To4() == nil {
			return nil, fmt.Errorf("%q is not an IPv4 loopback address", f)
		}
		out = append(out, ip)
	}
	return out, nil
}

// autoSrcIPs spreads n connections over 127.0.0.1, 127.0.0.2, ... perIP at a time.
func autoSrcIPs(n, perIP int) []net.IP {
	if n <= perIP {
		return nil
	}
	count := (n + perIP - 1) / perIP
	out := make([]net.IP, count)
	for i := range out {
		out[i] = net.IPv4(127, 0, byte((i+1)/256), byte((i+1)%256))
	}
	return out
}

// runner holds what every scenario shares.
type runner struct {
	opt     *options
	api     *apiClient
	probe   *probe
	dialer  *wsDialer
	connCtx context.Context // lives as long as the WebSockets
	prof    *profiler       // nil unless -profile-dir
	frames  frameCounter    // every frame every connection received, by type
	stderr  io.Writer
	logMu   sync.Mutex // guards stderr and warns
	start   time.Time
	warns   []string
}

// logf writes a progress line; progress callbacks call it from other goroutines, so the writes
// are serialised.
func (r *runner) logf(format string, args ...any) {
	line := fmt.Sprintf("[%6.1fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
	r.logMu.Lock()
	defer r.logMu.Unlock()
	_, _ = io.WriteString(r.stderr, line)
}

func (r *runner) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.logMu.Lock()
	r.warns = append(r.warns, msg)
	r.logMu.Unlock()
	r.logf("WARNING: %s", msg)
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	if o.gomaxprocs > 0 {
		runtime.GOMAXPROCS(o.gomaxprocs)
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.maxTime)
	defer cancel()

	var failed []string
	var done []*result
	for _, sc := range o.scenarios {
		res, err := runScenario(ctx, o, sc, stderr, done)
		if err != nil {
			return fmt.Errorf("%s: %w", sc, err)
		}
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
		printSummary(stderr, res)
		done = append(done, res)
		if !res.OK {
			failed = append(failed, sc)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("correctness checks failed in %s (see the results)", strings.Join(failed, ", "))
	}
	return nil
}

// runScenario runs one scenario; prior holds the results of the scenarios this invocation ran
// before it (chat reads the loopback floor from there).
func runScenario(ctx context.Context, o *options, scenario string, stderr io.Writer, prior []*result) (*result, error) {
	connCtx, cancelConns := context.WithCancel(ctx)
	defer cancelConns()
	r := &runner{opt: o, api: newAPIClient(o.base, max(o.setupWorkers, 64)), connCtx: connCtx, stderr: stderr, start: time.Now()}
	r.probe = &probe{base: o.base, hc: r.api.hc, pid: o.pid}
	res := newResult(r, scenario)
	if o.profileDir != "" && scenario != "loopback" { // loopback has no server to profile
		p, err := newProfiler(ctx, r.api, o.profileDir, o.admin)
		if err != nil {
			return nil, err
		}
		r.prof = p
	}
	var err error
	switch scenario {
	case "idle":
		err = r.idle(ctx, res)
	case "fanout":
		if o.target == "centrifugo" {
			err = r.cfFanout(ctx, res)
		} else {
			err = r.fanout(ctx, res)
		}
	case "chat":
		if o.target == "centrifugo" {
			err = r.cfChat(ctx, res, loopbackOf(prior))
		} else {
			err = r.chat(ctx, res, loopbackOf(prior))
		}
	case "auth":
		err = r.auth(ctx, res)
	case "loopback":
		err = r.loopback(ctx, res)
	case "calls":
		err = r.calls(ctx, res)
	case "bystander":
		err = r.bystander(ctx, res)
	}
	r.prof.wait()
	if err != nil {
		return nil, err
	}
	res.finish(r)
	return res, nil
}
