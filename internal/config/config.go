// Package config loads NeruTalk's settings from NERUTALK_* environment variables, overridden by
// command-line flags, and validates them so that a bad setting stops start-up with one clear line.
package config

import (
	"bytes"
	"crypto/ecdh"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// maxSQLiteCacheMiB bounds NERUTALK_SQLITE_WRITE_CACHE_MIB (64 GiB).
const maxSQLiteCacheMiB = 65536

// Config is every setting of the server. The zero value is not useful: use Load or Default.
type Config struct {
	Addr        string
	DataDir     string
	DatabaseURL string
	// SQLiteWriteCacheMiB is the page cache of SQLite's write connection (0: the store's default).
	SQLiteWriteCacheMiB int
	RedisURL            string
	// RedisPrefix starts every Redis key of this deployment (the bus stream is RedisPrefix+":bus").
	RedisPrefix string
	RateLimits  bool
	LogLevel    slog.Level
	LogFormat   string // text or json

	JWTSecret      string
	AccessTokenTTL time.Duration
	// SessionCacheTTL is how long a node trusts a session it has checked (0: it checks every time).
	SessionCacheTTL time.Duration
	RefreshTokenTTL time.Duration
	// MaxSessionsPerUser caps a user's live sessions (the least recently used are revoked).
	MaxSessionsPerUser int

	Argon2MemoryKiB uint
	Argon2Time      uint
	Argon2Threads   uint

	CORSOrigins []string
	// TrustedProxies are the load balancers whose X-Forwarded-For names the client.
	TrustedProxies  []netip.Prefix
	MaxBodyBytes    int64
	ShutdownTimeout time.Duration
	Pprof           bool

	MaxGroupMembers   int
	ChatCommitEvery   time.Duration // least time between two chat group commits under load (0: none)
	WSMaxFrameBytes   int64
	WSMaxTextChars    int
	WSFramesPerSecond int
	WSSendQueue       int
	WSPingInterval    time.Duration
	// WSMaxConnectionsPerUser caps one user's WebSocket connections (across the nodes with Redis).
	WSMaxConnectionsPerUser int
	PresenceGrace           time.Duration
	// LargeGroupMembers: groups with more members are large (no automatic presence between
	// members, summarized membership events, receipts only to the chat's joined connections).
	LargeGroupMembers     int
	PresenceSubscriptions int // explicit presence subscriptions per connection

	AvatarMaxBytes int64
	ImageMaxPixels int64
	// ImageMemoryBytes bounds the memory of the images being decoded at once (weighted by what
	// each one allocates).
	ImageMemoryBytes int64
	// ImageWorkers is where large images are decoded: "process" (worker processes at low
	// priority) or "inline" (in the server process).
	ImageWorkers string
	// StorageQuotaBytes caps the sum of the sizes of one user's files.
	StorageQuotaBytes int64
	// GroupsPerMinute limits the group chats one user creates per minute.
	GroupsPerMinute int
	// RequestsPerSecond limits the authenticated requests of one user on one node.
	RequestsPerSecond int
	// RefreshesPerMinute limits POST /auth/refresh per session.
	RefreshesPerMinute int
	// WSConnectsPerMinute limits the WebSocket upgrades of one user.
	WSConnectsPerMinute int

	MediaMaxImageBytes int64 // per-kind upload limits
	MediaMaxVideoBytes int64
	MediaMaxAudioBytes int64
	MediaMaxFileBytes  int64
	MediaOrphanAge     time.Duration // uploads never attached are removed after this
	UploadsPerMin      int           // file and avatar uploads per user per minute
	UploadsInFlight    int           // file and avatar uploads one user may have in progress at once, per node
	S3Endpoint         string        // media in S3 when S3Bucket is set, else in DataDir/media
	S3Region           string
	S3Bucket           string
	S3AccessKey        string
	S3SecretKey        string
	S3PathStyle        bool
	GiphyAPIKey        string // empty = only the built-in stickers and GIFs
	GiphyURL           string // Giphy API base URL
	MediaSearchPerMin  int    // GIF/sticker searches per user per minute

	// Push providers (internal/push/provider); an unconfigured provider only logs.
	PushFCMCredentialsFile string // FCM service-account JSON
	PushFCMEndpoint        string
	PushAPNsKeyFile        string // APNs .p8 token-signing key
	PushAPNsKeyID          string
	PushAPNsTeamID         string
	PushAPNsTopic          string
	PushAPNsEndpoint       string // production, sandbox or a URL
	PushVAPIDPublicKey     string // empty (with the private key) = generated once and kept in the database
	PushVAPIDPrivateKey    string
	PushVAPIDSubject       string
	// Calls (internal/call).
	CallsProvider       string // p2p, agora or livekit
	AgoraAppID          string
	AgoraAppCertificate string
	LiveKitURL          string
	LiveKitAPIKey       string
	LiveKitAPISecret    string
	STUNURLs            []string
	TURNURLs            []string
	TURNSecret          string
	CallTokenTTL        time.Duration // media credentials' lifetime
	CallPrivilegeTTL    time.Duration // Agora's join and publish privileges (at most CallTokenTTL)
	CallRingTimeout     time.Duration
	CallMaxParticipants int
	CallDisconnectGrace time.Duration
	CallSweepInterval   time.Duration
	// CallsPerMinute limits the calls one user starts per minute.
	CallsPerMinute int

	LocationHistoryEvery       time.Duration // at most one stored history point per user per this
	LocationPruneEvery         time.Duration // how often history past its retention is deleted
	LocationGeofenceAccuracyM  int           // fixes less accurate than this cause no geofence enter/exit
	LocationGeofenceExitMargin int           // meters beyond a geofence's boundary a fix must be to exit
	// Push notifications (internal/push): the outbox and its workers.
	PushMessageDelay     time.Duration // a message push waits this long: an acknowledged message is not pushed
	PushPollInterval     time.Duration // how often an idle outbox worker looks for due rows
	PushLease            time.Duration // how long a claimed outbox row stays with its worker
	PushMaxAttempts      int           // tries of one delivery before it is dead
	PushConcurrency      int           // sends in flight per node
	PushFallbackLocale   string        // template locale when a device's has none
	PushAdminSendsPerMin int           // admin sends and broadcasts per admin per minute
	PushRetention        time.Duration // finished notifications are deleted after this

	// fromFlag holds the environment variables of the settings given as flags, for Name.
	fromFlag map[string]string
}

// Name is how the user gave the setting whose environment variable is env: "-addr" when it came
// from the flag, else env itself ("NERUTALK_ADDR"). Errors found after Load (a port in use, a
// database that does not answer) start with it, so that they name what the user typed.
func (c Config) Name(env string) string {
	if f, ok := c.fromFlag[env]; ok {
		return f
	}
	return env
}

// Setting describes one configuration value: its flag, its environment variable, its default and
// what it means.
type Setting struct {
	Flag, Env, Default, Usage string
	set                       func(c *Config, v string) error
}

// Settings lists every setting in the order of the -help output.
func Settings() []Setting { return settings() }

func settings() []Setting {
	return []Setting{
		{"addr", "NERUTALK_ADDR", "127.0.0.1:8080", "listen address (host:port)", func(c *Config, v string) error {
			if _, _, err := net.SplitHostPort(v); err != nil {
				return fmt.Errorf("want host:port: %w", err)
			}
			c.Addr = v
			return nil
		}},
		{"data-dir", "NERUTALK_DATA_DIR", "./data", "folder for the embedded database and local media", func(c *Config, v string) error {
			if v == "" {
				return errors.New("must not be empty")
			}
			c.DataDir = v
			return nil
		}},
		{"database-url", "NERUTALK_DATABASE_URL", "", "empty = embedded SQLite in the data folder; postgres://... = PostgreSQL (query parameters other than the connection's own are PostgreSQL settings for every connection)", func(c *Config, v string) error {
			if v != "" {
				u, err := url.Parse(v)
				if err != nil {
					return errors.New("not a URL")
				}
				if u.Scheme != "postgres" && u.Scheme != "postgresql" {
					return fmt.Errorf("scheme %q not supported, want postgres://", u.Scheme)
				}
			}
			c.DatabaseURL = v
			return nil
		}},
		{"sqlite-write-cache-mib", "NERUTALK_SQLITE_WRITE_CACHE_MIB", "32", "page cache of SQLite's write connection, in MiB; larger keeps more of a big database's indexes in memory, but SQLite scans the whole cache at every commit (see docs/BENCHMARKS.md); ignored on PostgreSQL; 1 to 65536", func(c *Config, v string) error {
			if err := intSetter(func(c *Config) *int { return &c.SQLiteWriteCacheMiB }, 1)(c, v); err != nil {
				return err
			}
			if c.SQLiteWriteCacheMiB > maxSQLiteCacheMiB {
				return fmt.Errorf("must be at most %d", maxSQLiteCacheMiB)
			}
			return nil
		}},
		{"redis-url", "NERUTALK_REDIS_URL", "", "empty = single node with an in-process bus; redis://host:port/db for several nodes", func(c *Config, v string) error {
			if v != "" {
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
					return errors.New("want redis://host:port/db")
				}
			}
			c.RedisURL = v
			return nil
		}},
		{"redis-prefix", "NERUTALK_REDIS_PREFIX", "nerutalk", "start of every Redis key of this deployment (several deployments may share one Redis); the nodes of one deployment must agree on it", func(c *Config, v string) error {
			if v == "" || len(v) > 64 || strings.ContainsAny(v, " \t\r\n{}") {
				return errors.New("want 1 to 64 characters, no spaces or braces")
			}
			c.RedisPrefix = v
			return nil
		}},
		{"rate-limits", "NERUTALK_RATE_LIMITS", "on", "on or off (off disables every rate limit, for load tests)", func(c *Config, v string) error {
			b, err := onOff(v)
			c.RateLimits = b
			return err
		}},
		{"log-level", "NERUTALK_LOG_LEVEL", "info", "debug, info, warn or error", func(c *Config, v string) error {
			if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
				return errors.New("want debug, info, warn or error")
			}
			return nil
		}},
		{"log-format", "NERUTALK_LOG_FORMAT", "text", "text (development) or json (production)", func(c *Config, v string) error {
			if v != "text" && v != "json" {
				return errors.New("want text or json")
			}
			c.LogFormat = v
			return nil
		}},
		{"jwt-secret", "NERUTALK_JWT_SECRET", "", "HMAC key for access tokens, at least 32 characters; empty = generated once and kept in the database", func(c *Config, v string) error {
			if v != "" && len(v) < 32 {
				return errors.New("must be at least 32 characters")
			}
			c.JWTSecret = v
			return nil
		}},
		{"access-token-ttl", "NERUTALK_ACCESS_TOKEN_TTL", "15m", "lifetime of access tokens", durationSetter(func(c *Config) *time.Duration { return &c.AccessTokenTTL })},
		{"session-cache-ttl", "NERUTALK_SESSION_CACHE_TTL", "5s", "how long a node trusts a session it has checked before asking the database again (0 = every request); a session revoked through another node is refused at once with Redis, within this without", durationSetterFrom(true, func(c *Config) *time.Duration { return &c.SessionCacheTTL })},
		{"refresh-token-ttl", "NERUTALK_REFRESH_TOKEN_TTL", "720h", "lifetime of refresh tokens (sessions)", durationSetter(func(c *Config) *time.Duration { return &c.RefreshTokenTTL })},
		{"max-sessions-per-user", "NERUTALK_MAX_SESSIONS_PER_USER", "50", "live sessions (signed-in devices) one user may have; signing in beyond it revokes the least recently used session", intSetter(func(c *Config) *int { return &c.MaxSessionsPerUser }, 1)},
		{"argon2-memory-kib", "NERUTALK_ARGON2_MEMORY_KIB", "19456", "argon2id memory per hash in KiB (OWASP minimum 19456)", uintSetter(func(c *Config) *uint { return &c.Argon2MemoryKiB }, 8)},
		{"argon2-time", "NERUTALK_ARGON2_TIME", "2", "argon2id iterations", uintSetter(func(c *Config) *uint { return &c.Argon2Time }, 1)},
		{"argon2-threads", "NERUTALK_ARGON2_THREADS", "1", "argon2id parallelism", uintSetter(func(c *Config) *uint { return &c.Argon2Threads }, 1)},
		{"cors-origins", "NERUTALK_CORS_ORIGINS", "", "comma-separated origins allowed by CORS, * for any; empty = CORS off", func(c *Config, v string) error {
			c.CORSOrigins = nil
			for _, o := range strings.Split(v, ",") {
				if o = strings.TrimSpace(o); o != "" {
					c.CORSOrigins = append(c.CORSOrigins, o)
				}
			}
			return nil
		}},
		{"trusted-proxies", "NERUTALK_TRUSTED_PROXIES", "", "comma-separated addresses and CIDR prefixes of the load balancers and reverse proxies in front of the nodes (10.0.0.0/8,192.168.1.10): from them X-Forwarded-For is believed, and the rightmost address in it that is not one of them is the client's, for the per-address sign-in limits, the sessions' sign-in address and the access log; empty = the connection's peer is the client and X-Forwarded-For is ignored", func(c *Config, v string) error {
			p, err := parseProxies(v)
			c.TrustedProxies = p
			return err
		}},
		{"max-body-bytes", "NERUTALK_MAX_BODY_BYTES", "1048576", "largest JSON request body", int64Setter(func(c *Config) *int64 { return &c.MaxBodyBytes }, 1024)},
		{"shutdown-timeout", "NERUTALK_SHUTDOWN_TIMEOUT", "4s", "how long shutdown waits for in-flight requests and WebSocket closes, and then again at most for the chat writer and the bus to drain", durationSetter(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
		{"pprof", "NERUTALK_PPROF", "off", "on = serve /debug/pprof/ to admins", func(c *Config, v string) error {
			b, err := onOff(v)
			c.Pprof = b
			return err
		}},
		{"max-group-members", "NERUTALK_MAX_GROUP_MEMBERS", "10000", "most members a group chat may have", intSetter(func(c *Config) *int { return &c.MaxGroupMembers }, 2)},
		{"chat-commit-interval", "NERUTALK_CHAT_COMMIT_INTERVAL", "5ms", "least time between two group commits of chat messages: under load, messages that arrive meanwhile join the next commit (fewer, larger transactions for at most this much latency); the writer waits only while its arrival rate over the last ~100 ms promises at least two messages in the interval (400 a second at 5ms), so a lone message or a trickle never waits; 0s commits as soon as the previous commit ends", durationSetterFrom(true, func(c *Config) *time.Duration { return &c.ChatCommitEvery })},
		{"ws-max-frame-bytes", "NERUTALK_WS_MAX_FRAME_BYTES", "65536", "largest WebSocket frame a client may send", int64Setter(func(c *Config) *int64 { return &c.WSMaxFrameBytes }, 1024)},
		{"ws-max-text-chars", "NERUTALK_WS_MAX_TEXT_CHARS", "4096", "longest message text, in characters", intSetter(func(c *Config) *int { return &c.WSMaxTextChars }, 1)},
		{"requests-per-second", "NERUTALK_REQUESTS_PER_SECOND", "50", "authenticated requests one user may make per second on one node (REST calls, file downloads and uploads, WebSocket upgrades; not the frames of an open WebSocket), in bursts of four times that; more are refused with 429 rate_limited and Retry-After before the handler runs; kept in each node's memory (no Redis round trip per request), so with N nodes a user may reach N times it; ignored with rate limits off", intSetter(func(c *Config) *int { return &c.RequestsPerSecond }, 1)},
		{"groups-per-minute", "NERUTALK_GROUPS_PER_MINUTE", "10", "group chats one user may create per minute (burst as many), shared by the nodes through Redis when set; more are refused with 429 rate_limited and Retry-After; ignored with rate limits off", intSetter(func(c *Config) *int { return &c.GroupsPerMinute }, 1)},
		{"refreshes-per-minute", "NERUTALK_REFRESHES_PER_MINUTE", "10", "token refreshes (POST /auth/refresh) one session may make per minute (burst as many), checked before the database transaction and shared by the nodes through Redis when set; more are refused with 429 rate_limited and Retry-After; ignored with rate limits off", intSetter(func(c *Config) *int { return &c.RefreshesPerMinute }, 1)},
		{"ws-connects-per-minute", "NERUTALK_WS_CONNECTS_PER_MINUTE", "60", "WebSocket upgrades one user may make per minute (burst a third of that, at least 1), checked before upgrading and shared by the nodes through Redis when set; more are refused with 429 rate_limited and Retry-After; ignored with rate limits off", intSetter(func(c *Config) *int { return &c.WSConnectsPerMinute }, 1)},
		{"ws-frames-per-second", "NERUTALK_WS_FRAMES_PER_SECOND", "50", "frames per second a WebSocket connection may send (burst twice that; all of a user's connections on a node together twice that); also, per user, the chat writes (sends, edits, deletes, read and delivered marks, chat and member changes, invitations, blocks) and, separately, the location writes (reports, settings, shares, geofences) and the call actions (answer, decline, join, leave, end) a second over REST, shared by the nodes through Redis when set; ignored with rate limits off", intSetter(func(c *Config) *int { return &c.WSFramesPerSecond }, 1)},
		{"ws-send-queue", "NERUTALK_WS_SEND_QUEUE", "1024", "frames queued for one connection before it is dropped as too slow", intSetter(func(c *Config) *int { return &c.WSSendQueue }, 8)},
		{"ws-max-connections-per-user", "NERUTALK_WS_MAX_CONNECTIONS_PER_USER", "20", "open WebSocket connections one user may have, counted across the nodes sharing NERUTALK_REDIS_URL (leases renewed every 10 s, expiring 30 s after a node dies), else per node; more are refused with 429 too_many_connections", intSetter(func(c *Config) *int { return &c.WSMaxConnectionsPerUser }, 1)},
		{"ws-ping-interval", "NERUTALK_WS_PING_INTERVAL", "25s", "how often the server pings each connection", durationSetter(func(c *Config) *time.Duration { return &c.WSPingInterval })},
		{"presence-grace", "NERUTALK_PRESENCE_GRACE", "5s", "how long a user stays online after the last connection closes", durationSetter(func(c *Config) *time.Duration { return &c.PresenceGrace })},
		{"large-group-members", "NERUTALK_LARGE_GROUP_MEMBERS", "50", "groups with more members are large: their members get no automatic presence of each other (they subscribe with presence_subscribe or ask presence_count), membership changes reach existing members as one summarizing chat_updated, and read/delivered receipts go only to the connections that joined the chat", intSetter(func(c *Config) *int { return &c.LargeGroupMembers }, 2)},
		{"presence-subscriptions", "NERUTALK_PRESENCE_SUBSCRIPTIONS", "500", "most users one WebSocket connection may follow with presence_subscribe", intSetter(func(c *Config) *int { return &c.PresenceSubscriptions }, 1)},
		{"avatar-max-bytes", "NERUTALK_AVATAR_MAX_BYTES", "5242880", "largest avatar upload", int64Setter(func(c *Config) *int64 { return &c.AvatarMaxBytes }, 1024)},
		{"image-max-pixels", "NERUTALK_IMAGE_MAX_PIXELS", "40000000", "largest image accepted, in pixels (width x height)", int64Setter(func(c *Config) *int64 { return &c.ImageMaxPixels }, 1)},
		{"image-memory-bytes", "NERUTALK_IMAGE_MEMORY_BYTES", "268435456", "memory budget of the images being decoded at once on a node: each image waits for what its decode really allocates (width x height x bytes per pixel of the decoded form, plus the thumbnail and the encoded output); images costing at most 8 MiB use a lane of their own (32 MiB) and never wait behind large ones; one image costing more than the budget runs alone", int64Setter(func(c *Config) *int64 { return &c.ImageMemoryBytes }, 16<<20)},
		{"image-workers", "NERUTALK_IMAGE_WORKERS", "process", "where large images (those outside the 8 MiB fast lane, from about 1 megapixel) are decoded and re-encoded: process = in a worker process per image, the server's own binary started again at the lowest CPU priority (SCHED_IDLE at nice 19 on Linux, in a session and autogroup of its own niced to 19) with its own memory limit, at most 2 at once, killed after 3 minutes (503 image_processing_timeout), retried once if it crashes (then 503 image_processing_failed), so that a burst of large images cannot take the cores and the heap from messages; inline = in the server process (small images always are)", func(c *Config, v string) error {
			if v != "process" && v != "inline" {
				return errors.New("want process or inline")
			}
			c.ImageWorkers = v
			return nil
		}},
		{"storage-quota-bytes", "NERUTALK_STORAGE_QUOTA_BYTES", "1073741824", "total size of the files one user may own (uploads, counted per owner even when identical contents are stored once); an upload over it is refused with 403 quota_exceeded; not lifted by rate limits off", int64Setter(func(c *Config) *int64 { return &c.StorageQuotaBytes }, 1024)},
		{"media-max-image-bytes", "NERUTALK_MEDIA_MAX_IMAGE_BYTES", "20971520", "largest image upload (POST /files)", int64Setter(func(c *Config) *int64 { return &c.MediaMaxImageBytes }, 1024)},
		{"media-max-video-bytes", "NERUTALK_MEDIA_MAX_VIDEO_BYTES", "104857600", "largest video upload", int64Setter(func(c *Config) *int64 { return &c.MediaMaxVideoBytes }, 1024)},
		{"media-max-audio-bytes", "NERUTALK_MEDIA_MAX_AUDIO_BYTES", "104857600", "largest audio upload", int64Setter(func(c *Config) *int64 { return &c.MediaMaxAudioBytes }, 1024)},
		{"media-max-file-bytes", "NERUTALK_MEDIA_MAX_FILE_BYTES", "104857600", "largest document upload (PDF, text, office, ZIP)", int64Setter(func(c *Config) *int64 { return &c.MediaMaxFileBytes }, 1024)},
		{"media-orphan-age", "NERUTALK_MEDIA_ORPHAN_AGE", "24h", "uploads never attached to a message are deleted after this", durationSetter(func(c *Config) *time.Duration { return &c.MediaOrphanAge })},
		{"uploads-per-minute", "NERUTALK_UPLOADS_PER_MINUTE", "60", "uploads (POST /files and PUT /users/me/avatar, one budget) per user per minute, shared by the nodes through Redis when set; ignored with rate limits off", intSetter(func(c *Config) *int { return &c.UploadsPerMin }, 1)},
		{"uploads-in-flight", "NERUTALK_UPLOADS_IN_FLIGHT", "4", "uploads (POST /files and PUT /users/me/avatar, one count) one user may have in progress at once on a node (each holds up to an image's bytes in memory until it is processed); more are refused with 429 too_many_uploads and Retry-After 1 s; applies with rate limits off too", intSetter(func(c *Config) *int { return &c.UploadsInFlight }, 1)},
		{"s3-endpoint", "NERUTALK_S3_ENDPOINT", "", "S3 endpoint URL (e.g. http://127.0.0.1:7070); empty = AWS", func(c *Config, v string) error {
			if v != "" {
				if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return errors.New("want http(s)://host[:port]")
				}
			}
			c.S3Endpoint = v
			return nil
		}},
		{"s3-region", "NERUTALK_S3_REGION", "us-east-1", "S3 region", func(c *Config, v string) error { c.S3Region = v; return nil }},
		{"s3-bucket", "NERUTALK_S3_BUCKET", "", "S3 bucket for media; empty = media on local disk under the data folder", func(c *Config, v string) error { c.S3Bucket = v; return nil }},
		{"s3-access-key", "NERUTALK_S3_ACCESS_KEY", "", "S3 access key id", func(c *Config, v string) error { c.S3AccessKey = v; return nil }},
		{"s3-secret-key", "NERUTALK_S3_SECRET_KEY", "", "S3 secret access key", func(c *Config, v string) error { c.S3SecretKey = v; return nil }},
		{"s3-path-style", "NERUTALK_S3_PATH_STYLE", "off", "on = bucket in the URL path (most self-hosted S3 services), off = in the host name", func(c *Config, v string) error {
			b, err := onOff(v)
			c.S3PathStyle = b
			return err
		}},
		{"giphy-api-key", "NERUTALK_GIPHY_API_KEY", "", "Giphy API key for GIF and sticker search; empty = built-in set only", func(c *Config, v string) error { c.GiphyAPIKey = v; return nil }},
		{"giphy-url", "NERUTALK_GIPHY_URL", "https://api.giphy.com", "Giphy API base URL (a proxy, or a fake in tests)", func(c *Config, v string) error {
			if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return errors.New("want http(s)://host[:port]")
			}
			c.GiphyURL = strings.TrimRight(v, "/")
			return nil
		}},
		{"media-search-per-minute", "NERUTALK_MEDIA_SEARCH_PER_MINUTE", "60", "GIF and sticker searches per user per minute; ignored with rate limits off", intSetter(func(c *Config) *int { return &c.MediaSearchPerMin }, 1)},
		// Push providers. Settings that depend on an earlier one are checked in its setter, so
		// the order of this block matters.
		{"push-fcm-credentials-file", "NERUTALK_PUSH_FCM_CREDENTIALS_FILE", "", "FCM service-account key file (JSON, from the Firebase console); empty = Android pushes are only logged", fileSetter(func(c *Config) *string { return &c.PushFCMCredentialsFile })},
		{"push-fcm-endpoint", "NERUTALK_PUSH_FCM_ENDPOINT", "https://fcm.googleapis.com", "FCM HTTP v1 API base URL (a proxy, or a fake in tests)", func(c *Config, v string) error {
			if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return errors.New("want http(s)://host[:port]")
			}
			c.PushFCMEndpoint = strings.TrimRight(v, "/")
			return nil
		}},
		{"push-apns-key-file", "NERUTALK_PUSH_APNS_KEY_FILE", "", "APNs token-signing key (.p8 file); empty = iOS pushes are only logged", fileSetter(func(c *Config) *string { return &c.PushAPNsKeyFile })},
		{"push-apns-key-id", "NERUTALK_PUSH_APNS_KEY_ID", "", "the APNs key's 10-character key id; required with NERUTALK_PUSH_APNS_KEY_FILE", apnsIDSetter(func(c *Config) *string { return &c.PushAPNsKeyID })},
		{"push-apns-team-id", "NERUTALK_PUSH_APNS_TEAM_ID", "", "the Apple developer team id (10 characters); required with NERUTALK_PUSH_APNS_KEY_FILE", apnsIDSetter(func(c *Config) *string { return &c.PushAPNsTeamID })},
		{"push-apns-topic", "NERUTALK_PUSH_APNS_TOPIC", "", "the iOS app's bundle id, used for devices registered without an app id", func(c *Config, v string) error {
			if strings.ContainsAny(v, " \t\r\n/") {
				return errors.New("want a bundle id such as org.example.app")
			}
			c.PushAPNsTopic = v
			return nil
		}},
		{"push-apns-endpoint", "NERUTALK_PUSH_APNS_ENDPOINT", "production", "production, sandbox (development builds) or an https:// URL", func(c *Config, v string) error {
			if v != "production" && v != "sandbox" {
				if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return errors.New("want production, sandbox or http(s)://host[:port]")
				}
			}
			c.PushAPNsEndpoint = v
			return nil
		}},
		{"push-vapid-public-key", "NERUTALK_PUSH_VAPID_PUBLIC_KEY", "", "Web Push VAPID public key (base64url P-256 point); empty with the private key = a pair generated once and kept in the database", func(c *Config, v string) error {
			if v != "" {
				if b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "=")); err != nil || len(b) != 65 || b[0] != 4 {
					return errors.New("want 65 bytes (an uncompressed P-256 point) in base64url")
				}
			}
			c.PushVAPIDPublicKey = v
			return nil
		}},
		{"push-vapid-private-key", "NERUTALK_PUSH_VAPID_PRIVATE_KEY", "", "Web Push VAPID private key (base64url, 32 bytes); set with the public key", func(c *Config, v string) error {
			switch {
			case v == "" && c.PushVAPIDPublicKey != "":
				return errors.New("required when NERUTALK_PUSH_VAPID_PUBLIC_KEY is set")
			case v == "":
				c.PushVAPIDPrivateKey = ""
				return nil
			case c.PushVAPIDPublicKey == "":
				return errors.New("set NERUTALK_PUSH_VAPID_PUBLIC_KEY too")
			}
			b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
			if err != nil || len(b) != 32 {
				return errors.New("want 32 bytes in base64url")
			}
			k, err := ecdh.P256().NewPrivateKey(b)
			if err != nil {
				return errors.New("not a P-256 private key")
			}
			pub, _ := base64.RawURLEncoding.DecodeString(strings.TrimRight(c.PushVAPIDPublicKey, "="))
			if !bytes.Equal(k.PublicKey().Bytes(), pub) {
				return errors.New("does not match NERUTALK_PUSH_VAPID_PUBLIC_KEY")
			}
			c.PushVAPIDPrivateKey = v
			return nil
		}},
		{"push-vapid-subject", "NERUTALK_PUSH_VAPID_SUBJECT", "", "contact for Web Push services, mailto:you@example.org or https://...; empty = the project's URL", func(c *Config, v string) error {
			if v != "" && !strings.HasPrefix(v, "mailto:") && !strings.HasPrefix(v, "https://") {
				return errors.New("want mailto:address or https://url")
			}
			c.PushVAPIDSubject = v
			return nil
		}},
		{"calls-provider", "NERUTALK_CALLS_PROVIDER", "p2p", "media provider of calls: p2p (WebRTC signaled over the WebSocket, with NERUTALK_STUN_URLS/NERUTALK_TURN_URLS), agora (needs NERUTALK_AGORA_*) or livekit (needs NERUTALK_LIVEKIT_*)", func(c *Config, v string) error {
			if v != "p2p" && v != "agora" && v != "livekit" {
				return errors.New("want p2p, agora or livekit")
			}
			c.CallsProvider = v
			return nil
		}},
		{"agora-app-id", "NERUTALK_AGORA_APP_ID", "", "Agora app id (32 hex digits), for NERUTALK_CALLS_PROVIDER=agora", hexKeySetter(func(c *Config) *string { return &c.AgoraAppID })},
		{"agora-app-certificate", "NERUTALK_AGORA_APP_CERTIFICATE", "", "Agora app certificate (32 hex digits): signs the AccessToken2 RTC tokens", hexKeySetter(func(c *Config) *string { return &c.AgoraAppCertificate })},
		{"livekit-url", "NERUTALK_LIVEKIT_URL", "", "LiveKit server URL handed to clients (wss://...), for NERUTALK_CALLS_PROVIDER=livekit", func(c *Config, v string) error {
			if v != "" {
				if u, err := url.Parse(v); err != nil || (u.Scheme != "ws" && u.Scheme != "wss" && u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return errors.New("want ws(s):// or http(s)://host[:port]")
				}
			}
			c.LiveKitURL = v
			return nil
		}},
		{"livekit-api-key", "NERUTALK_LIVEKIT_API_KEY", "", "LiveKit API key (the tokens' issuer)", func(c *Config, v string) error { c.LiveKitAPIKey = v; return nil }},
		{"livekit-api-secret", "NERUTALK_LIVEKIT_API_SECRET", "", "LiveKit API secret (signs the HS256 access tokens)", func(c *Config, v string) error { c.LiveKitAPISecret = v; return nil }},
		{"stun-urls", "NERUTALK_STUN_URLS", "", "comma-separated STUN URLs (stun:host:port) given to p2p calls", iceURLsSetter(func(c *Config) *[]string { return &c.STUNURLs }, "stun:", "stuns:")},
		{"turn-urls", "NERUTALK_TURN_URLS", "", "comma-separated TURN URLs (turn:host:port?transport=udp, turns:...) given to p2p calls with REST credentials; needs NERUTALK_TURN_SECRET", iceURLsSetter(func(c *Config) *[]string { return &c.TURNURLs }, "turn:", "turns:")},
		{"turn-secret", "NERUTALK_TURN_SECRET", "", "shared secret of the TURN server (coturn static-auth-secret): credential = base64(HMAC-SHA1(secret, \"<expiry>:<user id>\"))", func(c *Config, v string) error {
			if v == "" && len(c.TURNURLs) > 0 {
				return errors.New("NERUTALK_TURN_URLS needs it")
			}
			c.TURNSecret = v
			return nil
		}},
		{"call-token-ttl", "NERUTALK_CALL_TOKEN_TTL", "1h", "lifetime of call media credentials (Agora and LiveKit tokens, TURN credentials); clients renew with POST /calls/{id}/token", durationSetter(func(c *Config) *time.Duration { return &c.CallTokenTTL })},
		{"call-privilege-ttl", "NERUTALK_CALL_PRIVILEGE_TTL", "1h", "Agora: how long the join and publish privileges last (at most NERUTALK_CALL_TOKEN_TTL)", durationSetter(func(c *Config) *time.Duration { return &c.CallPrivilegeTTL })},
		{"calls-per-minute", "NERUTALK_CALLS_PER_MINUTE", "10", "calls one user may start per minute (burst as many; each rings every other member of the chat, pushes included), shared by the nodes through Redis when set; more are refused with 429 rate_limited and Retry-After; ignored with rate limits off", intSetter(func(c *Config) *int { return &c.CallsPerMinute }, 1)},
		{"call-ring-timeout", "NERUTALK_CALL_RING_TIMEOUT", "45s", "an unanswered call ends as missed after this (and a system message is posted in the chat)", durationSetter(func(c *Config) *time.Duration { return &c.CallRingTimeout })},
		{"call-max-participants", "NERUTALK_CALL_MAX_PARTICIPANTS", "16", "most participants in one call at once", intSetter(func(c *Config) *int { return &c.CallMaxParticipants }, 2)},
		{"call-disconnect-grace", "NERUTALK_CALL_DISCONNECT_GRACE", "15s", "a participant with no WebSocket open anywhere for this long (on top of NERUTALK_PRESENCE_GRACE) is taken out of the call", durationSetter(func(c *Config) *time.Duration { return &c.CallDisconnectGrace })},
		{"call-sweep-interval", "NERUTALK_CALL_SWEEP_INTERVAL", "2s", "how often each node looks for calls past their ring timeout and for disconnected participants", durationSetter(func(c *Config) *time.Duration { return &c.CallSweepInterval })},
		{"location-history-interval", "NERUTALK_LOCATION_HISTORY_INTERVAL", "1s", "at most one stored location history point per user per this interval (every report still updates what viewers see)", durationSetter(func(c *Config) *time.Duration { return &c.LocationHistoryEvery })},
		{"location-prune-interval", "NERUTALK_LOCATION_PRUNE_INTERVAL", "1h", "how often location history past each user's retention is deleted", durationSetter(func(c *Config) *time.Duration { return &c.LocationPruneEvery })},
		{"location-geofence-max-accuracy", "NERUTALK_LOCATION_GEOFENCE_MAX_ACCURACY", "100", "fixes whose accuracy_m is above this many meters cause no geofence enter or exit", intSetter(func(c *Config) *int { return &c.LocationGeofenceAccuracyM }, 1)},
		{"location-geofence-exit-margin", "NERUTALK_LOCATION_GEOFENCE_EXIT_MARGIN", "25", "meters beyond a geofence's boundary a fix must be (or its accuracy_m, if larger) to count as an exit", intSetter(func(c *Config) *int { return &c.LocationGeofenceExitMargin }, 1)},
		{"push-message-delay", "NERUTALK_PUSH_MESSAGE_DELAY", "3s", "how long a message's push waits before it is sent; a member who is online then, or whose app acknowledged the message (message_delivered), gets none", durationSetter(func(c *Config) *time.Duration { return &c.PushMessageDelay })},
		{"push-poll-interval", "NERUTALK_PUSH_POLL_INTERVAL", "1s", "how often an idle push worker looks for due notifications (sends and broadcasts wake the workers of every node at once)", durationSetter(func(c *Config) *time.Duration { return &c.PushPollInterval })},
		{"push-lease", "NERUTALK_PUSH_LEASE", "1m", "how long a push worker holds the notifications it claimed; a node that dies mid-send has them re-sent by another after this", durationSetter(func(c *Config) *time.Duration { return &c.PushLease })},
		{"push-max-attempts", "NERUTALK_PUSH_MAX_ATTEMPTS", "5", "tries of one push delivery (retries back off exponentially with jitter, honouring Retry-After) before it is dead", intSetter(func(c *Config) *int { return &c.PushMaxAttempts }, 1)},
		{"push-concurrency", "NERUTALK_PUSH_CONCURRENCY", "32", "push sends in flight at once on each node", intSetter(func(c *Config) *int { return &c.PushConcurrency }, 1)},
		{"push-fallback-locale", "NERUTALK_PUSH_FALLBACK_LOCALE", "en", "notification template locale for devices whose locale has no template", func(c *Config, v string) error {
			if v == "" || len(v) > 35 || strings.ContainsAny(v, " /") {
				return errors.New("want a language tag such as en or de-AT")
			}
			c.PushFallbackLocale = v
			return nil
		}},
		{"push-retention", "NERUTALK_PUSH_RETENTION", "720h", "finished notifications (sent, failed, dead, skipped) are deleted after this: the reach of GET /notifications and the stats", durationSetter(func(c *Config) *time.Duration { return &c.PushRetention })},
		{"push-admin-sends-per-minute", "NERUTALK_PUSH_ADMIN_SENDS_PER_MINUTE", "10", "admin notification sends and broadcasts per admin per minute; ignored with rate limits off", intSetter(func(c *Config) *int { return &c.PushAdminSendsPerMin }, 1)},
	}
}

