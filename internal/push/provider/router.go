package provider

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
)

// DefaultVAPIDSubject is the VAPID contact used when none is configured. Operators should set
// their own (mailto: or https:): push services use it to reach whoever sends too much.
const DefaultVAPIDSubject = "https://github.com/nerutalk/nerutalk"

// Options configures New with plain values (the server copies them from its configuration).
// A provider whose credentials are empty is not configured: its devices get the Log sender.
type Options struct {
	// FCM: the service-account key file (or its content, which wins) and the API base URL
	// (empty = https://fcm.googleapis.com).
	FCMCredentialsFile string
	FCMCredentialsJSON []byte
	FCMEndpoint        string

	// APNs: the .p8 key file (or its content, which wins), key id, team id, default topic (the
	// bundle id; a device's AppID wins) and endpoint (production, sandbox or a URL).
	APNsKeyFile  string
	APNsKeyPEM   []byte
	APNsKeyID    string
	APNsTeamID   string
	APNsTopic    string
	APNsEndpoint string

	// Web Push: the VAPID key pair (base64url, see GenerateVAPIDKeys) and contact subject
	// (empty = DefaultVAPIDSubject).
	VAPIDPublicKey  string
	VAPIDPrivateKey string
	VAPIDSubject    string

	// HTTPClient carries every provider's requests; nil = each provider's default (Web Push's
	// refuses private addresses).
	HTTPClient *http.Client
	Logger     *slog.Logger // nil = slog.Default()
}

// Router is the Sender the push package uses: it hands each message to the client of the
// target's provider, and to Log (with a warning, once per provider) when that provider is not
// configured. It is safe for concurrent use.
type Router struct {
	senders map[string]Sender // "fcm", "apns", "webpush"; nil = not configured
	log     Log
	logger  *slog.Logger
	warned  map[string]*sync.Once
}

// New builds the configured clients. It reads the key files but contacts no provider; an error
// names what is wrong (a missing file, a key that does not parse, an incomplete APNs setting).
func New(opts Options) (Sender, error) {
	return NewRouter(opts)
}

// NewRouter is New returning the concrete type, for callers that want Configured.
func NewRouter(opts Options) (*Router, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	r := &Router{senders: map[string]Sender{}, log: Log{Logger: logger}, logger: logger,
		warned: map[string]*sync.Once{"fcm": {}, "apns": {}, "webpush": {}}}

	creds := opts.FCMCredentialsJSON
	if creds == nil && opts.FCMCredentialsFile != "" {
		b, err := os.ReadFile(opts.FCMCredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("push: fcm: credentials file: %w", err)
		}
		creds = b
	}
	if creds != nil {
		c, err := NewFCM(FCMConfig{CredentialsJSON: creds, Endpoint: opts.FCMEndpoint, HTTPClient: opts.HTTPClient})
		if err != nil {
			return nil, err
		}
		r.senders["fcm"] = c
	}

	key := opts.APNsKeyPEM
	if key == nil && opts.APNsKeyFile != "" {
		b, err := os.ReadFile(opts.APNsKeyFile)
		if err != nil {
			return nil, fmt.Errorf("push: apns: key file: %w", err)
		}
		key = b
	}
	if key != nil {
		c, err := NewAPNs(APNsConfig{KeyPEM: key, KeyID: opts.APNsKeyID, TeamID: opts.APNsTeamID, Topic: opts.APNsTopic,
			Endpoint: opts.APNsEndpoint, HTTPClient: opts.HTTPClient})
		if err != nil {
			return nil, err
		}
		r.senders["apns"] = c
	}

	if opts.VAPIDPublicKey != "" || opts.VAPIDPrivateKey != "" {
		subject := opts.VAPIDSubject
		if subject == "" {
			subject = DefaultVAPIDSubject
		}
		c, err := NewWebPush(WebPushConfig{VAPIDPublicKey: opts.VAPIDPublicKey, VAPIDPrivateKey: opts.VAPIDPrivateKey,
			Subject: subject, HTTPClient: opts.HTTPClient})
		if err != nil {
			return nil, err
		}
		r.senders["webpush"] = c
	}

	for _, p := range []string{"fcm", "apns", "webpush"} {
		if r.senders[p] != nil {
			logger.Debug("push: provider configured", "provider", p)
		}
	}
	return r, nil
}

// Configured reports whether a real client serves the provider ("fcm", "apns" or "webpush").
func (r *Router) Configured(provider string) bool { return r.senders[provider] != nil }

// Send hands m to the target's provider.
func (r *Router) Send(ctx context.Context, t Target, m Message) error {
	once, known := r.warned[t.Provider]
	if !known {
		return fmt.Errorf("push: unknown provider %q", t.Provider)
	}
	if s := r.senders[t.Provider]; s != nil {
		return s.Send(ctx, t, m)
	}
	once.Do(func() {
		r.logger.WarnContext(ctx, "push: provider not configured; its notifications are only logged", "provider", t.Provider)
	})
	return r.log.Send(ctx, t, m)
}
