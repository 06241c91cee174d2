package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
)

// The presence commands, built into the hub (docs/websocket.md, "Presence").
const (
	CmdPresenceSubscribe   = "presence_subscribe"
	CmdPresenceUnsubscribe = "presence_unsubscribe"
	CmdPresenceCount       = "presence_count"
)

// Why a connection follows a user: bits of conn.follows.
const (
	followAuto     uint8 = 1 << iota // a direct-chat partner or a co-member of a small group
	followExplicit                   // presence_subscribe
)

// presenceCountTTL is how long a presence_count answer is reused for the same chat: counting a
// large group reads the status of every member.
const presenceCountTTL = 2 * time.Second

// maxCountCache bounds the cached presence counts (beyond it the cache is emptied).
const maxCountCache = 10_000

// interestShard indexes, for the users whose id hashes to it, the local connections that follow
// them. A presence change of a user is handed to exactly these connections.
type interestShard struct {
	mu        sync.RWMutex
	followers map[string]map[*conn]struct{}
}

// watch makes c follow users for the reason bit (never c's own user) and reports false when c is
// already gone, or when since is not nil and no longer h.unfollowGen (Unfollow raises it before
// it takes c.mu, so a watch that passes this check under c.mu is undone by that Unfollow). Lock
// order: conn.mu, then an interest shard.
func (h *Hub) watch(c *conn, users []string, bit uint8, since *uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone || (since != nil && h.unfollowGen.Load() != *since) {
		return false
	}
	if c.follows == nil {
		c.follows = map[string]uint8{}
	}
	for _, u := range users {
		if u == c.user {
			continue
		}
		old := c.follows[u]
		if old&bit != 0 {
			continue
		}
		c.follows[u] = old | bit
		if bit == followExplicit {
			c.explicit++
		}
		if old == 0 {
			s := &h.interest[h.seed.index(u)]
			s.mu.Lock()
			set := s.followers[u]
			if set == nil {
				set = map[*conn]struct{}{}
				s.followers[u] = set
			}
			set[c] = struct{}{}
			s.mu.Unlock()
		}
	}
	return true
}

// unwatch drops the reason bit of c's interest in users; a user followed for no reason left
// leaves the index.
func (h *Hub) unwatch(c *conn, users []string, bit uint8) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, u := range users {
		old, ok := c.follows[u]
		if !ok || old&bit == 0 {
			continue
		}
		if bit == followExplicit {
			c.explicit--
		}
		if rest := old &^ bit; rest != 0 {
			c.follows[u] = rest
			continue
		}
		delete(c.follows, u)
		h.dropFollower(u, c)
	}
}

// dropFollower removes c from u's followers.
func (h *Hub) dropFollower(u string, c *conn) {
	s := &h.interest[h.seed.index(u)]
	s.mu.Lock()
	if set := s.followers[u]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(s.followers, u)
		}
	}
	s.mu.Unlock()
}

// deliverPresence queues a presence frame of userID for this node's connections that follow them.
func (h *Hub) deliverPresence(userID string, frame []byte, wb *WakeBatch) {
	s := &h.interest[h.seed.index(userID)]
	s.mu.RLock()
	for c := range s.followers[userID] {
		c.enqueue(frame, wb)
	}
	s.mu.RUnlock()
}

// followed returns the users c follows for the reason bit.
func (c *conn) followed(bit uint8) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for u, b := range c.follows {
		if b&bit != 0 {
			out = append(out, u)
		}
	}
	return out
}

// RefreshPresence recomputes, on this node, the automatic presence of the connections of users
// (their chats changed: a direct chat was created, they joined or left a small group, a group
// crossed the large-group size): users they no longer follow are dropped, and the new ones are
// followed, with a presence_snapshot of those online. It returns at once; the work (one
// AutoPresence lookup per user with a connection here) runs on a goroutine of its own.
func (h *Hub) RefreshPresence(ctx context.Context, users []string) {
	var local []string
	for _, u := range users {
		if h.connCountOf(u) > 0 {
			local = append(local, u)
		}
	}
	if len(local) == 0 || h.closed.Load() {
		return
	}
	ctx = context.WithoutCancel(ctx)
	go func() {
		for _, u := range local {
			h.refreshUser(ctx, u)
		}
	}()
}