// hexKeySetter accepts an empty value or 32 hex digits (Agora's app id and certificate).
func hexKeySetter(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v != "" {
			if _, err := hex.DecodeString(v); err != nil || len(v) != 32 {
				return errors.New("want 32 hex digits")
			}
		}
		*field(c) = v
		return nil
	}
}

// iceURLsSetter reads a comma-separated list of ICE server URLs with one of the schemes.
func iceURLsSetter(field func(*Config) *[]string, schemes ...string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var urls []string
		for _, u := range strings.Split(v, ",") {
			if u = strings.TrimSpace(u); u == "" {
				continue
			}
			ok := false
			for _, s := range schemes {
				ok = ok || (strings.HasPrefix(u, s) && len(u) > len(s))
			}
			if !ok {
				return fmt.Errorf("%q: want %s URLs", u, strings.Join(schemes, " or "))
			}
			urls = append(urls, u)
		}
		*field(c) = urls
		return nil
	}
}

// Default returns the configuration with every default applied.
func Default() Config {
	c, err := Load(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		panic("config: defaults do not validate: " + err.Error()) // a programming error
	}
	return c
}

// Usage lists the commands; -help prints it before the settings.
const Usage = `Usage:
  nerutalk [serve] [flags]   run the server (the default)
  nerutalk migrate [flags]   apply database migrations and exit
  nerutalk admin grant|revoke <username> [flags]
                             make a user an admin, or a plain user again
  nerutalk version           print the version
`

