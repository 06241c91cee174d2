package chat_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/realtime"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
)

// shareEvent is what these tests read of location_share_start (id) and location_share_stop
// (share_id, reason).
type shareEvent struct {
	ID      string `json:"id"`
	ShareID string `json:"share_id"`
	OwnerID string `json:"owner_id"`
	UserID  string `json:"user_id"`
	Reason  string `json:"reason"`
}

// shareEvents waits for n events of type typ on c and returns them by share id.
func shareEvents(c *client, typ string, n int) map[string]shareEvent {
	c.t.Helper()
	out := map[string]shareEvent{}
	for range n {
		var ev shareEvent
		c.event(typ, &ev)
		id := ev.ShareID
		if id == "" {
			id = ev.ID
		}
		out[id] = ev
	}
	return out
}

// keys returns the sorted keys of m.
func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sorted(ids ...string) []string {
	return slices.Sorted(slices.Values(ids))
}

// TestE2EBlockingOpenConnections: a block reaches what was open before it. bob's connection,
// subscribed to ann's presence before ann blocks him, hears no more of it (nor may subscribe
// again); ann's shares with bob and with a group they are in, made before the block, end for bob
// with location_share_stop (and bob's group share for ann); presence_count no longer counts ann
// for bob. Unblocking gives each the other's group share back (location_share_start), not the
// ended user share.
func TestE2EBlockingOpenConnections(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newPresenceEnv(t, d, 2, 0, "ann", "bob", "cid")
		testBlockingOpenConnections(t, e, e.n, e.n)
	})
}

// TestE2EBlockingOpenConnectionsMultiNode is TestE2EBlockingOpenConnections with ann on one node
// and bob (and cid, the presence barrier) on the other: the block made through the first reaches
// bob's subscription and shares on the second.
func TestE2EBlockingOpenConnectionsMultiNode(t *testing.T) {
	t.Parallel()
	e, b := newClusterWith(t, func(c *config.Config) { c.LargeGroupMembers, c.RateLimits = 2, false }, "ann", "bob", "cid")
	testBlockingOpenConnections(t, e, e.n, b)
}

