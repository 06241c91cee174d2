package main

import (
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// Scheduling policies (sched(7)).
const (
	schedOther = 0
	schedIdle  = 5
)

// lowerOwnPriority moves every thread of this process to SCHED_IDLE: they run only when no
// normal thread of the machine wants their CPU, and a normal thread that wakes up preempts them at
// once. Threads the Go runtime starts later inherit the policy from the thread that starts them.
// The bystander pair's process was started before, at normal priority; both stay in one
// scheduling group (one session), where SCHED_IDLE ranks them.
func lowerOwnPriority() error { return setOwnPolicy(schedIdle) }

// restoreOwnPriority moves every thread back to the normal policy (for the scenarios that follow
// in the same run). An unprivileged process may do so only within its RLIMIT_NICE.
func restoreOwnPriority() error { return setOwnPolicy(schedOther) }

func setOwnPolicy(policy int) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		var param struct{ priority int32 } // struct sched_param; both policies take priority 0
		if _, _, errno := syscall.Syscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), uintptr(policy), uintptr(unsafe.Pointer(&param))); errno != 0 && errno != syscall.ESRCH {
			return errno
		}
	}
	return nil
}
