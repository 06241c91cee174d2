package call

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nerutalk/nerutalk/internal/store"
)

// Presence tells whether a user has a connection open on any node (or closed it less than the
// presence grace ago); the realtime hub satisfies it.
type Presence interface {
	Online(userID string) bool
}

// liveness remembers, per node, since when each participant has been seen offline.
type liveness struct {
	mu       sync.Mutex
	suspects map[suspect]time.Time
}

type suspect struct{ callID, userID string }

// SetPresence sets who is online, for the liveness sweep (nil: participants never time out).
func (s *Service) SetPresence(p Presence) { s.presence = p }

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
		cancel()
		<-done
	}
}

// Sweep ends the ringing calls whose ring timeout passed (missed, with a system message in the
// chat), and marks left the participants who have had no connection anywhere for the disconnect
// grace (a call whose last participant goes that way, e.g. after its node crashed, ends as
// failed). Tests call it with an injected clock.
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
		// Only a participant who is still joined and joined before the grace began: one who
		// came back through another node meanwhile is not taken out.
		_, err := s.leave(ctx, k.userID, k.callID, "disconnected",
			`AND EXISTS (SELECT 1 FROM call_participants WHERE call_id = $1 AND user_id = $2 AND state = 'joined' AND joined_at <= $3)`,
			k.userID, store.Millis(now.Add(-s.opts.DisconnectGrace)))
		if err != nil && !errors.Is(err, errEnded) && !errors.Is(err, errNotIn) {
			return err
		}
	}
	return nil
}
