package config_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nerutalk/nerutalk/internal/config"
)

// update rewrites the generated table of docs/CONFIG.md: go test ./internal/config -run TestConfigDoc -update
var update = flag.Bool("update", false, "rewrite docs/CONFIG.md from config.Reference()")

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// The foundation's settings; each feature's tests check its own.
func TestDefault(t *testing.T) {
	t.Parallel()
	type foundation struct {
		Addr, DataDir, DatabaseURL, RedisURL, LogFormat, JWTSecret string
		RateLimits, Pprof                                          bool
		LogLevel                                                   slog.Level
		CORSOrigins                                                []string
		MaxBodyBytes                                               int64
		ShutdownTimeout                                            time.Duration
	}
	want := foundation{Addr: "127.0.0.1:8080", DataDir: "./data", LogFormat: "text", RateLimits: true,
		LogLevel: slog.LevelInfo, MaxBodyBytes: 1 << 20, ShutdownTimeout: 4 * time.Second}
	c := config.Default()
	got := foundation{c.Addr, c.DataDir, c.DatabaseURL, c.RedisURL, c.LogFormat, c.JWTSecret, c.RateLimits, c.Pprof,
		c.LogLevel, c.CORSOrigins, c.MaxBodyBytes, c.ShutdownTimeout}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Default() mismatch (-want +got):\n%s", diff)
	}
	// Every default is valid and Load without input gives Default.
	loaded, err := config.Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatalf("Load(): %v", err)
	}
	if diff := cmp.Diff(config.Default(), loaded, cmpopts.IgnoreUnexported(config.Config{})); diff != "" {
		t.Errorf("Load() != Default() (-default +load):\n%s", diff)
	}
}

// The names and defaults that api.md fixes for tools.
func TestContractSettings(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"NERUTALK_ADDR":         "127.0.0.1:8080",
		"NERUTALK_DATA_DIR":     "./data",
		"NERUTALK_DATABASE_URL": "",
		"NERUTALK_REDIS_URL":    "",
		"NERUTALK_RATE_LIMITS":  "on",
		"NERUTALK_LOG_LEVEL":    "info",
	}
	got := map[string]string{}
	for _, s := range config.Settings() {
		if _, ok := want[s.Env]; ok {
			got[s.Env] = s.Default
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("contract settings (-want +got):\n%s", diff)
	}
}

