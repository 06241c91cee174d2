package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestPerEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cores, perS, want float64
	}{
		{0.5, 2500, 200},
		{1, 1e6, 1},
		{-1, 2500, -1}, // CPU unknown
		{0.5, 0, -1},   // nothing happened
	}
	for _, tt := range tests {
		if got := perEvent(tt.cores, tt.perS); got != tt.want {
			t.Errorf("perEvent(%v, %v) = %v, want %v", tt.cores, tt.perS, got, tt.want)
		}
	}
}

func TestChatCPUTablePicksTheClosestLoopbackStep(t *testing.T) {
	t.Parallel()
	floor := &loopbackResults{Steps: []loopbackStep{
		{TargetPerS: 25000, FramesPerS: spreadOf([]float64{25000}), CPUUSPerFrame: spreadOf([]float64{26})},
		{TargetPerS: 50000, FramesPerS: spreadOf([]float64{50000}), CPUUSPerFrame: spreadOf([]float64{24})},
	}}
	steps := []stepResult{
		{TargetRate: 2500, AckedPerS: spreadOf([]float64{2500}), ServerUSPerAck: spreadOf([]float64{286}), DBUSPerAck: spreadOf([]float64{-1})},
		{TargetRate: 5000, AckedPerS: spreadOf([]float64{4000}), ServerUSPerAck: spreadOf([]float64{240}), DBUSPerAck: spreadOf([]float64{-1})},
	}
	got := chatCPUTable(steps, 10, floor)
	want := []struct{ perFrame, perMsg, ratio float64 }{
		{26, 286, 1},     // 27,500 frames/s: closest to 25,000
		{24, 264, 0.909}, // 44,000 frames/s: closest to 50,000
	}
	for i, w := range want {
		c := got[i]
		if c.FramesPerMsg != 11 || c.FloorUSPerFrame != w.perFrame || c.FloorUSPerMsg != w.perMsg || c.ServerPerFloor != w.ratio {
			t.Errorf("step %d: %+v, want floor %v µs/frame, %v µs/msg, ratio %v", i, c, w.perFrame, w.perMsg, w.ratio)
		}
	}
	if got := chatCPUTable(steps, 10, nil); got[0].FloorUSPerMsg != 0 || got[0].ServerUSPerAck != 286 {
		t.Errorf("without a loopback result: %+v", got[0])
	}
}

func TestMatchingCPUFindsProcessesByCommandLine(t *testing.T) {
	t.Parallel()
	const marker = "7.123456789" // a sleep argument no other process has
	cmd := exec.Command("sleep", marker)
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// Start returns after fork; until the child has exec'd sleep, its command line is still this
	// test binary's. Wait for the exec (not a timing assertion: the check below is unchanged).
	cmdline := fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if b, err := os.ReadFile(cmdline); err == nil && strings.Contains(string(b), marker) {
			break
		}
	}
	got := matchingCPU(marker)
	if _, ok := got[cmd.Process.Pid]; !ok || len(got) != 1 {
		t.Errorf("matchingCPU(%q) = %v, want only pid %d", marker, got, cmd.Process.Pid)
	}
	if got := matchingCPU("no process has this in its command line 0x5eed"); len(got) != 0 {
		t.Errorf("matchingCPU(unmatched) = %v, want none", got)
	}
}
