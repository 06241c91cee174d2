package media

import (
	"runtime"
	"syscall"
	"testing"
)

// TestLowerPriorityIdle checks on a thread of its own (locked and never unlocked, so the runtime
// throws it away afterwards) that lowerPriorityOf leaves it under SCHED_IDLE at nice 19.
func TestLowerPriorityIdle(t *testing.T) {
	t.Parallel()
	type result struct{ policy, nice int }
	done := make(chan result)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread ends with this goroutine
		lowerPriorityOf(0)
		// getpriority(2) returns 20 - nice through the raw system call.
		p, _, _ := syscall.RawSyscall(syscall.SYS_GETPRIORITY, syscall.PRIO_PROCESS, 0, 0)
		done <- result{schedPolicy(0), 20 - int(p)}
	}()
	got := <-done
	if got.policy != schedIdle || got.nice != 19 {
		t.Fatalf("policy %d nice %d, want SCHED_IDLE (%d) at nice 19", got.policy, got.nice, schedIdle)
	}
}

// schedPolicy returns a thread's scheduling policy (0: the calling thread), or -1.
func schedPolicy(tid int) int {
	p, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETSCHEDULER, uintptr(tid), 0, 0)
	if errno != 0 {
		return -1
	}
	return int(p)
}