// refreshUser brings the automatic presence of userID's connections here up to date.
func (h *Hub) refreshUser(ctx context.Context, userID string) {
	want, ok := h.autoPresence(ctx, userID)
	if !ok {
		return
	}
	wantSet := make(map[string]struct{}, len(want))
	for _, u := range want {
		wantSet[u] = struct{}{}
	}
	s := &h.users[h.seed.index(userID)]
	s.mu.RLock()
	conns := slices.Clone(s.conns[userID])
	s.mu.RUnlock()
	for _, c := range conns {
		had := c.followed(followAuto)
		var drop, add []string
		hadSet := make(map[string]struct{}, len(had))
		for _, u := range had {
			hadSet[u] = struct{}{}
			if _, ok := wantSet[u]; !ok {
				drop = append(drop, u)
			}
		}
		for _, u := range want {
			if _, ok := hadSet[u]; !ok {
				add = append(add, u)
			}
		}
		h.unwatch(c, drop, followAuto)
		h.follow(c, add, followAuto, true)
	}
}

// Unfollow makes follower's connections on this node stop following users, whatever the reason
// (automatic or presence_subscribe): a block stands between them, so no presence event of users
// reaches them from now on. It runs at once (no lookup): on the bus's delivery path, a presence
// event published after the signal that calls it is never delivered to those connections.
// Subscribing again is up to the audience (PresenceVisible leaves out who blocked the follower).
func (h *Hub) Unfollow(_ context.Context, follower string, users []string) {
	if len(users) == 0 {
		return
	}
	h.unfollowGen.Add(1) // before any c.mu: see watch
	s := &h.users[h.seed.index(follower)]
	s.mu.RLock()
	conns := slices.Clone(s.conns[follower])
	s.mu.RUnlock()
	for _, c := range conns {
		h.unwatch(c, users, followExplicit)
		h.unwatch(c, users, followAuto)
	}
}

// connCountOf returns how many connections userID has on this node.
func (h *Hub) connCountOf(userID string) int {
	s := &h.users[h.seed.index(userID)]
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.conns[userID])
}

// PresenceUsers is the data of presence_subscribe and presence_unsubscribe.
type PresenceUsers struct {
	UserIDs []string `json:"user_ids"`
}

// PresenceSubscribed is the ack of presence_subscribe and presence_unsubscribe: the users of the
// request now followed (subscribe: those the caller may see) and how many users the connection
// follows explicitly in all.
type PresenceSubscribed struct {
	UserIDs       []string `json:"user_ids"`
	Subscriptions int      `json:"subscriptions"`
}

// PresenceCountQuery is the data of presence_count.
type PresenceCountQuery struct {
	ChatID string `json:"chat_id"`
}

// PresenceCount is the ack of presence_count.
type PresenceCount struct {
	ChatID  string `json:"chat_id"`
	Online  int    `json:"online"`
	Members int    `json:"members"`
}

var (
	errPresenceBad = apperr.New(apperr.KindBadRequest, "bad_request", "data must be {\"user_ids\": [...]}")
	errNoAudience  = apperr.New(apperr.KindUnavailable, "unavailable", "presence is not available")
)

// registerPresenceCommands registers the built-in presence commands.
func (h *Hub) registerPresenceCommands() {
	h.handlers[CmdPresenceSubscribe] = h.cmdSubscribe
	h.handlers[CmdPresenceUnsubscribe] = h.cmdUnsubscribe
	h.handlers[CmdPresenceCount] = h.cmdCount
}

// decodeUsers reads {"user_ids"} and drops duplicates and empty ids, keeping the order.
func decodeUsers(data json.RawMessage, limit int) ([]string, error) {
	var in PresenceUsers
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, errPresenceBad
	}
	// The frame size limit bounds the raw list. The cap applies to the users actually followed
	// (cmdSubscribe); a request may name twice as many (some may not be visible).
	seen := make(map[string]struct{}, len(in.UserIDs))
	out := make([]string, 0, len(in.UserIDs))
	for _, u := range in.UserIDs {
		if len(u) > 128 {
			return nil, apperr.Invalid("user_ids", "not a user id")
		}
		if _, dup := seen[u]; dup || u == "" {
			continue
		}
		seen[u] = struct{}{}
		out = append(out, u)
	}
	if len(out) > 2*limit {
		return nil, tooManySubscriptions(limit)
	}
	return out, nil
}

