// Package config loads NeruTalk's settings from NERUTALK_* environment variables, overridden by
// command-line flags, and validates them so that a bad setting stops start-up with one clear line.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of the server. The zero value is not useful: use Load or Default.
type Config struct {
	Addr        string
	DataDir     string
	DatabaseURL string
	RedisURL    string
	RateLimits  bool
	LogLevel    slog.Level
	LogFormat   string // text or json

	JWTSecret       string
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration

	Argon2MemoryKiB uint
	Argon2Time      uint
	Argon2Threads   uint

	CORSOrigins     []string
	MaxBodyBytes    int64
	ShutdownTimeout time.Duration
	Pprof           bool

	MaxGroupMembers   int
	WSMaxFrameBytes   int64
	WSMaxTextChars    int
	WSFramesPerSecond int
	WSSendQueue       int
	WSPingInterval    time.Duration
	PresenceGrace     time.Duration

	AvatarMaxBytes int64
	ImageMaxPixels int64
}

// setting describes one configuration value: its flag, its environment variable and its default.
type setting struct {
	flag, env, def, usage string
	set                   func(c *Config, v string) error
}

func settings() []setting {
	return []setting{
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
		{"database-url", "NERUTALK_DATABASE_URL", "", "empty = embedded SQLite in the data folder; postgres://... = PostgreSQL", func(c *Config, v string) error {
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
		{"rate-limits", "NERUTALK_RATE_LIMITS", "on", "on or off (off disables every rate limit, for load tests)", func(c *Config, v string) error {
			b, err := onOff(v)
			c.RateLimits = b
			return err
		}},
		{"log-level", "NERUTALK_LOG_LEVEL", "info", "debug, info, warn or error", func(c *Config, v string) error {
			return c.LogLevel.UnmarshalText([]byte(v))
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
		{"refresh-token-ttl", "NERUTALK_REFRESH_TOKEN_TTL", "720h", "lifetime of refresh tokens (sessions)", durationSetter(func(c *Config) *time.Duration { return &c.RefreshTokenTTL })},
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
		{"max-body-bytes", "NERUTALK_MAX_BODY_BYTES", "1048576", "largest JSON request body", int64Setter(func(c *Config) *int64 { return &c.MaxBodyBytes }, 1024)},
		{"shutdown-timeout", "NERUTALK_SHUTDOWN_TIMEOUT", "4s", "how long shutdown waits for in-flight requests", durationSetter(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
		{"pprof", "NERUTALK_PPROF", "off", "on = serve /debug/pprof/ to admins", func(c *Config, v string) error {
			b, err := onOff(v)
			c.Pprof = b
			return err
		}},
		{"max-group-members", "NERUTALK_MAX_GROUP_MEMBERS", "1000", "most members a group chat may have", intSetter(func(c *Config) *int { return &c.MaxGroupMembers }, 2)},
		{"ws-max-frame-bytes", "NERUTALK_WS_MAX_FRAME_BYTES", "65536", "largest WebSocket frame a client may send", int64Setter(func(c *Config) *int64 { return &c.WSMaxFrameBytes }, 1024)},
		{"ws-max-text-chars", "NERUTALK_WS_MAX_TEXT_CHARS", "4096", "longest message text, in characters", intSetter(func(c *Config) *int { return &c.WSMaxTextChars }, 1)},
		{"ws-frames-per-second", "NERUTALK_WS_FRAMES_PER_SECOND", "50", "frames per second a connection may send (burst twice that); ignored with rate limits off", intSetter(func(c *Config) *int { return &c.WSFramesPerSecond }, 1)},
		{"ws-send-queue", "NERUTALK_WS_SEND_QUEUE", "1024", "frames queued for one connection before it is dropped as too slow", intSetter(func(c *Config) *int { return &c.WSSendQueue }, 8)},
		{"ws-ping-interval", "NERUTALK_WS_PING_INTERVAL", "25s", "how often the server pings each connection", durationSetter(func(c *Config) *time.Duration { return &c.WSPingInterval })},
		{"presence-grace", "NERUTALK_PRESENCE_GRACE", "5s", "how long a user stays online after the last connection closes", durationSetter(func(c *Config) *time.Duration { return &c.PresenceGrace })},
		{"avatar-max-bytes", "NERUTALK_AVATAR_MAX_BYTES", "5242880", "largest avatar upload", int64Setter(func(c *Config) *int64 { return &c.AvatarMaxBytes }, 1024)},
		{"image-max-pixels", "NERUTALK_IMAGE_MAX_PIXELS", "40000000", "largest image accepted, in pixels (width x height)", int64Setter(func(c *Config) *int64 { return &c.ImageMaxPixels }, 1)},
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

// ErrHelp is returned by Load when -h or -help was given; the usage has been printed.
var ErrHelp = flag.ErrHelp

// Load reads the environment (through getenv), then args (flags without the subcommand). Usage and
// flag errors are written to out. The error names the setting that is wrong and why.
func Load(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	var c Config
	all := settings()
	fs := flag.NewFlagSet("nerutalk serve", flag.ContinueOnError)
	fs.SetOutput(out)
	values := make(map[string]string, len(all))
	for _, s := range all {
		values[s.flag] = s.def
		if v := getenv(s.env); v != "" {
			values[s.flag] = v
		}
		fs.Func(s.flag, fmt.Sprintf("%s (env %s, default %q)", s.usage, s.env, s.def), func(v string) error {
			values[s.flag] = v
			return nil
		})
	}
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: nerutalk serve [flags]\n\nEvery setting can be given as a flag or as an environment variable; flags win.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	for _, s := range all {
		if err := s.set(&c, values[s.flag]); err != nil {
			name := s.env
			if explicit[s.flag] {
				name = "-" + s.flag
			}
			return c, fmt.Errorf("invalid setting %s=%q: %w", name, values[s.flag], err)
		}
	}
	return c, nil
}

// Reference returns the settings as a sorted Markdown table, for docs/CONFIG.md.
func Reference() string {
	all := settings()
	sort.Slice(all, func(i, j int) bool { return all[i].env < all[j].env })
	var b strings.Builder
	b.WriteString("| variable | flag | default | meaning |\n|---|---|---|---|\n")
	for _, s := range all {
		fmt.Fprintf(&b, "| `%s` | `-%s` | `%s` | %s |\n", s.env, s.flag, s.def, s.usage)
	}
	return b.String()
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

func durationSetter(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("want a duration such as 15m or 30s")
		}
		if d <= 0 {
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
