package media

import (
	"context"
	"log/slog"
	"path/filepath"
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
	Files   *Files   // Get, AttachTx, Release and FilesOf for the chat package
	Search  *Search  // GIFs and stickers
	builtin *Builtin
	opts    Options
}

// Options are the media capability's settings.
type Options struct {
	// Storage: S3 when S3.Bucket is set, otherwise the folder DiskDir.
	S3      S3Config
	DiskDir string

	ImageMaxPixels int64 // decoded size limit of an image, in pixels
	AvatarMaxBytes int64
	// MaxBytes is the upload limit per kind (KindImage, KindVideo, KindAudio, KindFile).
	MaxBytes map[string]int64
	// OrphanAge is how long an upload that was never attached is kept.
	OrphanAge time.Duration

	// GIF and sticker search: Giphy when GiphyAPIKey is set, otherwise the built-in set.
	GiphyURL, GiphyAPIKey string
	SearchPerMinute       int // per user; 0 = unlimited

	// UploadsPerMinute limits uploads per user, files and avatars together (0 = unlimited).
	// UploadLimiter, when set, counts them instead of an in-process limiter (the server passes a
	// Redis one, shared by the nodes).
	UploadsPerMinute int
	UploadLimiter    Limiter
	// UploadsInFlight caps the uploads (files and avatars) one user has in progress at once on
	// this node (0 = unlimited): each holds up to an image's bytes in memory until it is processed.
	UploadsInFlight int

	// StorageQuotaBytes caps the sum of the sizes of one user's files (0 = unlimited).
	StorageQuotaBytes int64
	// ImageMemoryBytes is the memory budget of the image pipeline (0 = DefaultImageMemoryBytes).
	ImageMemoryBytes int64
	// ImageWorkers is where large images are processed: WorkersProcess (worker processes at low
	// priority, the default, also for "") or WorkersInline (in this process).
	ImageWorkers string
	// ImageWorkerTimeout bounds one job in a worker (0 = DefaultImageWorkerTimeout).
	ImageWorkerTimeout time.Duration

	// Access lets users other than the owner read a file (chat: members of a chat where it was
	// sent); nil = only owners read their files.
	Access Access

	Logger *slog.Logger
}

// FromConfig returns the Options that the configuration asks for.
func FromConfig(cfg config.Config, log *slog.Logger) Options {
	o := Options{
		S3: S3Config{
			Endpoint: cfg.S3Endpoint, Region: cfg.S3Region, Bucket: cfg.S3Bucket,
			AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey, PathStyle: cfg.S3PathStyle,
		},
		DiskDir:        filepath.Join(cfg.DataDir, "media"),
		ImageMaxPixels: cfg.ImageMaxPixels,
		AvatarMaxBytes: cfg.AvatarMaxBytes,
		MaxBytes: map[string]int64{
			KindImage: cfg.MediaMaxImageBytes, KindVideo: cfg.MediaMaxVideoBytes,
			KindAudio: cfg.MediaMaxAudioBytes, KindFile: cfg.MediaMaxFileBytes,
		},
		OrphanAge:         cfg.MediaOrphanAge,
		StorageQuotaBytes: cfg.StorageQuotaBytes,
		ImageMemoryBytes:  cfg.ImageMemoryBytes,
		ImageWorkers:      cfg.ImageWorkers,
		UploadsInFlight:   cfg.UploadsInFlight,
		GiphyURL:          cfg.GiphyURL,
		GiphyAPIKey:       cfg.GiphyAPIKey,
		Logger:            log,
	}
	if cfg.RateLimits {
		o.SearchPerMinute = cfg.MediaSearchPerMin
		o.UploadsPerMinute = cfg.UploadsPerMin
	}
	return o
}

// New builds the media capability on the configured blob store (S3 or DiskDir). Avatars and
// files share one image pipeline, so the bound on concurrent decoding holds for both.
func New(db *store.DB, o Options) (*Media, error) {
	blobs, err := NewBlobStore(o)
	if err != nil {
		return nil, err
	}
	pipe := newPipelineOptions(o)
	builtin := &Builtin{}
	var provider Provider = builtin
	if o.GiphyAPIKey != "" {
		provider = NewGiphy(o.GiphyURL, o.GiphyAPIKey)
	}
	var limiter Limiter = ratelimit.Noop{}
	if o.SearchPerMinute > 0 {
		limiter = ratelimit.NewMemory(ratelimit.PerMinute(o.SearchPerMinute))
	}
	gate := newUploadGate(o) // one budget for a user's files and avatars
	return &Media{
		Blobs:   blobs,
		Avatars: &Avatars{blobs: blobs, pipe: pipe, maxBytes: o.AvatarMaxBytes, gate: gate},
		Files:   newFiles(db, blobs, o, pipe, gate),
		Search:  NewSearch(provider, limiter),
		builtin: builtin,
		opts:    o,
	}, nil
}

// newPipelineOptions returns the image pipeline that o asks for.
func newPipelineOptions(o Options) *pipeline {
	return newPipelineWorkers(o.ImageMaxPixels, o.ImageMemoryBytes, newWorkerPool(o.ImageWorkers, o.ImageWorkerTimeout, o.Logger))
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
	return m.Files.StartCleanup(CleanupInterval, m.opts.OrphanAge)
}
