package media

import (
	"context"
	"log/slog"
	"time"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/ratelimit"
	"github.com/nerutalk/nerutalk/internal/store"
)

// Media is the assembled capability, as the server wires it.
type Media struct {
	Blobs   BlobStore
	Avatars *Avatars // for the accounts package
	Files   *Files   // Get, AttachTx, Release and SetAccess for the chat package
	Search  *Search  // GIFs and stickers
	builtin *Builtin
	cfg     config.Config
}

// New builds the media capability on the configured blob store (S3 or DataDir/media). Avatars and
// files share one image pipeline, so the bound on concurrent decoding holds for both.
func New(db *store.DB, cfg config.Config, log *slog.Logger) (*Media, error) {
	blobs, err := NewBlobStore(cfg)
	if err != nil {
		return nil, err
	}
	pipe := newPipeline(cfg.ImageMaxPixels)
	builtin := &Builtin{}
	var provider Provider = builtin
	if cfg.GiphyAPIKey != "" {
		provider = NewGiphy(cfg.GiphyURL, cfg.GiphyAPIKey)
	}
	var limiter Limiter = ratelimit.Noop{}
	if cfg.RateLimits {
		limiter = ratelimit.NewMemory(ratelimit.PerMinute(cfg.MediaSearchPerMin))
	}
	return &Media{
		Blobs:   blobs,
		Avatars: &Avatars{blobs: blobs, pipe: pipe, maxBytes: cfg.AvatarMaxBytes},
		Files:   newFiles(db, blobs, cfg, log, pipe),
		Search:  NewSearch(provider, limiter),
		builtin: builtin,
		cfg:     cfg,
	}, nil
}

// Ping checks the blob store (S3: the bucket answers to our credentials), for /readyz.
func (m *Media) Ping(ctx context.Context) error {
	if p, ok := m.Blobs.(interface{ Ping(context.Context) error }); ok {
		return p.Ping(ctx)
	}
	return nil
}

// Register mounts every media route.
func (m *Media) Register(api *httpapi.API) {
	m.Avatars.Register(api)
	m.Files.Register(api)
	m.Search.Register(api, m.builtin)
}

// CleanupInterval is how often the orphan sweep runs.
const CleanupInterval = time.Hour

// Start runs the background work (the orphan sweep) until the returned stop is called.
func (m *Media) Start() (stop func(context.Context)) {
	return m.Files.StartCleanup(CleanupInterval, m.cfg.MediaOrphanAge)
}
