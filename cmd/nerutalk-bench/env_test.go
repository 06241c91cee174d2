package main

import (
	"strings"
	"testing"
)

func TestConfigFromProc(t *testing.T) {
	t.Parallel()
	env := []byte("PATH=/bin\x00NERUTALK_ARGON2_MEMORY_KIB=8\x00NERUTALK_RATE_LIMITS=off\x00NERUTALK_DATABASE_URL=postgres://u:secret@127.0.0.1:5432/bench\x00")
	cmd := []byte("/tmp/nerutalk\x00serve\x00-argon2-time\x003\x00")
	c, err := configFromProc(env, cmd)
	if err != nil {
		t.Fatal(err)
	}
	d := describeConfig(c)
	if d["argon2_memory_kib"] != "8" || d["argon2_time"] != "3" || d["rate_limits"] != "off" {
		t.Errorf("describeConfig = %v", d)
	}
	if got := databaseLabel(c); got != "postgres (127.0.0.1:5432/bench)" || strings.Contains(got, "secret") {
		t.Errorf("databaseLabel = %q", got)
	}
	if got := redisLabel(c); !strings.HasPrefix(got, "none") {
		t.Errorf("redisLabel = %q", got)
	}
	if _, err := configFromProc([]byte("NERUTALK_ADDR=nonsense\x00"), []byte("/x\x00")); err == nil {
		t.Error("a bad setting was accepted")
	}
}

func TestReadMachine(t *testing.T) {
	t.Parallel()
	m := readMachine()
	if m.CPUs < 1 || len(m.LoadStart) != 3 {
		t.Errorf("readMachine = %+v", m)
	}
}
