package media

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
)

// Search kinds: the two collections a provider offers.
const (
	SearchGIFs     = "gifs"
	SearchStickers = "stickers"
)

// SearchQuery asks a provider for one page. An empty Q asks for what is trending.
type SearchQuery struct {
	Kind   string // SearchGIFs or SearchStickers
	Q      string
	Offset int
	Limit  int
}

// Rendition is one rendering of a GIF or sticker.
type Rendition struct {
	URL    string `json:"url"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// SearchItem is one GIF or sticker.
type SearchItem struct {
	ID      string    `json:"id"`
	Title   string    `json:"title"`
	Preview Rendition `json:"preview" doc:"A small rendering for pickers"`
	Full    Rendition `json:"full" doc:"The rendering to send"`
}

// SearchPage is one page of results; Next is the offset of the next page, 0 at the end.
type SearchPage struct {
	Items []SearchItem
	Next  int
}

// Provider searches GIFs and stickers: Giphy, or the built-in set.
type Provider interface {
	Search(ctx context.Context, q SearchQuery) (SearchPage, error)
}

// Limiter allows or refuses one more event for a key (internal/ratelimit implements it).
type Limiter interface {
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
}

// Search limits (Giphy serves at most 50 results per request and offsets up to 4999).
const (
	searchDefaultLimit = 25
	searchMaxLimit     = 50
	searchMaxOffset    = 4999
	searchCacheTTL     = 5 * time.Minute
	searchCacheMax     = 2000
)

// Search answers GIF and sticker searches through a provider, with an in-memory cache and a
// per-user rate limit. It is safe for concurrent use: the cache is a map under a mutex held only
// for lookups and inserts, never across a provider call.
type Search struct {
	provider Provider
	limiter  Limiter
	now      func() time.Time

	mu    sync.Mutex
	cache map[SearchQuery]cached
}

type cached struct {
	page    SearchPage
	expires time.Time
}

// NewSearch returns a search over provider, limited per user by limiter.
func NewSearch(provider Provider, limiter Limiter) *Search {
	return &Search{provider: provider, limiter: limiter, now: time.Now, cache: map[SearchQuery]cached{}}
}

// Find returns one page for userID. cursor is the next_cursor of the previous page ("" = first).
func (s *Search) Find(ctx context.Context, userID, kind, q, cursor string, limit int) (SearchPage, error) {
	ok, retry, err := s.limiter.Allow(ctx, "media-search:"+userID)
	if err != nil {
		return SearchPage{}, fmt.Errorf("media: search rate limit: %w", err)
	}
	if !ok {
		return SearchPage{}, apperr.RateLimited(retry)
	}
	query := SearchQuery{Kind: kind, Q: strings.Join(strings.Fields(strings.ToLower(q)), " "), Limit: limit}
	if query.Limit <= 0 {
		query.Limit = searchDefaultLimit
	}
	query.Limit = min(query.Limit, searchMaxLimit)
	if cursor != "" {
		off, err := strconv.Atoi(cursor)
		if err != nil || off < 0 || off > searchMaxOffset {
			return SearchPage{}, apperr.Invalid("query.cursor", "not a cursor from a previous page")
		}
		query.Offset = off
	}
	now := s.now()
	s.mu.Lock()
	c, hit := s.cache[query]
	s.mu.Unlock()
	if hit && now.Before(c.expires) {
		return c.page, nil
	}
	page, err := s.provider.Search(ctx, query)
	if err != nil {
		return SearchPage{}, err
	}
	if page.Next > searchMaxOffset {
		page.Next = 0
	}
	s.mu.Lock()
	if len(s.cache) >= searchCacheMax {
		s.evict(now)
	}
	s.cache[query] = cached{page: page, expires: now.Add(searchCacheTTL)}
	s.mu.Unlock()
	return page, nil
}

// evict drops the expired entries, and when none had expired, about a tenth of the others (the
// map's iteration order is random). Called with mu held.
func (s *Search) evict(now time.Time) {
	for k, c := range s.cache {
		if !now.Before(c.expires) {
			delete(s.cache, k)
		}
	}
	for k := range s.cache {
		if len(s.cache) < searchCacheMax*9/10 {
			break
		}
		delete(s.cache, k)
	}
}
