package media

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/ratelimit"
)

// uploadGate admits a user's uploads, files and avatars alike, before their bodies are read: at
// most UploadsInFlight in progress on this node, and UploadsPerMinute started (on every node,
// with Redis). Files and Avatars share one gate, so an avatar counts as an upload: both hold an
// image's bytes in memory and both keep an image worker busy.
type uploadGate struct {
	slots *uploadSlots
	limit Limiter
	log   *slog.Logger
}

func newUploadGate(o Options) *uploadGate {
	return &uploadGate{slots: &uploadSlots{max: o.UploadsInFlight, busy: map[string]int{}}, limit: uploadLimiter(o), log: optionsLogger(o)}
}

// begin admits one upload of userID, or refuses it: 429 too_many_uploads while the user has the
// maximum in progress, 429 rate_limited with Retry-After over the minute's budget. The slot is
// checked first, so an upload refused for want of one does not spend the minute's budget. The
// caller must call release once the upload has ended, however it ended.
func (g *uploadGate) begin(ctx context.Context, userID string) (release func(), err error) {
	if !g.slots.acquire(userID) {
		return nil, tooManyUploads(g.slots.max)
	}
	release = func() { g.slots.release(userID) }
	if err := ratelimit.Enforce(ctx, g.limit, "media-upload:"+userID, g.log); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// uploadLimiter is o's limiter of uploads per user.
func uploadLimiter(o Options) Limiter {
	switch {
	case o.UploadsPerMinute <= 0:
		return ratelimit.Noop{}
	case o.UploadLimiter != nil:
		return o.UploadLimiter
	default:
		return ratelimit.NewMemory(ratelimit.PerMinute(o.UploadsPerMinute))
	}
}

// uploadSlots counts the uploads each user has in progress on this node. A user's uploads
// are rate limited per minute, but a minute's budget started at once would each hold up to an
// image's bytes (20 MiB by default) in the server until processed: 60 of them, 1.2 GB, for one
// account. The count is per node: it bounds this node's memory, which is what it protects.
type uploadSlots struct {
	max  int // 0: unlimited
	mu   sync.Mutex
	busy map[string]int
}

// acquire takes one of userID's slots, or reports that all are in use.
func (s *uploadSlots) acquire(userID string) bool {
	if s.max <= 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy[userID] >= s.max {
		return false
	}
	s.busy[userID]++
	return true
}

// release gives back a slot that acquire took.
func (s *uploadSlots) release(userID string) {
	if s.max <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy[userID]--; s.busy[userID] <= 0 {
		delete(s.busy, userID)
	}
}

// tooManyUploads is the refusal of an upload while the user has max others in progress.
func tooManyUploads(max int) error {
	return &apperr.Error{Kind: apperr.KindRateLimited, Code: "too_many_uploads", RetryAfter: time.Second,
		Detail: fmt.Sprintf("this user already has %d uploads in progress; wait for one to finish", max)}
}

// optionsLogger is o's logger, or the default one.
func optionsLogger(o Options) *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}
