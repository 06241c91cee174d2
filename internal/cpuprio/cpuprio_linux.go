package cpuprio

import (
	"errors"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// Scheduling policies (sched(7)).
const (
	policyOther = 0
	// policyIdle: a thread under SCHED_IDLE runs only when no normal thread wants the CPU, and a
	// normal thread that wakes up preempts it at once, where a running nice-19 thread may first
	// finish its slice (EEVDF). Any thread may move itself (or a thread of its user) there without
	// privileges.
	policyIdle = 5
)

// Idle moves every thread of this process to SCHED_IDLE at nice 19 (the weight it keeps among
// idle threads, and all a kernel without SCHED_IDLE gets).
func Idle() error { return eachThread(IdleThread) }

// IdleThread moves one thread (0: the calling one; a process id: that process's first thread)
// to SCHED_IDLE at nice 19. It tries both and reports the first failure.
func IdleThread(tid int) error {
	return errors.Join(syscall.Setpriority(syscall.PRIO_PROCESS, tid, 19), setPolicy(tid, policyIdle))
}

// Normal moves every thread of this process back to the normal policy at nice 0. Leaving
// SCHED_IDLE or raising the nice value needs CAP_SYS_NICE or a RLIMIT_NICE that allows it: an
// unprivileged process usually gets EPERM.
func Normal() error {
	return eachThread(func(tid int) error {
		if err := setPolicy(tid, policyOther); err != nil {
			return err
		}
		return syscall.Setpriority(syscall.PRIO_PROCESS, tid, 0)
	})
}

func setPolicy(tid, policy int) error {
	var param struct{ priority int32 } // struct sched_param; both policies take priority 0
	if _, _, errno := syscall.Syscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), uintptr(policy), uintptr(unsafe.Pointer(&param))); errno != 0 {
		return errno
	}
	return nil
}

// eachThread calls fn for every thread of this process (only the calling one if /proc is not
// there), all of them even when some fail, and returns the failures. A thread that ended
// meanwhile (ESRCH) is not an error.
func eachThread(fn func(tid int) error) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fn(0)
	}
	var errs []error
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := fn(tid); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