// ErrHelp is returned by Load when -h or -help was given; the usage has been printed.
var ErrHelp = flag.ErrHelp

// Load reads the environment (through getenv), then args (flags without the subcommand). The usage
// is written to out only when -h or -help asks for it (Load then returns ErrHelp). Any other error
// is one line that names the setting that is wrong and why; secrets are not repeated in it.
func Load(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	var c Config
	all := settings()
	fs := flag.NewFlagSet("nerutalk", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned as one line, not printed with the usage
	fs.Usage = func() {}
	values := make(map[string]string, len(all))
	for _, s := range all {
		values[s.Flag] = s.Default
		if v := getenv(s.Env); v != "" {
			values[s.Flag] = v
		}
		fs.Func(s.Flag, fmt.Sprintf("%s (env %s, default %q)", s.Usage, s.Env, s.Default), func(v string) error {
			values[s.Flag] = v
			return nil
		})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(out, Usage+"\nEvery setting can be given as a flag or as an environment variable; flags win.\n\n")
			fs.SetOutput(out)
			fs.PrintDefaults()
			return c, ErrHelp
		}
		// The flag package quotes nothing: keep a stray newline from splitting the line.
		return c, fmt.Errorf("%s (nerutalk serve -help lists the settings)", strings.ReplaceAll(err.Error(), "\n", `\n`))
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (nerutalk serve -help lists the settings)", fs.Arg(0))
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	for _, s := range all {
		if explicit[s.Flag] {
			if c.fromFlag == nil {
				c.fromFlag = map[string]string{}
			}
			c.fromFlag[s.Env] = "-" + s.Flag
		}
		if err := s.set(&c, values[s.Flag]); err != nil {
			return c, fmt.Errorf("invalid setting %s=%q: %w", c.Name(s.Env), redact(s, values[s.Flag]), err)
		}
	}
	return c, nil
}

// redact hides what must not reach a log or a terminal: secrets, keys and URL passwords.
func redact(s Setting, v string) string {
	if strings.Contains(s.Env, "SECRET") || strings.HasSuffix(s.Env, "_KEY") || strings.HasSuffix(s.Env, "_CERTIFICATE") {
		return "(hidden)"
	}
	if u, err := url.Parse(v); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
	}
	return v
}