// testBlockingOpenConnections runs the test with ann connected to annNode and bob and cid to
// others; REST calls go to e.n.
func testBlockingOpenConnections(t *testing.T, e *env, annNode, others *servertest.Node) {
	g := e.group("cid", "ann", "bob") // 3 members, large here: presence only by presence_subscribe
	ann := dial(t, annNode, e.users["ann"], "phone")
	bob := dial(t, others, e.users["bob"], "phone")
	cid := dial(t, others, e.users["cid"], "phone")

	// Before the block: bob follows ann (and cid) by subscription, and so does cid (ann only):
	// cid is the barrier that ann's presence changes were delivered on that node.
	var sub realtime.PresenceSubscribed
	bob.ack(realtime.CmdPresenceSubscribe, map[string]any{"user_ids": []string{e.id("ann"), e.id("cid")}}, &sub)
	if want := []string{e.id("ann"), e.id("cid")}; !slices.Equal(sub.UserIDs, want) {
		t.Fatalf("bob subscribed to %v, want %v", sub.UserIDs, want)
	}
	cid.ack(realtime.CmdPresenceSubscribe, map[string]any{"user_ids": []string{e.id("ann")}}, &sub)
	var snap realtime.PresenceSnapshot
	bob.event("presence_snapshot", &snap)
	if !slices.ContainsFunc(snap.Items, func(p realtime.PresenceData) bool { return p.UserID == e.id("ann") && p.Online }) {
		t.Fatalf("bob's snapshot %+v lacks ann online", snap.Items)
	}

	// Shares made before the block: ann's with bob and with the group, bob's with the group.
	share := func(owner string, to map[string]any) string {
		to["precision"] = "exact"
		var sh shareEvent
		e.do(owner, http.MethodPost, "/location/shares", to, &sh, http.StatusCreated)
		return sh.ID
	}
	annUser := share("ann", map[string]any{"user_id": e.id("bob")})
	annChat := share("ann", map[string]any{"chat_id": g.ID})
	bobChat := share("bob", map[string]any{"chat_id": g.ID})
	if got, want := keys(shareEvents(bob, "location_share_start", 2)), sorted(annUser, annChat); !slices.Equal(got, want) {
		t.Fatalf("bob's shares started %v, want %v", got, want)
	}
	if got := keys(shareEvents(ann, "location_share_start", 1)); !slices.Equal(got, []string{bobChat}) {
		t.Fatalf("ann's shares started %v, want bob's group share", got)
	}
	var count realtime.PresenceCount
	bob.ack(realtime.CmdPresenceCount, map[string]any{"chat_id": g.ID}, &count)
	if count.Online != 3 || count.Members != 3 {
		t.Fatalf("bob's count before the block %+v, want 3 of 3", count)
	}
	bob.drain()
	bob.pending, cid.pending = nil, nil
	cid.drain()
	cid.pending = nil

	e.do("ann", http.MethodPost, "/users/"+e.id("bob")+"/block", nil, nil, http.StatusNoContent)

	// Location: each is told the other's shares stopped, as if the other had stopped them.
	stops := shareEvents(bob, "location_share_stop", 2)
	if got, want := keys(stops), sorted(annUser, annChat); !slices.Equal(got, want) {
		t.Fatalf("bob's shares stopped %v, want %v", got, want)
	}
	for id, ev := range stops {
		if ev.UserID != e.id("ann") || ev.Reason != "stopped" {
			t.Fatalf("bob's location_share_stop of %s: %+v, want ann's, reason stopped", id, ev)
		}
	}
	if got := keys(shareEvents(ann, "location_share_stop", 1)); !slices.Equal(got, []string{bobChat}) {
		t.Fatalf("ann's shares stopped %v, want bob's group share", got)
	}
	var mine struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	e.do("ann", http.MethodGet, "/location/shares", nil, &mine, http.StatusOK)
	var ids []string
	for _, it := range mine.Items {
		ids = append(ids, it.ID)
	}
	if !slices.Equal(ids, []string{annChat}) {
		t.Fatalf("ann's shares after the block %v, want her group share only (the one with bob ended)", ids)
	}

	// presence_count: ann is not online for bob; for cid she is.
	bob.ack(realtime.CmdPresenceCount, map[string]any{"chat_id": g.ID}, &count)
	if count.Online != 2 || count.Members != 3 {
		t.Fatalf("bob's count after the block %+v, want 2 of 3 (not ann)", count)
	}
	cid.ack(realtime.CmdPresenceCount, map[string]any{"chat_id": g.ID}, &count)
	if count.Online != 3 {
		t.Fatalf("cid's count after the block %+v, want 3 online", count)
	}

	// Presence: ann goes offline, then online again. cid hears both; bob, on the same node,
	// hears neither (the ping round trip after cid's event is the barrier), nor may subscribe.
	ann.close()
	cid.expectPresence(e.id("ann"), false)
	if got := presenceOf(t, append(bob.drain(), bob.pending...)); slices.Contains(got, e.id("ann")) {
		t.Fatalf("bob received ann's presence (offline) after the block: %v", got)
	}
	bob.pending = nil
	ann = dial(t, annNode, e.users["ann"], "tablet")
	cid.expectPresence(e.id("ann"), true)
	if got := presenceOf(t, append(bob.drain(), bob.pending...)); slices.Contains(got, e.id("ann")) {
		t.Fatalf("bob received ann's presence (online) after the block: %v", got)
	}
	bob.pending = nil
	bob.ack(realtime.CmdPresenceSubscribe, map[string]any{"user_ids": []string{e.id("ann")}}, &sub)
	if len(sub.UserIDs) != 0 || sub.Subscriptions != 1 {
		t.Fatalf("bob subscribing to ann again: %+v, want nobody followed, 1 subscription (cid)", sub)
	}
	none(t, "cid", cid.drain(), "location_share_stop")

	// Unblocking: the group shares are seen again (location_share_start); the user share stays
	// ended.
	e.do("ann", http.MethodDelete, "/users/"+e.id("bob")+"/block", nil, nil, http.StatusNoContent)
	if got := keys(shareEvents(bob, "location_share_start", 1)); !slices.Equal(got, []string{annChat}) {
		t.Fatalf("bob's shares started after the unblock %v, want ann's group share", got)
	}
	if got := keys(shareEvents(ann, "location_share_start", 1)); !slices.Equal(got, []string{bobChat}) {
		t.Fatalf("ann's shares started after the unblock %v, want bob's group share", got)
	}
	none(t, "bob", append(bob.drain(), bob.pending...), "location_share_start")
}