func tooManySubscriptions(limit int) error {
	return apperr.New(apperr.KindConflict, "too_many_subscriptions",
		fmt.Sprintf("a connection follows at most %d users with presence_subscribe: unsubscribe from some first", limit))
}

// cmdSubscribe follows the presence of the given users who share a chat with the caller (the
// others are left out of the ack, silently). Their statuses come first, in a presence_snapshot
// frame (online and offline with last_seen), then the ack.
func (h *Hub) cmdSubscribe(ctx context.Context, cl Client, data json.RawMessage) (any, error) {
	c := cl.(*conn)
	ids, err := decodeUsers(data, h.maxSubscriptions)
	if err != nil {
		return nil, err
	}
	ids = without(ids, c.user)
	a := h.audienceOf()
	if a == nil {
		return nil, errNoAudience
	}
	// A block handled on this node while the lookup ran (Unfollow) may not be in its answer: then
	// look again, so that the blocked user never ends up following the blocker. The last try
	// follows whatever it got (three blocks in a row during one subscribe: not worth refusing).
	for try := 1; ; try++ {
		gen := h.unfollowGen.Load()
		visible := []string{}
		if len(ids) > 0 {
			lctx, cancel := context.WithTimeout(ctx, presenceLookupTimeout)
			visible, err = a.PresenceVisible(lctx, c.user, ids)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("realtime: presence_subscribe: %w", err)
			}
		}
		c.mu.Lock()
		fresh := 0
		for _, u := range visible {
			if c.follows[u]&followExplicit == 0 {
				fresh++
			}
		}
		over := c.explicit+fresh > h.maxSubscriptions
		c.mu.Unlock()
		if over {
			return nil, tooManySubscriptions(h.maxSubscriptions)
		}
		since := &gen
		if try == 3 {
			since = nil
		}
		if h.followSince(c, visible, followExplicit, false, since) || try == 3 {
			return PresenceSubscribed{UserIDs: visible, Subscriptions: c.explicitCount()}, nil
		}
	}
}

// cmdUnsubscribe stops following the given users explicitly (those followed automatically stay).
func (h *Hub) cmdUnsubscribe(_ context.Context, cl Client, data json.RawMessage) (any, error) {
	c := cl.(*conn)
	ids, err := decodeUsers(data, h.maxSubscriptions)
	if err != nil {
		return nil, err
	}
	h.unwatch(c, ids, followExplicit)
	return PresenceSubscribed{UserIDs: ids, Subscriptions: c.explicitCount()}, nil
}

func (c *conn) explicitCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.explicit
}

// countEntry is a cached presence_count.
type countEntry struct {
	online, members int
	at              time.Time
}

// cmdCount answers how many members of a chat are online: members only (others get not_found,
// like a chat that does not exist). The count of a chat is reused for presenceCountTTL.
func (h *Hub) cmdCount(ctx context.Context, cl Client, data json.RawMessage) (any, error) {
	var in PresenceCountQuery
	if err := json.Unmarshal(data, &in); err != nil || in.ChatID == "" {
		return nil, apperr.New(apperr.KindBadRequest, "bad_request", "data must be {\"chat_id\": \"...\"}")
	}
	a := h.audienceOf()
	if a == nil {
		return nil, errNoAudience
	}
	members, hidden, err := a.ChatMembers(ctx, cl.UserID(), in.ChatID)
	if err != nil {
		return nil, err
	}
	now := h.now()
	h.countMu.Lock()
	e, ok := h.counts[in.ChatID]
	h.countMu.Unlock()
	if !ok || now.Sub(e.at) >= presenceCountTTL || e.members != len(members) {
		e = countEntry{online: len(h.presence.OnlineAmong(members)), members: len(members), at: now}
		h.countMu.Lock()
		if len(h.counts) >= maxCountCache {
			clear(h.counts)
		}
		h.counts[in.ChatID] = e
		h.countMu.Unlock()
	}
	// The count is shared by the chat's members; the ones who blocked the caller are taken out
	// of it for them alone (the members count stays: the member list shows them).
	online := e.online
	if len(hidden) > 0 {
		online = max(0, online-len(h.presence.OnlineAmong(hidden)))
	}
	return PresenceCount{ChatID: in.ChatID, Online: online, Members: e.members}, nil
}
