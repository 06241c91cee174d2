//go:build !linux

package media

// lowerPriority does nothing outside Linux: workers run at the server's priority.
func lowerPriority() {}

func lowerPriorityOf(int) {}

// limitData does nothing outside Linux: only debug.SetMemoryLimit bounds a worker.
func limitData(int64) {}
