package media

import (
	"os"
	"strconv"
	"syscall"
)

// lowerPriority sets every thread of this process to nice 19. Linux keeps the nice value per
// thread, and the Go runtime has started several by the time init runs; threads started later
// inherit it from the thread that starts them.
func lowerPriority() {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, 0, 19)
		return
	}
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, 19)
		}
	}
}

// lowerPriorityOf sets the nice value of a worker's first thread from the server, in case the
// worker is slow to do it itself (it does it for all its threads at start).
func lowerPriorityOf(pid int) { _ = syscall.Setpriority(syscall.PRIO_PROCESS, pid, 19) }

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
