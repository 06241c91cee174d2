package media

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// workerProcAttr starts a worker in a session of its own (setsid), and so, where the kernel groups
// tasks by session (CONFIG_SCHED_AUTOGROUP, on by default in most distributions' kernels), in a
// scheduling group of its own: see lowerGroupPriority.
func workerProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

// lowerGroupPriority sets the nice value of the worker's autogroup to 19. SCHED_IDLE only ranks
// threads within one scheduling group: with autogroups, each session competes as one group, so a
// worker left in the server's session made that whole session weigh as much as PostgreSQL's, and
// a database backend sharing the core waited up to 480 ms behind the worker (docs/BENCHMARKS.md,
// "The stall beside PostgreSQL"). In a session of its own niced to 19, the worker's group weighs
// 15 against a normal group's 1024. Only done when this process leads its own session (started
// by workerProcAttr): otherwise the write would lower the priority of its parent's whole session.
// Without autogroups (the file is missing or autogroups are off) it changes nothing, and does no
// harm. The kernel lets an unprivileged process do this once per 100 ms machine-wide (EAGAIN), so
// it retries briefly; a worker that still cannot runs as before.
func lowerGroupPriority() {
	if sid, err := getsid(); err != nil || sid != os.Getpid() {
		return
	}
	for range 8 {
		err := os.WriteFile("/proc/self/autogroup", []byte("19"), 0)
		if !errors.Is(err, syscall.EAGAIN) {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// getsid returns the session id of this process.
func getsid() (int, error) {
	sid, _, errno := syscall.RawSyscall(syscall.SYS_GETSID, 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(sid), nil
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
