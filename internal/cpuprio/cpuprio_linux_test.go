package cpuprio

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"testing"
)

// TestIdleThread checks on a thread of its own (locked and never unlocked, so the runtime throws
// it away afterwards) that IdleThread leaves it under SCHED_IDLE at nice 19.
func TestIdleThread(t *testing.T) {
	t.Parallel()
	type result struct {
		policy, nice int
		err          error
	}
	done := make(chan result)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread ends with this goroutine
		err := IdleThread(0)
		done <- result{schedPolicy(0), niceOf(0), err}
	}()
	got := <-done
	if got.err != nil || got.policy != policyIdle || got.nice != 19 {
		t.Fatalf("policy %d nice %d (%v), want SCHED_IDLE (%d) at nice 19", got.policy, got.nice, got.err, policyIdle)
	}
}

// probeEnv makes the test binary, started by TestIdleAndNormal, move itself to SCHED_IDLE and
// back, check every thread each time, and exit (1 on a failure, said on stderr).
const probeEnv = "NERUTALK_TEST_CPUPRIO_PROBE"

func TestMain(m *testing.M) {
	if os.Getenv(probeEnv) == "1" {
		if err := probe(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestIdleAndNormal moves a whole process (this test binary started again, so that the tests'
// own process keeps its priority) to SCHED_IDLE and back.
func TestIdleAndNormal(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), probeEnv+"=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
}

func probe() error {
	check := func(policy, nice int) error {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, task := range tasks {
			tid, _ := strconv.Atoi(task.Name())
			if p, n := schedPolicy(tid), niceOf(tid); p >= 0 && (p != policy || n != nice) {
				return fmt.Errorf("thread %d: policy %d nice %d, want %d at nice %d", tid, p, n, policy, nice)
			}
		}
		return nil
	}
	if err := Idle(); err != nil {
		return fmt.Errorf("Idle: %w", err)
	}
	if err := check(policyIdle, 19); err != nil {
		return err
	}
	if err := Normal(); err != nil {
		return fmt.Errorf("Normal: %w", err)
	}
	return check(policyOther, 0)
}

// schedPolicy returns a thread's scheduling policy (0: the calling thread), or -1.
func schedPolicy(tid int) int {
	p, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETSCHEDULER, uintptr(tid), 0, 0)
	if errno != 0 {
		return -1
	}
	return int(p)
}

// niceOf returns a thread's nice value (getpriority(2) returns 20 - nice through the raw call).
func niceOf(tid int) int {
	p, _, _ := syscall.RawSyscall(syscall.SYS_GETPRIORITY, syscall.PRIO_PROCESS, uintptr(tid), 0)
	return 20 - int(p)
}
