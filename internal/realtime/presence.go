package realtime

import (
	"context"
	"sync"
	"time"
)

// PresenceAudience says whose presence a connection follows; the chat package implements it.
// Presence goes by interest, never by broadcast: a change of a user's status is delivered only to
// the connections that follow them, automatically (AutoPresence, computed when the connection
// opens and refreshed when the user's chats change: RefreshPresence) or because they asked
// (presence_subscribe, for users who share a chat with them: PresenceVisible).
type PresenceAudience interface {
	// AutoPresence returns the users whose presence userID follows without asking: direct-chat
	// partners and co-members of small groups. Its size never depends on the size of large groups.
	AutoPresence(ctx context.Context, userID string) ([]string, error)
	// PresenceVisible returns the users among ids whose presence userID may see: those who share
	// a chat with them.
	PresenceVisible(ctx context.Context, userID string, ids []string) ([]string, error)
	// ChatMembers returns the members of chatID when userID is one of them, else an apperr
	// not-found error (presence_count), and hidden: the members whose presence userID may not see
	// (they blocked userID), who are never counted online for them.
	ChatMembers(ctx context.Context, userID, chatID string) (members, hidden []string, err error)
}

// PresenceData is the data of a "presence" event.
type PresenceData struct {
	UserID   string     `json:"user_id" doc:"The contact"`
	Online   bool       `json:"online"`
	LastSeen *time.Time `json:"last_seen" doc:"When the last connection closed; null while online"`
}

// presenceTracker records connections and answers who is online. The in-memory tracker covers one
// node; redisPresence counts connections across nodes behind the same methods.
type presenceTracker interface {
	// Connected records an opened connection of userID and reports whether the user came online
	// (false when another connection is open or the user is within the grace period).
	Connected(userID string) (cameOnline bool)
	// Disconnected records a closed connection. When the last one closes, the user stays online
	// for the grace period and then goes offline (the tracker then calls its statusChanged).
	Disconnected(userID string)
	// Status reports whether userID is online and when they were last seen (zero if never, or
	// while online).
	Status(userID string) (online bool, lastSeen time.Time)
	// OnlineAmong returns the users of ids who are online.
	OnlineAmong(ids []string) []string
	// Statuses returns the status of each of ids, in order (one round trip with Redis).
	Statuses(ids []string) []PresenceData
	// stop ends the tracker's timers or background work (the hub is shutting down).
	stop()
}

// memoryPresence is the single-node presenceTracker, sharded by user.
type memoryPresence struct {
	grace time.Duration
	now   func() time.Time
	// statusChanged is called, without locks held, when a user goes offline after the grace period.
	statusChanged func(userID string)
	shards        [numShards]presenceShard
	seed          shardSeed
}

type presenceShard struct {
	mu    sync.Mutex
	users map[string]*presenceState
}

type presenceState struct {
	conns    int
	online   bool
	lastSeen time.Time
	timer    *time.Timer
	gen      uint64 // invalidates a grace timer that fired while a reconnect held the lock
}

func newMemoryPresence(grace time.Duration, statusChanged func(string)) *memoryPresence {
	p := &memoryPresence{grace: grace, now: time.Now, statusChanged: statusChanged, seed: newShardSeed()}
	for i := range p.shards {
		p.shards[i].users = map[string]*presenceState{}
	}
	return p
}

func (p *memoryPresence) shard(userID string) *presenceShard { return &p.shards[p.seed.index(userID)] }

func (p *memoryPresence) Connected(userID string) bool {
	s := p.shard(userID)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.users[userID]
	if st == nil {
		st = &presenceState{}
		s.users[userID] = st
	}
	st.conns++
	if st.timer != nil {
		st.timer.Stop()
		st.timer = nil
		st.gen++
	}
	if st.online {
		return false
	}
	st.online = true
	return true
}

func (p *memoryPresence) Disconnected(userID string) {
	s := p.shard(userID)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.users[userID]
	if st == nil || st.conns == 0 {
		return
	}
	st.conns--
	if st.conns > 0 {
		return
	}
	st.lastSeen = p.now().UTC()
	st.gen++
	gen := st.gen
	st.timer = time.AfterFunc(p.grace, func() {
		s.mu.Lock()
		if st.gen != gen || st.conns > 0 || !st.online {
			s.mu.Unlock()
			return
		}
		st.online = false
		st.timer = nil
		s.mu.Unlock()
		if p.statusChanged != nil {
			p.statusChanged(userID)
		}
	})
}

func (p *memoryPresence) Status(userID string) (bool, time.Time) {
	s := p.shard(userID)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.users[userID]
	if st == nil {
		return false, time.Time{}
	}
	if st.online {
		return true, time.Time{}
	}
	return false, st.lastSeen
}

func (p *memoryPresence) OnlineAmong(ids []string) []string {
	var online []string
	for _, u := range ids {
		if ok, _ := p.Status(u); ok {
			online = append(online, u)
		}
	}
	return online
}

func (p *memoryPresence) Statuses(ids []string) []PresenceData {
	out := make([]PresenceData, len(ids))
	for i, u := range ids {
		online, seen := p.Status(u)
		out[i] = presenceData(u, online, seen)
	}
	return out
}

