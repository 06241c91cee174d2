package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/nerutalk/nerutalk/internal/config"
)

// machineInfo describes the host the figures were taken on.
type machineInfo struct {
	CPUs       int       `json:"cpus"` // online CPUs of the machine (not of this process's affinity)
	CPUModel   string    `json:"cpu_model"`
	MemTotalMB int64     `json:"mem_total_mb"`
	Kernel     string    `json:"kernel"`
	LoadStart  []float64 `json:"loadavg_start"` // 1, 5 and 15 minutes
	LoadEnd    []float64 `json:"loadavg_end"`
}

func readMachine() machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), LoadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			k = strings.TrimSpace(k)
			switch {
			case ok && k == "processor":
				n++
			case ok && k == "model name" && m.CPUModel == "":
				m.CPUModel = strings.TrimSpace(v)
			}
		}
		if n > 0 {
			m.CPUs = n
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				m.MemTotalMB = kb / 1024
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func loadAvg() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b))
	out := make([]float64, 0, 3)
	for _, s := range f[:min(3, len(f))] {
		v, _ := strconv.ParseFloat(s, 64)
		out = append(out, v)
	}
	return out
}

// serverInfo describes the server under test: where it runs and how it is configured.
type serverInfo struct {
	URL          string            `json:"url"`
	WSNodes      []string          `json:"ws_nodes,omitempty"`  // the nodes the WebSockets were spread over, when more than one
	NodePIDs     []int             `json:"node_pids,omitempty"` // the other nodes' processes, whose CPU server_cores includes
	PID          int               `json:"pid,omitempty"`
	GoVersion    string            `json:"go_version,omitempty"`
	GOMAXPROCS   float64           `json:"gomaxprocs,omitempty"`
	CPUsAllowed  string            `json:"cpus_allowed,omitempty"`
	NoFileSoft   uint64            `json:"nofile_soft,omitempty"`
	NoFileHard   uint64            `json:"nofile_hard,omitempty"`
	Database     string            `json:"database"`
	Redis        string            `json:"redis"`
	ConfigSource string            `json:"config_source"`
	Config       map[string]string `json:"config,omitempty"`
}

// readServerConfig reconstructs the server's effective configuration from its process:
// /proc/<pid>/environ and /proc/<pid>/cmdline, parsed by the server's own config package.
func readServerConfig(pid int) (config.Config, error) {
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return config.Config{}, err
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return config.Config{}, err
	}
	return configFromProc(env, cmd)
}

func configFromProc(environ, cmdline []byte) (config.Config, error) {
	vars := map[string]string{}
	for _, kv := range bytes.Split(environ, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			vars[k] = v
		}
	}
	var args []string
	for _, a := range bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0}) {
		args = append(args, string(a))
	}
	if len(args) > 0 {
		args = args[1:]
	}
	if len(args) > 0 && (args[0] == "serve") {
		args = args[1:]
	}
	return config.Load(args, func(k string) string { return vars[k] }, io.Discard)
}

// describeConfig is the part of the configuration that shapes the figures (never secrets).
func describeConfig(c config.Config) map[string]string {
	return map[string]string{
		"argon2_memory_kib":  strconv.FormatUint(uint64(c.Argon2MemoryKiB), 10),
		"argon2_time":        strconv.FormatUint(uint64(c.Argon2Time), 10),
		"argon2_threads":     strconv.FormatUint(uint64(c.Argon2Threads), 10),
		"rate_limits":        onOff(c.RateLimits),
		"max_group_members":  strconv.Itoa(c.MaxGroupMembers),
		"ws_send_queue":      strconv.Itoa(c.WSSendQueue),
		"ws_ping_interval":   c.WSPingInterval.String(),
		"ws_max_frame_bytes": strconv.FormatInt(c.WSMaxFrameBytes, 10),
		"access_token_ttl":   c.AccessTokenTTL.String(),
		"log_level":          c.LogLevel.String(),
		"pprof":              onOff(c.Pprof),
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// databaseLabel names the engine and database without credentials.
func databaseLabel(c config.Config) string {
	if c.DatabaseURL == "" {
		return "sqlite (" + c.DataDir + ")"
	}
	u, err := url.Parse(c.DatabaseURL)
	if err != nil {
		return "postgres"
	}
	return "postgres (" + u.Host + u.Path + ")"
}

func redisLabel(c config.Config) string {
	if c.RedisURL == "" {
		return "none (single node, in-process bus)"
	}
	u, err := url.Parse(c.RedisURL)
	if err != nil {
		return "redis"
	}
	return "redis (" + u.Host + u.Path + ")"
}

// generatorInfo describes this process.
type generatorInfo struct {
	GoVersion   string `json:"go_version"`
	GOMAXPROCS  int    `json:"gomaxprocs"`
	CPUsAllowed string `json:"cpus_allowed,omitempty"`
	NoFile      uint64 `json:"nofile"`
	Connections int    `json:"max_connections,omitempty"`
	SourceIPs   int    `json:"source_ips,omitempty"`
}

func readGenerator() generatorInfo {
	g := generatorInfo{GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	if st, err := readProcStatusSelf(); err == nil {
		g.CPUsAllowed = st.CPUsAllowed
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		g.NoFile = rl.Cur
	}
	return g
}

func readProcStatusSelf() (procStatus, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return procStatus{}, err
	}
	defer f.Close()
	return parseProcStatus(bufio.NewReader(f))
}

// raiseNoFile lifts this process's soft RLIMIT_NOFILE to its hard limit and returns the result.
func raiseNoFile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, err
		}
	}
	return rl.Cur, nil
}