// Reference returns the settings as a sorted Markdown table, for docs/CONFIG.md.
func Reference() string {
	all := settings()
	sort.Slice(all, func(i, j int) bool { return all[i].Env < all[j].Env })
	var b strings.Builder
	b.WriteString("| variable | flag | default | meaning |\n|---|---|---|---|\n")
	for _, s := range all {
		def := "*empty*"
		if s.Default != "" {
			def = "`" + s.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | `-%s` | %s | %s |\n", s.Env, s.Flag, def, s.Usage)
	}
	return b.String()
}

// fileSetter accepts empty or the path of a readable regular file.
func fileSetter(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v != "" {
			fi, err := os.Stat(v)
			if err != nil {
				return fmt.Errorf("cannot read the file: %w", errors.Unwrap(err))
			}
			if !fi.Mode().IsRegular() {
				return errors.New("not a regular file")
			}
		}
		*field(c) = v
		return nil
	}
}

// apnsIDSetter accepts an APNs key or team id: required with NERUTALK_PUSH_APNS_KEY_FILE (set
// before it in settings), 10 letters and digits.
func apnsIDSetter(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		switch {
		case v == "" && c.PushAPNsKeyFile != "":
			return errors.New("required when NERUTALK_PUSH_APNS_KEY_FILE is set")
		case v != "" && c.PushAPNsKeyFile == "":
			return errors.New("set NERUTALK_PUSH_APNS_KEY_FILE too")
		case v != "" && (len(v) != 10 || strings.IndexFunc(v, func(r rune) bool {
			return !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
		}) >= 0):
			return errors.New("want 10 capital letters and digits")
		}
		*field(c) = v
		return nil
	}
}

