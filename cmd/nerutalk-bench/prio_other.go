//go:build !linux

package main

import "errors"

// lowerOwnPriority is Linux-only (SCHED_IDLE).
func lowerOwnPriority() error { return errors.New("SCHED_IDLE needs Linux") }

func restoreOwnPriority() error { return nil }
