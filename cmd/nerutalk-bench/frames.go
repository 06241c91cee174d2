package main

import (
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// frameCounter counts the frames every connection receives, by type: it shows what a server
// sends besides the measured traffic (presence, chat_updated...), and when a flood has passed.
type frameCounter struct {
	total atomic.Uint64
	mu    sync.Mutex
	by    map[string]*atomic.Uint64
}

func (c *frameCounter) add(typ string) {
	c.total.Add(1)
	c.mu.Lock()
	n := c.by[typ]
	if n == nil {
		if c.by == nil {
			c.by = map[string]*atomic.Uint64{}
		}
		n = &atomic.Uint64{}
		c.by[typ] = n
	}
	c.mu.Unlock()
	n.Add(1)
}

// snapshot returns the counts by type.
func (c *frameCounter) snapshot() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.by))
	for k, v := range c.by {
		out[k] = v.Load()
	}
	return out
}

// since returns the counts by type that arrived after before (a snapshot).
func (c *frameCounter) since(before map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range c.snapshot() {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// waitQuiet waits until no frame has arrived for quiet, at most limit; it returns how long it
// waited and whether the frames stopped.
func (c *frameCounter) waitQuiet(quiet, limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	last, lastChange := c.total.Load(), time.Now()
	for time.Since(start) < limit {
		time.Sleep(100 * time.Millisecond)
		if n := c.total.Load(); n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) >= quiet {
			return time.Since(start), true
		}
	}
	return time.Since(start), false
}

// describeCounts formats counts as "type n, type n" in descending order.
func describeCounts(m map[string]uint64) string {
	type kv struct {
		k string
		v uint64
	}
	var list []kv
	for k, v := range m {
		list = append(list, kv{k, v})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].v > list[j].v || (list[i].v == list[j].v && list[i].k < list[j].k) })
	s := ""
	for i, e := range list {
		if i > 0 {
			s += ", "
		}
		s += e.k + " " + formatCount(e.v)
	}
	if s == "" {
		return "none"
	}
	return s
}

func formatCount(v uint64) string {
	switch {
	case v >= 10_000_000:
		return strconv.FormatUint(v/1_000_000, 10) + "M"
	case v >= 10_000:
		return strconv.FormatUint(v/1000, 10) + "k"
	}
	return strconv.FormatUint(v, 10)
}