// stop cancels the pending grace timers (the hub is shutting down).
func (p *memoryPresence) stop() {
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		for _, st := range s.users {
			if st.timer != nil {
				st.timer.Stop()
				st.timer = nil
				st.gen++
			}
		}
		s.mu.Unlock()
	}
}

// presenceData is the wire form of a status: last_seen only while offline, when known.
func presenceData(userID string, online bool, lastSeen time.Time) PresenceData {
	d := PresenceData{UserID: userID, Online: online}
	if !online && !lastSeen.IsZero() {
		d.LastSeen = &lastSeen
	}
	return d
}

// presenceFrame encodes the presence event of userID as the tracker sees it now.
func presenceFrame(userID string, online bool, lastSeen time.Time) []byte {
	b, err := encodeFrame("presence", "", presenceData(userID, online, lastSeen))
	if err != nil { // strings, a bool and a time: cannot happen
		panic(err)
	}
	return b
}

// announce tells the connections that follow userID, on every node, the user's current presence:
// ONE bus message (KindPresence), whatever the size of the user's chats; each node hands it to its
// own followers (the interest index). Announcements and the snapshots sent to followers read the
// status and enqueue under the user's announce lock, so every connection sees a user's presence
// changes in the order they happened, ending with the current one.
func (h *Hub) announce(ctx context.Context, userID string) {
	if h.closed.Load() {
		return
	}
	mu := &h.announceMu[h.seed.index(userID)]
	mu.Lock()
	defer mu.Unlock()
	online, lastSeen := h.presence.Status(userID)
	h.publish(ctx, Message{Kind: KindPresence, Topic: userID, Frame: presenceFrame(userID, online, lastSeen)})
}

// PresenceSnapshot is the data of the presence_snapshot frame: statuses of followed users.
type PresenceSnapshot struct {
	Items []PresenceData `json:"items" doc:"The contacts online right now"`
}

// follow makes c follow users (the interest bit says why: auto or explicit) and queues ONE
// presence_snapshot frame with their statuses: only those online when onlineOnly (a new
// connection's automatic set; nothing is queued when none is), else every one of them. The
// announce locks of the users' shards are held, in shard order, while c joins the interest index,
// the statuses are read and the frame is queued: an announcement of any of them is queued either
// before the snapshot (and the snapshot is newer) or after it, so the last word about a user is
// always the current one. A snapshot is one frame, so a user following many cannot overflow their
// own send queue.
func (h *Hub) follow(c *conn, users []string, bit uint8, onlineOnly bool) {
	h.followSince(c, users, bit, onlineOnly, nil)
}

// followSince is follow, except that when since is not nil and Unfollow ran since h.unfollowGen
// was *since, it follows nobody and reports false (as it does when c is gone): the caller's
// lookup may predate a block.
func (h *Hub) followSince(c *conn, users []string, bit uint8, onlineOnly bool, since *uint64) bool {
	if len(users) == 0 {
		return true
	}
	var shards [numShards]bool
	for _, u := range users {
		shards[h.seed.index(u)] = true
	}
	for i := range shards {
		if shards[i] {
			h.announceMu[i].Lock()
			defer h.announceMu[i].Unlock()
		}
	}
	if !h.watch(c, users, bit, since) {
		return false // the connection is gone, or a block was handled since the lookup
	}
	snap := PresenceSnapshot{Items: []PresenceData{}}
	if onlineOnly {
		for _, u := range h.presence.OnlineAmong(users) {
			snap.Items = append(snap.Items, PresenceData{UserID: u, Online: true})
		}
		if len(snap.Items) == 0 {
			return true
		}
	} else {
		snap.Items = h.presence.Statuses(users)
	}
	b, err := encodeFrame("presence_snapshot", "", snap)
	if err != nil { // strings, bools and times: cannot happen
		panic(err)
	}
	c.enqueue(b, nil)
	return true
}

// audienceOf returns the PresenceAudience, nil when none is set.
func (h *Hub) audienceOf() PresenceAudience {
	a := h.audience.Load()
	if a == nil {
		return nil
	}
	return a.PresenceAudience
}

// autoPresence asks the audience whose presence userID follows automatically (never userID);
// failures are logged and give nobody.
func (h *Hub) autoPresence(ctx context.Context, userID string) ([]string, bool) {
	a := h.audienceOf()
	if a == nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, presenceLookupTimeout)
	defer cancel()
	list, err := a.AutoPresence(ctx, userID)
	if err != nil {
		h.log.WarnContext(ctx, "realtime: presence audience lookup failed", "user_id", userID, "err", err)
		return nil, false
	}
	return without(list, userID), true
}

// statusChanged is the trackers' callback when they changed a user's status by themselves:
// offline after the grace period, or (Redis) back online after a resync. It tells the user's
// followers and the OnPresence hooks.
func (h *Hub) statusChanged(userID string) {
	if h.closed.Load() {
		return
	}
	ctx := context.Background()
	h.announce(ctx, userID)
	online, _ := h.presence.Status(userID)
	h.presenceChanged(ctx, userID, online)
}
