//go:build !linux

package main

func prioProbe() int { return -1 }
