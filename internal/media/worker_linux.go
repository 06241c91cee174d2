package media

import (
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// schedIdle is Linux's SCHED_IDLE policy (sched(7)): a thread under it runs only when no
// normal thread wants the CPU, and a normal thread that wakes up preempts it at once, where a
// running nice-19 thread may first finish its slice (EEVDF). In the bystander benchmark the two
// measured the same within noise (docs/BENCHMARKS.md); SCHED_IDLE is kept as the policy that says
// what a worker is. Any thread may move itself (or a thread of its user) to SCHED_IDLE without
// privileges.
const schedIdle = 5

// lowerPriority moves every thread of this process to SCHED_IDLE, at nice 19 (the weight it
// keeps among idle threads, and all a kernel without SCHED_IDLE gets). Linux keeps both per
// thread, and the Go runtime has started several by the time init runs; threads started later
// inherit them from the thread that starts them.
func lowerPriority() {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		lowerPriorityOf(0)
		return
	}
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			lowerPriorityOf(tid)
		}
	}
}

// lowerPriorityOf lowers one thread (0: the calling one). The server calls it on a worker's first
// thread too, in case the worker is slow to do it itself (it does it for all its threads at start).
func lowerPriorityOf(tid int) {
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, 19)
	var param struct{ priority int32 } // struct sched_param; SCHED_IDLE takes priority 0
	_, _, _ = syscall.Syscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), schedIdle, uintptr(unsafe.Pointer(&param)))
}

// limitData caps the worker's data segment (RLIMIT_DATA: its heap, which is where the decoded
// images are) at twice its memory limit plus a margin for the runtime: the memory limit makes the
// garbage collector work harder near it, this makes a worker that goes far beyond it fail
// (the server retries once, then answers 503) instead of pushing the node into swap or the OOM
// killer. Not under the race detector, whose shadow memory counts as data. RLIMIT_AS is not used:
// the Go runtime reserves far more address space than it uses.
func limitData(limit int64) {
	if raceEnabled {
		return
	}
	max := uint64(2*limit + 256<<20)
	_ = syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: max, Max: max})
}
