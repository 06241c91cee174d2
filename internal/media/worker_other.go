//go:build !linux

package media

import "syscall"

// lowerGroupPriority does nothing outside Linux.
func lowerGroupPriority() {}

// workerProcAttr is nil outside Linux: a worker starts like any child process.
func workerProcAttr() *syscall.SysProcAttr { return nil }

// limitData does nothing outside Linux: only debug.SetMemoryLimit bounds a worker.
func limitData(int64) {}
