// Package cpuprio moves the threads of this process to the lowest CPU priority and back
// (SCHED_IDLE, sched(7)), on Linux; elsewhere it does nothing and says so. The image workers of
// internal/media run under it, and so does the load tool's abuse in its bystander scenario.
//
// Linux keeps the policy and the nice value per thread. The Go runtime has started several
// threads by the time a program's init runs; threads started later inherit both from the thread
// that starts them, so a process that moved every thread stays moved.
package cpuprio