func TestSettingsAreConsistent(t *testing.T) {
	t.Parallel()
	flags, envs := map[string]bool{}, map[string]bool{}
	for _, s := range config.Settings() {
		if flags[s.Flag] || envs[s.Env] {
			t.Errorf("setting %s/%s is declared twice", s.Flag, s.Env)
		}
		flags[s.Flag], envs[s.Env] = true, true
		if want := "NERUTALK_" + strings.ToUpper(strings.ReplaceAll(s.Flag, "-", "_")); s.Env != want {
			t.Errorf("flag -%s reads %s, want %s", s.Flag, s.Env, want)
		}
		if s.Usage == "" || strings.ContainsAny(s.Usage, "|\n") {
			t.Errorf("setting %s: usage %q must be one non-empty line without |", s.Env, s.Usage)
		}
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(c config.Config) (got, want any)
	}{
		{"env sets", map[string]string{"NERUTALK_ADDR": "0.0.0.0:9000"}, nil,
			func(c config.Config) (any, any) { return c.Addr, "0.0.0.0:9000" }},
		{"flag wins over env", map[string]string{"NERUTALK_ADDR": "0.0.0.0:9000"}, []string{"-addr", "127.0.0.1:1"},
			func(c config.Config) (any, any) { return c.Addr, "127.0.0.1:1" }},
		{"double-dash flag", nil, []string{"--data-dir=/srv/nt"},
			func(c config.Config) (any, any) { return c.DataDir, "/srv/nt" }},
		{"postgres url", map[string]string{"NERUTALK_DATABASE_URL": "postgresql://u:p@db/nt"}, nil,
			func(c config.Config) (any, any) { return c.DatabaseURL, "postgresql://u:p@db/nt" }},
		{"redis url", nil, []string{"-redis-url", "redis://127.0.0.1:6379/0"},
			func(c config.Config) (any, any) { return c.RedisURL, "redis://127.0.0.1:6379/0" }},
		{"rate limits off", map[string]string{"NERUTALK_RATE_LIMITS": "OFF"}, nil,
			func(c config.Config) (any, any) { return c.RateLimits, false }},
		{"rate limits false", nil, []string{"-rate-limits=false"},
			func(c config.Config) (any, any) { return c.RateLimits, false }},
		{"pprof yes", map[string]string{"NERUTALK_PPROF": "yes"}, nil,
			func(c config.Config) (any, any) { return c.Pprof, true }},
		{"log level", map[string]string{"NERUTALK_LOG_LEVEL": "debug"}, nil,
			func(c config.Config) (any, any) { return c.LogLevel, slog.LevelDebug }},
		{"log format", nil, []string{"-log-format", "json"},
			func(c config.Config) (any, any) { return c.LogFormat, "json" }},
		{"duration", map[string]string{"NERUTALK_ACCESS_TOKEN_TTL": "90s"}, nil,
			func(c config.Config) (any, any) { return c.AccessTokenTTL, 90 * time.Second }},
		{"cors list trimmed", map[string]string{"NERUTALK_CORS_ORIGINS": " https://a.example , ,https://b.example"}, nil,
			func(c config.Config) (any, any) {
				return c.CORSOrigins, []string{"https://a.example", "https://b.example"}
			}},
		{"flag may empty an env list", map[string]string{"NERUTALK_CORS_ORIGINS": "*"}, []string{"-cors-origins="},
			func(c config.Config) (any, any) { return len(c.CORSOrigins), 0 }},
		{"trusted proxies: prefixes, addresses (IPv4-mapped unmapped), spaces", map[string]string{"NERUTALK_TRUSTED_PROXIES": " 10.0.0.0/8, 192.168.1.10,fd00::/8, ::ffff:172.16.0.1 ,10.1.2.3/16"}, nil,
			func(c config.Config) (any, any) {
				return fmt.Sprint(c.TrustedProxies), "[10.0.0.0/8 192.168.1.10/32 fd00::/8 172.16.0.1/32 10.1.0.0/16]"
			}},
		{"secret of 32", map[string]string{"NERUTALK_JWT_SECRET": strings.Repeat("s", 32)}, nil,
			func(c config.Config) (any, any) { return c.JWTSecret, strings.Repeat("s", 32) }},
		{"argon2 uint", nil, []string{"-argon2-memory-kib", "65536"},
			func(c config.Config) (any, any) { return c.Argon2MemoryKiB, uint(65536) }},
		{"int", map[string]string{"NERUTALK_MAX_GROUP_MEMBERS": "2"}, nil,
			func(c config.Config) (any, any) { return c.MaxGroupMembers, 2 }},
		{"int64", map[string]string{"NERUTALK_MAX_BODY_BYTES": "2048"}, nil,
			func(c config.Config) (any, any) { return c.MaxBodyBytes, int64(2048) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			c, err := config.Load(tt.args, env(tt.env), &out)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if out.Len() > 0 {
				t.Errorf("Load wrote %q, want nothing", out.String())
			}
			got, want := tt.check(c)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestCallSettings: the calls' settings as internal/call reads them.
func TestCallSettings(t *testing.T) {
	t.Parallel()
	c, err := config.Load(nil, env(map[string]string{
		"NERUTALK_CALLS_PROVIDER": "agora", "NERUTALK_AGORA_APP_ID": "970CA35de60c44645bbae8a215061b33",
		"NERUTALK_AGORA_APP_CERTIFICATE": "5CFd2fd1755d40ecb72977518be15d3b",
		"NERUTALK_STUN_URLS":             "stun:a.example:3478, stuns:b.example", "NERUTALK_TURN_URLS": "turn:t.example:3478?transport=udp",
		"NERUTALK_TURN_SECRET": "s", "NERUTALK_CALL_RING_TIMEOUT": "30s", "NERUTALK_CALL_MAX_PARTICIPANTS": "8",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.CallsProvider != "agora" || c.AgoraAppID == "" || len(c.STUNURLs) != 2 || c.STUNURLs[1] != "stuns:b.example" ||
		len(c.TURNURLs) != 1 || c.TURNSecret != "s" || c.CallRingTimeout.String() != "30s" || c.CallMaxParticipants != 8 {
		t.Errorf("loaded %+v", c)
	}
	d := config.Default()
	if d.CallsProvider != "p2p" || d.CallMaxParticipants != 16 || d.CallRingTimeout.String() != "45s" {
		t.Errorf("defaults: provider %q, max %d, ring %v", d.CallsProvider, d.CallMaxParticipants, d.CallRingTimeout)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string // substrings of the error
		hide string   // must not appear in the error
	}{
		{"addr without port", map[string]string{"NERUTALK_ADDR": "localhost"}, nil,
			[]string{"NERUTALK_ADDR", "host:port"}, ""},
		{"trusted proxy that is a host name", map[string]string{"NERUTALK_TRUSTED_PROXIES": "10.0.0.0/8,lb.internal"}, nil,
			[]string{"NERUTALK_TRUSTED_PROXIES", `"lb.internal" is not an address or a CIDR prefix`}, ""},
		{"trusted proxy prefix too long", map[string]string{"NERUTALK_TRUSTED_PROXIES": "10.0.0.0/33"}, nil,
			[]string{"NERUTALK_TRUSTED_PROXIES", `"10.0.0.0/33"`}, ""},
		{"bad flag names the flag", nil, []string{"-addr", "nope"},
			[]string{"-addr=", "host:port"}, ""},
		{"empty data dir by flag", nil, []string{"-data-dir="},
			[]string{"-data-dir", "must not be empty"}, ""},
		{"database scheme", map[string]string{"NERUTALK_DATABASE_URL": "mysql://root:hunter2@db/nt"}, nil,
			[]string{"NERUTALK_DATABASE_URL", `"mysql" not supported`}, "hunter2"},
		{"database not a url", map[string]string{"NERUTALK_DATABASE_URL": "postgres://[::1"}, nil,
			[]string{"NERUTALK_DATABASE_URL", "not a URL"}, ""},
		{"sqlite path is not a url", map[string]string{"NERUTALK_DATABASE_URL": "/var/lib/nt.db"}, nil,
			[]string{"NERUTALK_DATABASE_URL", "want postgres://"}, ""},
		{"redis scheme", map[string]string{"NERUTALK_REDIS_URL": "http://:pw@cache:6379"}, nil,
			[]string{"NERUTALK_REDIS_URL", "redis://"}, ":pw@"},
		{"rate limits", map[string]string{"NERUTALK_RATE_LIMITS": "sometimes"}, nil,
			[]string{"NERUTALK_RATE_LIMITS", "on or off"}, ""},
		{"log level lists the levels", map[string]string{"NERUTALK_LOG_LEVEL": "loud"}, nil,
			[]string{"NERUTALK_LOG_LEVEL", "want debug, info, warn or error"}, ""},
		{"log level by flag", nil, []string{"-log-level", "verbose"},
			[]string{"-log-level=", "want debug, info, warn or error"}, "NERUTALK_LOG_LEVEL"},
		{"log format", map[string]string{"NERUTALK_LOG_FORMAT": "xml"}, nil,
			[]string{"NERUTALK_LOG_FORMAT", "text or json"}, ""},
		{"short secret is not echoed", map[string]string{"NERUTALK_JWT_SECRET": "tooshort-secret"}, nil,
			[]string{"NERUTALK_JWT_SECRET", "at least 32"}, "tooshort-secret"},
		{"duration", map[string]string{"NERUTALK_ACCESS_TOKEN_TTL": "15"}, nil,
			[]string{"NERUTALK_ACCESS_TOKEN_TTL", "duration"}, ""},
		{"negative duration", map[string]string{"NERUTALK_SHUTDOWN_TIMEOUT": "-1s"}, nil,
			[]string{"NERUTALK_SHUTDOWN_TIMEOUT", "positive"}, ""},
		{"not a number", map[string]string{"NERUTALK_MAX_BODY_BYTES": "1MB"}, nil,
			[]string{"NERUTALK_MAX_BODY_BYTES", "whole number"}, ""},
		{"below minimum", map[string]string{"NERUTALK_MAX_GROUP_MEMBERS": "1"}, nil,
			[]string{"NERUTALK_MAX_GROUP_MEMBERS", "at least 2"}, ""},
		{"overflow", map[string]string{"NERUTALK_WS_SEND_QUEUE": "99999999999999999999"}, nil,
			[]string{"NERUTALK_WS_SEND_QUEUE", "whole number"}, ""},
		{"sqlite cache above maximum", map[string]string{"NERUTALK_SQLITE_WRITE_CACHE_MIB": "65537"}, nil,
			[]string{"NERUTALK_SQLITE_WRITE_CACHE_MIB", "at most 65536"}, ""},
		{"sqlite cache zero", map[string]string{"NERUTALK_SQLITE_WRITE_CACHE_MIB": "0"}, nil,
			[]string{"NERUTALK_SQLITE_WRITE_CACHE_MIB", "at least 1"}, ""},
		{"newline in value stays on one line", map[string]string{"NERUTALK_LOG_FORMAT": "json\nrm -rf"}, nil,
			[]string{"NERUTALK_LOG_FORMAT", `\n`}, ""},
		{"unknown flag", nil, []string{"-no-such-thing"},
			[]string{"no-such-thing", "-help"}, ""},
		{"flag without value", nil, []string{"-addr"},
			[]string{"addr"}, ""},
		{"stray argument", nil, []string{"extra"},
			[]string{`unexpected argument "extra"`}, ""},
		{"calls provider", map[string]string{"NERUTALK_CALLS_PROVIDER": "skype"}, nil,
			[]string{"NERUTALK_CALLS_PROVIDER", "p2p, agora or livekit"}, ""},
		{"agora certificate is not echoed", map[string]string{"NERUTALK_AGORA_APP_CERTIFICATE": "not-hex-but-secret"}, nil,
			[]string{"NERUTALK_AGORA_APP_CERTIFICATE", "32 hex digits"}, "not-hex-but-secret"},
		{"stun scheme", map[string]string{"NERUTALK_STUN_URLS": "stun:a.example, http://b.example"}, nil,
			[]string{"NERUTALK_STUN_URLS", "stun: or stuns:"}, ""},
		{"turn without secret", map[string]string{"NERUTALK_TURN_URLS": "turn:t.example:3478"}, nil,
			[]string{"NERUTALK_TURN_SECRET", "NERUTALK_TURN_URLS needs it"}, ""},
		{"livekit url", map[string]string{"NERUTALK_LIVEKIT_URL": "ftp://lk"}, nil,
			[]string{"NERUTALK_LIVEKIT_URL", "ws(s)://"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			_, err := config.Load(tt.args, env(tt.env), &out)
			if err == nil {
				t.Fatal("Load: got no error")
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if tt.hide != "" && strings.Contains(msg, tt.hide) {
				t.Errorf("error %q reveals %q", msg, tt.hide)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is more than one line", msg)
			}
			if errors.Is(err, config.ErrHelp) {
				t.Errorf("error %v is ErrHelp", err)
			}
			if out.Len() > 0 {
				t.Errorf("Load printed %q; errors must only be returned", out.String())
			}
		})
	}
}

// Name tells how a setting was given, so that errors found after Load name what the user typed.
func TestName(t *testing.T) {
	t.Parallel()
	getenv := env(map[string]string{"NERUTALK_ADDR": "127.0.0.1:1", "NERUTALK_DATA_DIR": "/srv/nerutalk"})
	c, err := config.Load([]string{"-addr", "127.0.0.1:2", "-log-format=json"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for env, want := range map[string]string{
		"NERUTALK_ADDR":       "-addr",              // flag over the environment
		"NERUTALK_LOG_FORMAT": "-log-format",        // flag only
		"NERUTALK_DATA_DIR":   "NERUTALK_DATA_DIR",  // environment only
		"NERUTALK_REDIS_URL":  "NERUTALK_REDIS_URL", // default
	} {
		if got := c.Name(env); got != want {
			t.Errorf("Name(%s) = %q, want %q", env, got, want)
		}
	}
	if got := (config.Config{}).Name("NERUTALK_ADDR"); got != "NERUTALK_ADDR" {
		t.Errorf("zero Config: Name = %q, want the variable", got)
	}
}

func TestLoadHelpListsEverySetting(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "-help", "--help"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			_, err := config.Load([]string{arg}, env(nil), &out)
			if !errors.Is(err, config.ErrHelp) {
				t.Fatalf("Load(%s): got %v, want ErrHelp", arg, err)
			}
			help := out.String()
			for _, cmd := range []string{"nerutalk [serve]", "nerutalk migrate", "nerutalk admin grant|revoke <username>", "nerutalk version"} {
				if !strings.Contains(help, cmd) {
					t.Errorf("help's usage lacks %q", cmd)
				}
			}
			for _, s := range config.Settings() {
				for _, want := range []string{"-" + s.Flag + " ", s.Env, `default "` + s.Default + `"`, s.Usage} {
					if !strings.Contains(help, want) {
						t.Errorf("help does not mention %q", want)
					}
				}
			}
		})
	}
}

// docs/CONFIG.md carries exactly the generated table, between markers, so it never drifts.
func TestConfigDoc(t *testing.T) {
	const path = "../../docs/CONFIG.md"
	const begin, end = "<!-- BEGIN config.Reference() -->\n", "<!-- END config.Reference() -->"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	doc := string(raw)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s: the markers %q and %q are missing", path, begin, end)
	}
	got := doc[i+len(begin) : j]
	want := config.Reference()
	if *update {
		doc = doc[:i+len(begin)] + want + doc[j:]
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got != want {
		t.Errorf("%s is out of date; run go test ./internal/config -run TestConfigDoc -update\n(-want +got):\n%s",
			path, cmp.Diff(want, got))
	}
}

// The README shows the main settings as rows of the same table; each must match the reference.
func TestReadmeSettingsMatchReference(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("read README.md: %v", err)
	}
	ref := config.Reference()
	rows := 0
	for line := range strings.Lines(string(raw)) {
		if strings.HasPrefix(line, "| `NERUTALK_") {
			rows++
			if !strings.Contains(ref, line) {
				t.Errorf("README.md row does not match config.Reference():\n%s", line)
			}
		}
	}
	if rows == 0 {
		t.Error("README.md shows no settings")
	}
}

func TestReference(t *testing.T) {
	t.Parallel()
	ref := config.Reference()
	lines := strings.Split(strings.TrimSuffix(ref, "\n"), "\n")
	if got, want := len(lines), len(config.Settings())+2; got != want {
		t.Fatalf("Reference has %d lines, want %d (header, rule, one per setting)", got, want)
	}
	for i := 3; i < len(lines); i++ {
		if lines[i-1] > lines[i] {
			t.Errorf("Reference is not sorted: %q before %q", lines[i-1], lines[i])
		}
	}
	if !strings.Contains(ref, "| `NERUTALK_ADDR` | `-addr` | `127.0.0.1:8080` | listen address (host:port) |\n") {
		t.Errorf("Reference lacks the NERUTALK_ADDR row:\n%s", ref)
	}
	if !strings.Contains(ref, "| `NERUTALK_DATABASE_URL` | `-database-url` | *empty* |") {
		t.Errorf("Reference shows an empty default wrongly:\n%s", ref)
	}
}

// FuzzLoad: whatever the environment and flags say, Load returns a configuration or one line of
// error, and never panics.
func FuzzLoad(f *testing.F) {
	f.Add("NERUTALK_ADDR", ":0", "-max-body-bytes=4096")
	f.Add("NERUTALK_DATABASE_URL", "postgres://u:p@h:5432/db?sslmode=disable", "-h")
	f.Add("NERUTALK_CORS_ORIGINS", "*,https://x", "--cors-origins")
	f.Add("NERUTALK_WS_PING_INTERVAL", "9223372036854775807ns", "-log-level=DEBUG+2")
	f.Fuzz(func(t *testing.T, name, value, arg string) {
		_, err := config.Load([]string{arg}, env(map[string]string{name: value}), io.Discard)
		if err != nil && !errors.Is(err, config.ErrHelp) && strings.Contains(err.Error(), "\n") {
			t.Errorf("error is not one line: %q", err)
		}
	})
}
