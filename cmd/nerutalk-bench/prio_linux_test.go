package main

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
)

// TestOwnPriority moves a process (this test binary started again, so that the tests' own
// process keeps its priority; TestMain runs prioProbe there) to SCHED_IDLE and back, checking
// every thread each time.
func TestOwnPriority(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NERUTALK_BENCH_PRIO_PROBE=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
}

// prioProbe runs in the probe process: it fails (exit 1) unless every thread is under
// SCHED_IDLE after lowerOwnPriority and under the normal policy after restoreOwnPriority.
func prioProbe() int {
	if os.Getenv("NERUTALK_BENCH_PRIO_PROBE") != "1" {
		return -1
	}
	check := func(want int) bool {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return false
		}
		for _, task := range tasks {
			tid, _ := strconv.Atoi(task.Name())
			p, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETSCHEDULER, uintptr(tid), 0, 0)
			if errno == 0 && int(p) != want {
				os.Stderr.WriteString("thread " + task.Name() + " policy " + strconv.Itoa(int(p)) + ", want " + strconv.Itoa(want) + "\n")
				return false
			}
		}
		return true
	}
	if err := lowerOwnPriority(); err != nil || !check(schedIdle) {
		return 1
	}
	if err := restoreOwnPriority(); err != nil || !check(schedOther) {
		return 1
	}
	return 0
}
