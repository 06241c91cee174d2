package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// result is one scenario's JSON line: what was measured, how, on what, and against which targets.
type result struct {
	Scenario  string        `json:"scenario"`
	Target    string        `json:"target"` // the server under test: nerutalk or centrifugo
	Started   time.Time     `json:"started"`
	DurationS float64       `json:"duration_s"`
	Label     string        `json:"label,omitempty"`
	Note      string        `json:"note,omitempty"`
	Machine   machineInfo   `json:"machine"`
	Server    serverInfo    `json:"server"`
	Generator generatorInfo `json:"generator"`
	Method    methodInfo    `json:"method"`
	Results   any           `json:"results"`
	Targets   []targetCheck `json:"targets,omitempty"`
	Checks    []string      `json:"failed_checks,omitempty"` // correctness failures (loss, duplicates, gaps)
	Warnings  []string      `json:"warnings,omitempty"`
	OK        bool          `json:"ok"` // every correctness check passed (targets are not asserted)

	summary []string // the human summary lines
}

type methodInfo struct {
	WarmupS      float64 `json:"warmup_s"`
	WindowS      float64 `json:"window_s"`
	Runs         int     `json:"runs"`
	PayloadBytes int     `json:"payload_bytes"`
	DrainS       float64 `json:"drain_s"`
	SLOMS        float64 `json:"saturation_ack_p99_ms"`
	MaxInflight  int     `json:"max_inflight_per_sender"`
	ClientIDs    string  `json:"client_ids"`
	Statistic    string  `json:"statistic"`
}

// targetCheck compares a measured figure with the project's target (reported, not asserted).
type targetCheck struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

func newResult(r *runner, scenario string) *result {
	o := r.opt
	res := &result{
		Scenario: scenario, Target: o.target, Started: time.Now().UTC(), Label: o.label, Note: o.note,
		Machine: readMachine(), Generator: readGenerator(),
		Method: methodInfo{
			WarmupS: o.warmup.Seconds(), WindowS: o.window.Seconds(), Runs: o.runs, PayloadBytes: o.size,
			DrainS: o.drain.Seconds(), SLOMS: float64(o.slo.Milliseconds()), MaxInflight: o.inflight, ClientIDs: o.clientIDs,
			Statistic: "median over runs, with min, max and spread_pct = (max-min)/median",
		},
		Server: serverInfo{URL: o.base, PID: o.pid, Database: "unknown", Redis: "unknown",
			ConfigSource: "unknown (give -pid to read the server's environment and flags)"},
	}
	if len(o.wsBases) > 1 {
		res.Server.WSNodes = o.wsBases
	}
	res.Server.NodePIDs = o.nodePIDs
	if o.target == "centrifugo" {
		res.Server.Database, res.Server.Redis, res.Server.ConfigSource = "none (centrifugo: history in memory)", "none", "centrifugo: see bench/centrifugo.sh"
	} else if o.pid > 0 {
		if cfg, err := readServerConfig(o.pid); err != nil {
			r.warn("cannot read the server's configuration from /proc/%d: %v", o.pid, err)
		} else {
			res.Server.Config = describeConfig(cfg)
			res.Server.Database = databaseLabel(cfg)
			res.Server.Redis = redisLabel(cfg)
			res.Server.ConfigSource = fmt.Sprintf("/proc/%d environ and cmdline", o.pid)
			if scenario != "auth" && cfg.AccessTokenTTL < o.maxTime {
				r.warn("the server's access tokens live %v and it closes a WebSocket when its token expires (4001): "+
					"a longer run loses connections; start it with NERUTALK_ACCESS_TOKEN_TTL=4h", cfg.AccessTokenTTL)
			}
		}
	}
	if o.pid > 0 {
		if st, err := readProcStatus(o.pid); err == nil {
			res.Server.CPUsAllowed = st.CPUsAllowed
		}
		if soft, hard, err := readNoFile(o.pid); err == nil {
			res.Server.NoFileSoft, res.Server.NoFileHard = soft, hard
		}
	}
	if s, err := r.probe.sample(context.Background()); err == nil {
		res.Server.GoVersion, res.Server.GOMAXPROCS = s.GoVersion, s.GOMAXPROCS
	}
	return res
}

func (res *result) target(name, target, measured string, met bool) {
	res.Targets = append(res.Targets, targetCheck{Name: name, Target: target, Measured: measured, Met: met})
}

func (res *result) check(ok bool, format string, args ...any) {
	if !ok {
		res.Checks = append(res.Checks, fmt.Sprintf(format, args...))
	}
}

func (res *result) say(format string, args ...any) {
	res.summary = append(res.summary, fmt.Sprintf(format, args...))
}

func (res *result) finish(r *runner) {
	res.DurationS = round3(time.Since(r.start).Seconds())
	res.Machine.LoadEnd = loadAvg()
	res.Warnings = r.warns
	res.OK = len(res.Checks) == 0
	if load := res.Machine.LoadStart; len(load) > 0 && load[0] > 1.5 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("1-minute load was %.2f at the start: other work shared the CPUs", load[0]))
	}
}

// printSummary writes the human summary of a result.
func printSummary(w io.Writer, res *result) {
	fmt.Fprintf(w, "\n== %s: %s ==\n", res.Scenario, map[bool]string{true: "checks passed", false: "CHECKS FAILED"}[res.OK])
	fmt.Fprintf(w, "machine: %d CPUs (%s), load %v → %v; server %s, %s, GOMAXPROCS %v, cpus %s; generator GOMAXPROCS %d, cpus %s\n",
		res.Machine.CPUs, res.Machine.CPUModel, res.Machine.LoadStart, res.Machine.LoadEnd, res.Server.GoVersion,
		res.Server.Database, res.Server.GOMAXPROCS, orDash(res.Server.CPUsAllowed), res.Generator.GOMAXPROCS, orDash(res.Generator.CPUsAllowed))
	if c := res.Server.Config; c != nil {
		fmt.Fprintf(w, "server config: argon2 %s KiB × %s, rate limits %s, max group %s, ws send queue %s\n",
			c["argon2_memory_kib"], c["argon2_time"], c["rate_limits"], c["max_group_members"], c["ws_send_queue"])
	}
	fmt.Fprintf(w, "method: warm-up %gs, window %gs, %d run(s) per step, %d-byte payloads\n",
		res.Method.WarmupS, res.Method.WindowS, res.Method.Runs, res.Method.PayloadBytes)
	for _, l := range res.summary {
		fmt.Fprintln(w, l)
	}
	for _, t := range res.Targets {
		mark := "MISSED"
		if t.Met {
			mark = "met"
		}
		fmt.Fprintf(w, "target %-40s %-28s measured %-28s %s\n", t.Name, t.Target, t.Measured, mark)
	}
	for _, c := range res.Checks {
		fmt.Fprintf(w, "FAILED CHECK: %s\n", c)
	}
	for _, x := range res.Warnings {
		fmt.Fprintf(w, "warning: %s\n", x)
	}
	fmt.Fprintf(w, "took %.0fs\n", res.DurationS)
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
