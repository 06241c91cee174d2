package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const promText = `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 1234
go_info{version="go1.26.8"} 1
go_memstats_heap_inuse_bytes 5.2428800e+07
process_resident_memory_bytes 1.048576e+08
nerutalk_http_requests_total{method="GET",route="/a\"b,c}",status="200"} 7 1700000000000
weird{a="x\\y\ny"} +Inf
`

func TestParseProm(t *testing.T) {
	t.Parallel()
	got, err := parseProm(strings.NewReader(promText))
	if err != nil {
		t.Fatal(err)
	}
	want := []promSample{
		{Name: "go_goroutines", Value: 1234},
		{Name: "go_info", Labels: map[string]string{"version": "go1.26.8"}, Value: 1},
		{Name: "go_memstats_heap_inuse_bytes", Value: 52428800},
		{Name: "process_resident_memory_bytes", Value: 104857600},
		{Name: "nerutalk_http_requests_total", Labels: map[string]string{"method": "GET", "route": `/a"b,c}`, "status": "200"}, Value: 7},
		{Name: "weird", Labels: map[string]string{"a": "x\\y\ny"}, Value: inf()},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseProm mismatch (-want +got):\n%s", diff)
	}
}

func inf() float64 {
	v, _ := parsePromLine("x +Inf")
	return v.Value
}

func TestParsePromErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"novalue", "x{a=\"b\" 1", "x{a=b} 1", "x abc", "x 1 2 3", "{a=\"b\"} 1"} {
		if _, err := parseProm(strings.NewReader(in)); err == nil {
			t.Errorf("parseProm(%q) accepted", in)
		}
	}
}

func FuzzParseProm(f *testing.F) {
	f.Add(promText)
	f.Add(`a{b="c\"",d="e"} 1`)
	f.Fuzz(func(t *testing.T, in string) {
		samples, err := parseProm(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, s := range samples {
			if s.Name == "" {
				t.Fatalf("sample without a name from %q", in)
			}
		}
	})
}

func TestParseProcStatus(t *testing.T) {
	t.Parallel()
	in := "Name:\tnerutalk\nThreads:\t12\nVmRSS:\t  204800 kB\nCpus_allowed_list:\t0-1\n"
	got, err := parseProcStatus(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := (procStatus{RSSKiB: 204800, Threads: 12, CPUsAllowed: "0-1"}); got != want {
		t.Errorf("parseProcStatus = %+v, want %+v", got, want)
	}
	if _, err := parseProcStatus(strings.NewReader("Name:\tkthreadd\n")); err == nil {
		t.Error("status without VmRSS accepted")
	}
}

func TestParseNoFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in         string
		soft, hard uint64
		ok         bool
	}{
		{"Limit Soft Limit Hard Limit Units\nMax open files            20000                20000                files\n", 20000, 20000, true},
		{"Max open files            1024                 unlimited            files\n", 1024, 1 << 62, true},
		{"Max processes 10 10 processes\n", 0, 0, false},
		{"Max open files   x  y files\n", 0, 0, false},
	}
	for _, tt := range tests {
		soft, hard, err := parseNoFile(tt.in)
		if (err == nil) != tt.ok || soft != tt.soft || hard != tt.hard {
			t.Errorf("parseNoFile(%q) = %d, %d, %v; want %d, %d, ok=%v", tt.in, soft, hard, err, tt.soft, tt.hard, tt.ok)
		}
	}
}

func TestParseCPUSeconds(t *testing.T) {
	t.Parallel()
	stat := "4242 (nerutalk (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 100 1000 200"
	got, err := parseCPUSeconds(stat, 100)
	if err != nil || got != 3 {
		t.Errorf("parseCPUSeconds = %v, %v; want 3", got, err)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 a b c"} {
		if _, err := parseCPUSeconds(bad, 100); err == nil {
			t.Errorf("parseCPUSeconds(%q) accepted", bad)
		}
	}
	if v, err := cpuSeconds("self"); err != nil || v < 0 {
		t.Errorf("cpuSeconds(self) = %v, %v", v, err)
	}
}

func TestParseSteal(t *testing.T) {
	t.Parallel()
	got, err := parseSteal("cpu  515301 0 234748 2256758 6489 0 80116 15861 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n", 100)
	if err != nil || got != 158.61 {
		t.Errorf("parseSteal = %v, %v; want 158.61", got, err)
	}
	for _, bad := range []string{"", "cpu 1 2 3", "intr 1 2 3 4 5 6 7 8 9", "cpu 1 2 3 4 5 6 7 x"} {
		if _, err := parseSteal(bad, 100); err == nil {
			t.Errorf("parseSteal(%q) accepted", bad)
		}
	}
	if v, err := machineSteal(); err != nil || v < 0 {
		t.Errorf("machineSteal() = %v, %v", v, err)
	}
}
