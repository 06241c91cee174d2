package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// promSample is one line of the Prometheus text exposition format.
type promSample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// parseProm reads the Prometheus text format. Comment and blank lines are skipped; a malformed
// line is an error naming its line number.
func parseProm(r io.Reader) ([]promSample, error) {
	var out []promSample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || t[0] == '#' {
			continue
		}
		s, err := parsePromLine(t)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", line, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parsePromLine(t string) (promSample, error) {
	s := promSample{}
	i := strings.IndexAny(t, "{ \t")
	if i <= 0 {
		return s, errors.New("no value")
	}
	s.Name, t = t[:i], t[i:]
	if t[0] == '{' {
		labels, rest, err := parsePromLabels(t[1:])
		if err != nil {
			return s, err
		}
		s.Labels, t = labels, rest
	}
	fields := strings.Fields(t)
	if len(fields) < 1 || len(fields) > 2 {
		return s, errors.New("want a value and an optional timestamp")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("value %q: %w", fields[0], err)
	}
	s.Value = v
	return s, nil
}

// parsePromLabels parses `name="value",...}` and returns what follows the closing brace.
func parsePromLabels(t string) (map[string]string, string, error) {
	labels := map[string]string{}
	for {
		t = strings.TrimLeft(t, " ,")
		if strings.HasPrefix(t, "}") {
			return labels, t[1:], nil
		}
		eq := strings.IndexByte(t, '=')
		if eq <= 0 || len(t) < eq+2 || t[eq+1] != '"' {
			return nil, "", errors.New("malformed label")
		}
		name := strings.TrimSpace(t[:eq])
		t = t[eq+2:]
		var val strings.Builder
		closed := false
		for i := 0; i < len(t); i++ {
			c := t[i]
			if c == '\\' && i+1 < len(t) {
				i++
				switch t[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(t[i])
				}
				continue
			}
			if c == '"' {
				t, closed = t[i+1:], true
				break
			}
			val.WriteByte(c)
		}
		if !closed {
			return nil, "", errors.New("unterminated label value")
		}
		labels[name] = val.String()
	}
}

// serverSample is the server's state at one moment.
type serverSample struct {
	At             time.Time `json:"-"`
	RSSBytes       float64   `json:"rss_bytes"`
	RSSSource      string    `json:"rss_source"` // "proc" (/proc/<pid>/status) or "metrics"
	Goroutines     float64   `json:"goroutines"`
	HeapInuseBytes float64   `json:"heap_inuse_bytes"`
	StackInuse     float64   `json:"stack_inuse_bytes"`
	FramesOut      float64   `json:"frames_out"` // nerutalk_ws_frames_out_total: frames the server wrote to WebSockets (-1 when it has no such counter)
	GoVersion      string    `json:"go_version,omitempty"`
	GOMAXPROCS     float64   `json:"gomaxprocs,omitempty"`
}

// probe reads the server's figures from /metrics and, with a pid, from /proc.
type probe struct {
	base string // http://host:port
	hc   *http.Client
	pid  int
}

func (p *probe) sample(ctx context.Context) (serverSample, error) {
	s := serverSample{At: time.Now(), FramesOut: -1}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/metrics", nil)
	if err != nil {
		return s, err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return s, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("metrics: status %d", resp.StatusCode)
	}
	samples, err := parseProm(resp.Body)
	if err != nil {
		return s, err
	}
	for _, m := range samples {
		switch m.Name {
		case "go_goroutines":
			s.Goroutines = m.Value
		case "go_memstats_heap_inuse_bytes":
			s.HeapInuseBytes = m.Value
		case "go_memstats_stack_inuse_bytes":
			s.StackInuse = m.Value
		case "nerutalk_ws_frames_out_total":
			s.FramesOut = m.Value
		case "process_resident_memory_bytes":
			s.RSSBytes, s.RSSSource = m.Value, "metrics"
		case "go_info":
			s.GoVersion = m.Labels["version"]
		case "go_sched_gomaxprocs_threads":
			s.GOMAXPROCS = m.Value
		}
	}
	if p.pid > 0 {
		st, err := readProcStatus(p.pid)
		if err != nil {
			return s, err
		}
		s.RSSBytes, s.RSSSource = float64(st.RSSKiB)*1024, "proc"
	}
	return s, nil
}

// procStatus holds the lines of /proc/<pid>/status the tool uses.
type procStatus struct {
	RSSKiB      int64
	Threads     int64
	CPUsAllowed string
}

func readProcStatus(pid int) (procStatus, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStatus{}, fmt.Errorf("server process: %w", err)
	}
	defer f.Close()
	return parseProcStatus(f)
}

func parseProcStatus(r io.Reader) (procStatus, error) {
	var st procStatus
	sc := bufio.NewScanner(r)
	found := false
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "VmRSS":
			n, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
			if err != nil {
				return st, fmt.Errorf("VmRSS %q: %w", v, err)
			}
			st.RSSKiB, found = n, true
		case "Threads":
			st.Threads, _ = strconv.ParseInt(v, 10, 64)
		case "Cpus_allowed_list":
			st.CPUsAllowed = v
		}
	}
	if err := sc.Err(); err != nil {
		return st, err
	}
	if !found {
		return st, errors.New("no VmRSS line (a kernel thread or a zombie?)")
	}
	return st, nil
}

