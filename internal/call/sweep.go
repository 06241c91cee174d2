package call

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nerutalk/nerutalk/internal/store"
)

// Presence tells whether a user has a connection open on any node (or closed it less than the
// presence grace ago), and announces when a user goes offline; the realtime hub satisfies it.
type Presence interface {
	Online(userID string) bool
	// OnPresence registers fn; it runs on one node when a user comes online or goes offline.
	OnPresence(fn func(ctx context.Context, userID string, online bool))
}

// liveness remembers, per node, since when each participant has been seen offline.
type liveness struct {
	mu       sync.Mutex
	suspects map[suspect]time.Time
	sweeps   int
}

type suspect struct{ callID, userID string }

// watchPresence follows who is online (nil: participants never time out). When
// a user goes offline (their last connection anywhere closed, and the presence grace ended), the
// node that saw it checks again after the disconnect grace and takes the user out of their calls
// if they are still offline. Should that node die meanwhile, the periodic scan of the sweeper
// (every scanEvery sweeps, on every node) catches it.
func (s *Service) watchPresence(p Presence) {
	s.presence = p
	if p == nil {
		return
	}
	p.OnPresence(func(_ context.Context, userID string, online bool) {
		if online {
			return
		}
		s.opts.AfterFunc(s.opts.DisconnectGrace, func() {
			if s.stopped.Load() { // the node is shutting down: the other nodes' sweepers take over
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := s.LeaveIfGone(ctx, userID); err != nil {
				s.log.Warn("call: disconnected participant", "user_id", userID, "err", err)
			}
		})
	})
}

// LeaveIfGone takes userID out of every live call they are in, unless they are online again.
// A participant who rejoined (joined_at after the grace began) stays.
func (s *Service) LeaveIfGone(ctx context.Context, userID string) error {
	if s.presence.Online(userID) {
		return nil
	}
	now := s.now()
	rows, err := s.db.R.QueryContext(ctx, `SELECT p.call_id FROM call_participants p JOIN calls c ON c.id = p.call_id
		WHERE p.user_id = $1 AND p.state = 'joined' AND c.status IN ('ringing', 'active')`, userID)
	if err != nil {
		return err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.dropParticipant(ctx, id, userID, now); err != nil {
			return err
		}
	}
	return nil
}

// dropParticipant marks a disconnected participant left, if they are still joined and joined
// before the grace began.
func (s *Service) dropParticipant(ctx context.Context, callID, userID string, now time.Time) error {
	_, err := s.leave(ctx, userID, callID, "disconnected",
		`AND EXISTS (SELECT 1 FROM call_participants WHERE call_id = $1 AND user_id = $2 AND state = 'joined' AND joined_at <= $3)`,
		userID, store.Millis(now.Add(-s.opts.DisconnectGrace)))
	if err != nil && !errors.Is(err, errEnded) && !errors.Is(err, errNotIn) {
		return err
	}
	return nil
}

// scanEvery is how many sweeps pass between two scans of every live participant's presence.
const scanEvery = 10

// Start runs the sweeper until the returned stop function is called. Every node runs one; they
// race safely (every change is a conditional UPDATE, exactly one wins).
func (s *Service) Start() (stop func(context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.opts.SweepInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("call: sweep", "err", err)
				}
			}
		}
	}()
	return func(context.Context) {
		s.stopped.Store(true)
		cancel()
		<-done
	}
}

// Sweep ends the ringing calls whose ring timeout passed (missed, with a system message in the
// chat), and every scanEvery sweeps marks left the participants seen offline by two scans at
// least the disconnect grace apart (what the OnPresence path missed: its node died meanwhile). A
// call whose last participant goes that way ends as failed. Tests call it with an injected clock.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.now()
	rows, err := s.db.R.QueryContext(ctx, `SELECT id FROM calls WHERE status = 'ringing' AND ring_deadline <= $1
		ORDER BY ring_deadline LIMIT 500`, store.Millis(now))
	if err != nil {
		return err
	}
	var due []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		due = append(due, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range due {
		if _, err := s.missed(ctx, id, now); err != nil {
			return err
		}
	}
	if s.presence == nil {
		return nil
	}
	s.live.mu.Lock()
	s.live.sweeps++
	scan := s.live.sweeps%scanEvery == 1 || scanEvery == 1
	s.live.mu.Unlock()
	if !scan {
		return nil
	}
	return s.sweepParticipants(ctx, now)
}

func (s *Service) sweepParticipants(ctx context.Context, now time.Time) error {
	rows, err := s.db.R.QueryContext(ctx, `SELECT p.call_id, p.user_id FROM call_participants p
		JOIN calls c ON c.id = p.call_id
		WHERE c.status IN ('ringing', 'active') AND p.state = 'joined'`)
	if err != nil {
		return err
	}
	var joined []suspect
	for rows.Next() {
		var k suspect
		if err := rows.Scan(&k.callID, &k.userID); err != nil {
			rows.Close()
			return err
		}
		joined = append(joined, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	online := map[string]bool{}
	var gone []suspect
	s.live.mu.Lock()
	seen := make(map[suspect]time.Time, len(joined))
	for _, k := range joined {
		on, ok := online[k.userID]
		if !ok {
			on = s.presence.Online(k.userID)
			online[k.userID] = on
		}
		if on {
			continue
		}
		since, ok := s.live.suspects[k]
		if !ok {
			since = now
		}
		seen[k] = since
		if now.Sub(since) >= s.opts.DisconnectGrace {
			gone = append(gone, k)
		}
	}
	s.live.suspects = seen // participants online again, or no longer joined, are forgotten
	s.live.mu.Unlock()
	for _, k := range gone {
		if err := s.dropParticipant(ctx, k.callID, k.userID, now); err != nil {
			return err
		}
	}
	return nil
}
