//go:build !linux

package cpuprio

import "errors"

var errUnsupported = errors.New("cpuprio: SCHED_IDLE needs Linux")

// Idle does nothing outside Linux.
func Idle() error { return errUnsupported }

// IdleThread does nothing outside Linux.
func IdleThread(int) error { return errUnsupported }

// Normal does nothing outside Linux.
func Normal() error { return errUnsupported }