// readNoFile returns the soft and hard RLIMIT_NOFILE of a process from /proc/<pid>/limits.
func readNoFile(pid int) (soft, hard uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseNoFile(string(b))
}

func parseNoFile(limits string) (soft, hard uint64, err error) {
	for _, line := range strings.Split(limits, "\n") {
		rest, ok := strings.CutPrefix(line, "Max open files")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			break
		}
		parse := func(s string) (uint64, error) {
			if s == "unlimited" {
				return 1 << 62, nil
			}
			return strconv.ParseUint(s, 10, 64)
		}
		if soft, err = parse(f[0]); err != nil {
			return 0, 0, err
		}
		if hard, err = parse(f[1]); err != nil {
			return 0, 0, err
		}
		return soft, hard, nil
	}
	return 0, 0, errors.New("no \"Max open files\" line")
}

// cpuSeconds is the user+system CPU time a process has used, from /proc/<pid>/stat ("self" for
// this process).
func cpuSeconds(pid string) (float64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	return parseCPUSeconds(string(b), 100) // USER_HZ is 100 on every Linux the tool targets
}

func parseCPUSeconds(stat string, hz float64) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed stat: no command")
	}
	f := strings.Fields(stat[i+1:])
	// After the command: state(0) ppid(1) ... utime(11) stime(12).
	if len(f) < 13 {
		return 0, errors.New("malformed stat: too few fields")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("malformed stat: %w", err)
	}
	return float64(ut+st) / hz, nil
}

// machineSteal is the machine's CPU time stolen by the hypervisor so far, in seconds (all CPUs
// together), from the "cpu" line of /proc/stat.
func machineSteal() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseSteal(string(b), 100)
}

func parseSteal(stat string, hz float64) (float64, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	// cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("malformed /proc/stat: no cpu line with a steal column")
	}
	v, err := strconv.ParseUint(f[8], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed /proc/stat: %w", err)
	}
	return float64(v) / hz, nil
}

// cpuMeter measures how many cores the server and the generator used over an interval, and how
// much CPU the hypervisor took from the machine meanwhile.
type cpuMeter struct {
	serverPIDs     []int // every node's process: server_cores is their sum
	dbMatch        string
	start          time.Time
	server, client float64
	steal          float64
	db             map[int]float64 // CPU seconds of each process matching dbMatch at the start
}

func startCPU(serverPIDs []int, dbMatch string) *cpuMeter {
	m := &cpuMeter{serverPIDs: serverPIDs, dbMatch: dbMatch, start: time.Now()}
	m.client, _ = cpuSeconds("self")
	m.server, _ = serverCPUSeconds(serverPIDs)
	m.steal, _ = machineSteal()
	if dbMatch != "" {
		m.db = matchingCPU(dbMatch)
	}
	return m
}

// matchingCPU returns the CPU seconds used so far by every process whose command line contains
// match: with PostgreSQL, the database's name picks out the backends serving the server's
// connections ("postgres: user dbname 127.0.0.1(port) idle"), and not other users' databases.
func matchingCPU(match string) map[int]float64 {
	out := map[int]float64{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmd), match) {
			continue
		}
		if c, err := cpuSeconds(e.Name()); err == nil {
			out[pid] = c
		}
	}
	return out
}

// serverCPUSeconds sums the CPU time of the server processes.
func serverCPUSeconds(pids []int) (float64, error) {
	var sum float64
	for _, pid := range pids {
		c, err := cpuSeconds(strconv.Itoa(pid))
		if err != nil {
			return 0, err
		}
		sum += c
	}
	return sum, nil
}

// cpuUse is the average number of cores busy over an interval (-1 when unknown). StolenCores is
// the CPU the hypervisor took from this (virtual) machine meanwhile, in cores: other tenants'
// work, which makes the same run slower and figures taken hours apart incomparable.
type cpuUse struct {
	ServerCores    float64 `json:"server_cores"`
	GeneratorCores float64 `json:"generator_cores"`
	StolenCores    float64 `json:"stolen_cores"`
	// DBCores is the CPU of the database processes matched by -db-cpu-match (PostgreSQL's
	// backends of the server's database); -1 without -db-cpu-match.
	DBCores float64 `json:"db_cores"`
}

func (m *cpuMeter) stop() cpuUse {
	el := time.Since(m.start).Seconds()
	u := cpuUse{ServerCores: -1, GeneratorCores: -1, StolenCores: -1, DBCores: -1}
	if m.dbMatch != "" && el > 0 {
		var sum float64
		for pid, c := range matchingCPU(m.dbMatch) {
			if c0, ok := m.db[pid]; ok {
				sum += c - c0
			} else {
				sum += c // a backend started during the interval: all its CPU is in it
			}
		}
		u.DBCores = round3(sum / el)
	}
	if c, err := machineSteal(); err == nil && el > 0 {
		u.StolenCores = round3((c - m.steal) / el)
	}
	if c, err := cpuSeconds("self"); err == nil && el > 0 {
		u.GeneratorCores = round3((c - m.client) / el)
	}
	if len(m.serverPIDs) > 0 {
		if c, err := serverCPUSeconds(m.serverPIDs); err == nil && el > 0 {
			u.ServerCores = round3((c - m.server) / el)
		}
	}
	return u
}
