package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// parallel runs fn(0..n-1) on at most workers goroutines and returns the first error (after
// which no new calls start). progress, if not nil, is called every few seconds with the count done.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error, progress func(done int)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	for range min(max(workers, 1), max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
				done.Add(1)
			}
		}()
	}
	stop := make(chan struct{})
	if progress != nil {
		go func() {
			t := time.NewTicker(3 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					progress(int(done.Load()))
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	return context.Cause(ctx)
}

// runPrefix is a short random lowercase prefix that keeps one run's usernames apart from every
// other run's on the same server.
func runPrefix() string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [6]byte
	_, _ = rand.Read(b[:])
	out := []byte("b")
	for _, c := range b {
		out = append(out, letters[int(c)%len(letters)])
	}
	return string(out)
}

// registerUsers creates n accounts named <prefix>u<i>.
func (r *runner) registerUsers(ctx context.Context, prefix string, n int) ([]*user, error) {
	users := make([]*user, n)
	start := time.Now()
	err := parallel(ctx, n, r.opt.setupWorkers, func(ctx context.Context, i int) error {
		name := fmt.Sprintf("%su%d", prefix, i)
		a, err := r.api.register(ctx, name, r.opt.password)
		if err != nil {
			return fmt.Errorf("register %s: %w", name, err)
		}
		users[i] = &user{idx: i, id: a.User.ID, username: name, access: a.AccessToken, refresh: a.RefreshToken}
		return nil
	}, func(done int) { r.logf("registered %d/%d users", done, n) })
	if err != nil {
		return nil, err
	}
	r.logf("registered %d users in %v (%.0f/s)", n, time.Since(start).Round(time.Millisecond), float64(n)/time.Since(start).Seconds())
	return users, nil
}

// benchChat is a chat the scenario created and the indexes of its members in the user list.
type benchChat struct {
	id      string
	members []int

	mu    sync.Mutex
	acked []ackRecord
}

func (c *benchChat) addAck(a ackRecord) {
	c.mu.Lock()
	c.acked = append(c.acked, a)
	c.mu.Unlock()
}

func (c *benchChat) acks() []ackRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ackRecord(nil), c.acked...)
}

// maxMembersPerCall bounds the member_ids of one request; bigger groups are filled with
// POST /chats/{id}/members in batches of this size.
const maxMembersPerCall = 100

// createGroup makes a group owned by users[members[0]] with the others as members.
func (r *runner) createGroup(ctx context.Context, users []*user, members []int, title string) (*benchChat, error) {
	owner := users[members[0]]
	ids := make([]string, 0, len(members)-1)
	for _, m := range members[1:] {
		ids = append(ids, users[m].id)
	}
	first := ids[:min(len(ids), maxMembersPerCall)]
	ch, err := r.api.createChat(ctx, owner, "group", title, first)
	if err != nil {
		return nil, fmt.Errorf("create group %q: %w", title, err)
	}
	for rest := ids[len(first):]; len(rest) > 0; {
		n := min(len(rest), maxMembersPerCall)
		if err := r.api.addMembers(ctx, owner, ch.ID, rest[:n]); err != nil {
			return nil, fmt.Errorf("add members to %q: %w", title, err)
		}
		rest = rest[n:]
	}
	return &benchChat{id: ch.ID, members: members}, nil
}

// createDirect makes the direct chat of two users.
func (r *runner) createDirect(ctx context.Context, users []*user, a, b int) (*benchChat, error) {
	ch, err := r.api.createChat(ctx, users[a], "direct", "", []string{users[b].id})
	if err != nil {
		return nil, fmt.Errorf("create direct chat: %w", err)
	}
	return &benchChat{id: ch.ID, members: []int{a, b}}, nil
}

// createGroups makes count groups of size members each; group g holds users
// (g·size + j) mod len(users), so groups tile the users and wrap around when they outnumber them.
func (r *runner) createGroups(ctx context.Context, users []*user, count, size int, prefix string) ([]*benchChat, error) {
	chats := make([]*benchChat, count)
	err := parallel(ctx, count, r.opt.setupWorkers, func(ctx context.Context, g int) error {
		members := make([]int, size)
		for j := range size {
			members[j] = (g*size + j) % len(users)
		}
		ch, err := r.createGroup(ctx, users, members, fmt.Sprintf("%s group %d", prefix, g))
		chats[g] = ch
		return err
	}, func(done int) { r.logf("created %d/%d groups", done, count) })
	return chats, err
}

// connectAll opens one WebSocket per user (users[from:to]), starting each read loop with h.
func (r *runner) connectAll(ctx context.Context, users []*user, conns []*conn, from, to int, h frameHandler) error {
	start := time.Now()
	counted := func(c *conn, recv time.Time, f *inFrame) {
		r.frames.add(f.Type)
		if h != nil {
			h(c, recv, f)
		}
	}
	err := parallel(ctx, to-from, r.opt.dialWorkers, func(ctx context.Context, k int) error {
		i := from + k
		c, err := r.dialer.dial(ctx, i, users[i])
		if err != nil {
			return err
		}
		conns[i] = c
		go c.readLoop(r.connCtx, counted)
		return nil
	}, func(done int) { r.logf("connected %d/%d", from+done, to) })
	if err != nil {
		return err
	}
	r.logf("opened %d WebSockets in %v", to-from, time.Since(start).Round(time.Millisecond))
	return nil
}

// settleSetup waits for the frames that setting up caused (presence, chat_updated...) to stop,
// reports them, and reports connections the server closed meanwhile. It returns the frames by
// type and how many connections were closed.
func (r *runner) settleSetup(conns []*conn, before map[string]uint64) (map[string]uint64, int) {
	waited, quiet := r.frames.waitQuiet(2*time.Second, 5*time.Minute)
	got := r.frames.since(before)
	r.logf("setup traffic: %s (%v%s)", describeCounts(got), waited.Round(100*time.Millisecond),
		map[bool]string{true: "", false: ", still arriving"}[quiet])
	closed, why := closedConns(conns)
	if closed > 0 {
		r.warn("the server closed %d connections while the scenario was set up: %s", closed, strings.Join(why, "; "))
	}
	return got, closed
}

// closedConns counts the connections whose read loop ended, with the reasons (most common first).
func closedConns(conns []*conn) (int, []string) {
	counts := map[string]uint64{}
	n := 0
	for _, c := range conns {
		if c != nil && c.closed() {
			n++
			counts[closeError(c.readErr)]++
		}
	}
	var why []string
	for _, part := range strings.Split(describeCounts(counts), ", ") {
		if part != "none" && len(why) < 8 {
			why = append(why, part)
		}
	}
	return n, why
}

// closeAll closes every open connection.
func (r *runner) closeAll(conns []*conn) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.close()
		}()
	}
	wg.Wait()
}