func onOff(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "true", "1", "yes":
		return true, nil
	case "off", "false", "0", "no":
		return false, nil
	}
	return false, errors.New("want on or off")
}

// durationSetter accepts positive durations.
func durationSetter(field func(*Config) *time.Duration) func(*Config, string) error {
	return durationSetterFrom(false, field)
}

// durationSetterFrom accepts positive durations, and zero too when zeroOK.
func durationSetterFrom(zeroOK bool, field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("want a duration such as 15m or 30s")
		}
		switch {
		case d < 0 && zeroOK:
			return errors.New("must not be negative")
		case d <= 0 && !zeroOK:
			return errors.New("must be positive")
		}
		*field(c) = d
		return nil
	}
}

func int64Setter(field func(*Config) *int64, min int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return errors.New("want a whole number")
		}
		if n < min {
			return fmt.Errorf("must be at least %d", min)
		}
		*field(c) = n
		return nil
	}
}

func intSetter(field func(*Config) *int, min int) func(*Config, string) error {
	return func(c *Config, v string) error {
		var n int64
		if err := int64Setter(func(*Config) *int64 { return &n }, int64(min))(c, v); err != nil {
			return err
		}
		*field(c) = int(n)
		return nil
	}
}

func uintSetter(field func(*Config) *uint, min uint) func(*Config, string) error {
	return func(c *Config, v string) error {
		var n int64
		if err := int64Setter(func(*Config) *int64 { return &n }, int64(min))(c, v); err != nil {
			return err
		}
		*field(c) = uint(n)
		return nil
	}
}

// parseProxies reads a comma-separated list of addresses and CIDR prefixes (10.0.0.0/8,
// 192.168.1.10, fd00::/8): the proxies whose X-Forwarded-For is believed.
func parseProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not an address or a CIDR prefix", s)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is not an address or a CIDR prefix", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
