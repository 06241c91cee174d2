package realtime

import (
	"context"
	"sync"
	"time"
)

// PresenceAudience tells who may see a user's presence: the users who share a chat with them.
// The chat package implements it.
type PresenceAudience interface {
	Contacts(ctx context.Context, userID string) ([]string, error)
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

// presenceFrame encodes the presence event of userID as the tracker sees it now.
func presenceFrame(userID string, online bool, lastSeen time.Time) []byte {
	d := PresenceData{UserID: userID, Online: online}
	if !online && !lastSeen.IsZero() {
		d.LastSeen = &lastSeen
	}
	b, err := encodeFrame("presence", "", d)
	if err != nil { // strings, a bool and a time: cannot happen
		panic(err)
	}
	return b
}

// announce tells userID's contacts the user's current presence. Announcements and the snapshots
// sent to new connections read the status and enqueue under the user's announce lock, so every
// connection sees a user's presence changes in the order they happened, ending with the current one.
func (h *Hub) announce(ctx context.Context, userID string, contacts []string) {
	if len(contacts) == 0 || h.closed.Load() {
		return
	}
	mu := &h.announceMu[h.seed.index(userID)]
	mu.Lock()
	defer mu.Unlock()
	online, lastSeen := h.presence.Status(userID)
	h.publish(ctx, Message{Kind: KindUsers, Users: contacts, Frame: presenceFrame(userID, online, lastSeen)})
}

// PresenceSnapshot is the data of the presence_snapshot frame: the contacts online right now.
type PresenceSnapshot struct {
	Items []PresenceData `json:"items" doc:"The contacts online right now"`
}

// sendSnapshot queues, for the new connection c, ONE presence_snapshot frame listing the contacts
// who are online (nothing when none is), so that a user with many contacts cannot overflow their
// own send queue on connect. The announce locks of every contact's shard are held, in shard order,
// while the statuses are read and the frame is queued: a later announcement of any of them is
// queued after the snapshot, so the last word about a user is always the current one.
func (h *Hub) sendSnapshot(c *conn, contacts []string) {
	if len(contacts) == 0 {
		return
	}
	var shards [numShards]bool
	for _, u := range contacts {
		shards[h.seed.index(u)] = true
	}
	for i := range shards {
		if shards[i] {
			h.announceMu[i].Lock()
			defer h.announceMu[i].Unlock()
		}
	}
	var snap PresenceSnapshot
	for _, u := range h.presence.OnlineAmong(contacts) {
		snap.Items = append(snap.Items, PresenceData{UserID: u, Online: true})
	}
	if len(snap.Items) == 0 {
		return
	}
	b, err := encodeFrame("presence_snapshot", "", snap)
	if err != nil { // strings and bools: cannot happen
		panic(err)
	}
	c.enqueue(b, nil)
}

// contacts asks the audience who may see userID's presence; failures are logged and give nobody.
func (h *Hub) contacts(ctx context.Context, userID string) []string {
	a := h.audience.Load()
	if a == nil || a.PresenceAudience == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, presenceLookupTimeout)
	defer cancel()
	list, err := a.Contacts(ctx, userID)
	if err != nil {
		h.log.WarnContext(ctx, "realtime: presence audience lookup failed", "user_id", userID, "err", err)
		return nil
	}
	return list
}

// statusChanged is the trackers' callback when they changed a user's status by themselves:
// offline after the grace period, or (Redis) back online after a resync. It tells the user's
// contacts and the OnPresence hooks.
func (h *Hub) statusChanged(userID string) {
	if h.closed.Load() {
		return
	}
	ctx := context.Background()
	h.announce(ctx, userID, h.contacts(ctx, userID))
	online, _ := h.presence.Status(userID)
	h.presenceChanged(ctx, userID, online)
}
