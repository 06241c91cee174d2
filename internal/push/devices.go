package push

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/usertext"
)

// Device is a registered push endpoint of the caller.
type Device struct {
	ID        string    `json:"id"`
	Platform  string    `json:"platform" enum:"android,ios,web"`
	Provider  string    `json:"provider" enum:"fcm,apns,webpush"`
	Token     string    `json:"token" doc:"The FCM or APNs token, or the Web Push endpoint"`
	HasVoIP   bool      `json:"has_voip_token" doc:"An APNs VoIP (PushKit) token is registered too"`
	AppID     string    `json:"app_id"`
	Locale    string    `json:"locale"`
	SessionID string    `json:"session_id" doc:"The session that registered it; signing it out removes the device"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// WebPushSubscription is a browser's PushSubscription (its toJSON form).
type WebPushSubscription struct {
	Endpoint string `json:"endpoint" maxLength:"2048" doc:"The push service URL (https)"`
	Keys     struct {
		P256dh string `json:"p256dh" maxLength:"200" doc:"base64url of the P-256 public key (65 bytes)"`
		Auth   string `json:"auth" maxLength:"100" doc:"base64url of the 16-byte auth secret"`
	} `json:"keys"`
}

// DeviceInput is the body of POST /devices.
type DeviceInput struct {
	Platform     string               `json:"platform" enum:"android,ios,web" example:"android"`
	Provider     string               `json:"provider,omitempty" enum:"fcm,apns,webpush" doc:"Default: fcm for android, apns for ios, webpush for web"`
	Token        string               `json:"token,omitempty" maxLength:"4096" example:"dGhpcyBpcyBhbiBGQ00gdG9rZW4" doc:"FCM registration token or APNs device token (hex); for webpush, the endpoint (or give subscription)"`
	Subscription *WebPushSubscription `json:"subscription,omitempty" doc:"Web Push: the browser's subscription"`
	VoIPToken    string               `json:"voip_token,omitempty" maxLength:"200" doc:"APNs PushKit token (hex), for incoming calls on iOS"`
	AppID        string               `json:"app_id,omitempty" maxLength:"255" doc:"APNs topic (bundle id) or the app's id"`
	Locale       string               `json:"locale,omitempty" maxLength:"35" doc:"BCP 47 language tag for the notification texts, e.g. de-AT"`
}

type deviceRow struct {
	Device
	UserID    string
	VoIPToken string
	P256dh    string
	Auth      string
}

// MaxDevices is how many devices one user may have registered at once: a phone, a tablet and a
// few browsers, with room to spare. Registering one more is a 409 too_many_devices; the client
// deletes one first (a dead or signed-out device leaves on its own).
const MaxDevices = 20

var defaultProvider = map[string]string{"android": "fcm", "ios": "apns", "web": "webpush"}

// allowed pairs of platform and provider.
var allowedProvider = map[string][]string{"android": {"fcm"}, "ios": {"apns", "fcm"}, "web": {"webpush", "fcm"}}

// normalize validates in and fills the provider default; it returns the row to store.
func (in DeviceInput) normalize() (deviceRow, error) {
	var r deviceRow
	r.Platform = in.Platform
	if _, ok := defaultProvider[in.Platform]; !ok {
		return r, apperr.Invalid("body.platform", "must be android, ios or web")
	}
	r.Provider = in.Provider
	if r.Provider == "" {
		r.Provider = defaultProvider[in.Platform]
	}
	ok := false
	for _, p := range allowedProvider[in.Platform] {
		ok = ok || p == r.Provider
	}
	if !ok {
		return r, apperr.Invalid("body.provider", fmt.Sprintf("provider %s does not serve platform %s", r.Provider, r.Platform))
	}
	r.Token = strings.TrimSpace(in.Token)
	switch r.Provider {
	case "webpush":
		if in.Subscription == nil {
			return r, apperr.Invalid("body.subscription", "required for webpush: the browser's subscription (endpoint and keys)")
		}
		if r.Token != "" && r.Token != in.Subscription.Endpoint {
			return r, apperr.Invalid("body.token", "must be empty or the subscription's endpoint")
		}
		r.Token = in.Subscription.Endpoint
		u, err := url.Parse(r.Token)
		if err != nil || u.Scheme != "https" || u.Host == "" || len(r.Token) > 2048 {
			return r, apperr.Invalid("body.subscription.endpoint", "must be an https URL")
		}
		if b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(in.Subscription.Keys.P256dh, "=")); err != nil || len(b) != 65 || b[0] != 4 {
			return r, apperr.Invalid("body.subscription.keys.p256dh", "must be the base64url of an uncompressed P-256 point (65 bytes)")
		}
		if b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(in.Subscription.Keys.Auth, "=")); err != nil || len(b) != 16 {
			return r, apperr.Invalid("body.subscription.keys.auth", "must be the base64url of 16 bytes")
		}
		r.P256dh, r.Auth = in.Subscription.Keys.P256dh, in.Subscription.Keys.Auth
	case "apns":
		if !isHex(r.Token) || len(r.Token) < 32 || len(r.Token) > 200 {
			return r, apperr.Invalid("body.token", "must be the APNs device token in hex")
		}
		r.Token = strings.ToLower(r.Token)
	default: // fcm
		if r.Token == "" || len(r.Token) > 4096 || strings.ContainsAny(r.Token, " ") || controlChar(r.Token, false) {
			return r, apperr.Invalid("body.token", "required: the FCM registration token")
		}
		if in.Subscription != nil {
			return r, apperr.Invalid("body.subscription", "only for the webpush provider")
		}
	}
	if in.VoIPToken != "" {
		if r.Provider != "apns" {
			return r, apperr.Invalid("body.voip_token", "only for the apns provider")
		}
		if !isHex(in.VoIPToken) || len(in.VoIPToken) < 32 {
			return r, apperr.Invalid("body.voip_token", "must be the PushKit token in hex")
		}
		r.VoIPToken = strings.ToLower(in.VoIPToken)
		r.HasVoIP = true
	}
	if len(in.AppID) > 255 || strings.ContainsAny(in.AppID, " ") || controlChar(in.AppID, false) {
		return r, apperr.Invalid("body.app_id", "at most 255 characters, no spaces")
	}
	r.AppID = in.AppID
	loc, ok := normalizeLocale(in.Locale)
	if !ok {
		return r, apperr.Invalid("body.locale", "must be a language tag such as en or de-AT")
	}
	r.Locale = loc
	return r, nil
}

// controlChar reports whether s breaks the project's text policy (usertext.Text: valid UTF-8,
// no control characters, NUL included, which PostgreSQL refuses in text); unless multiline,
// newlines and tabs count as control characters too.
func controlChar(s string, multiline bool) bool {
	return usertext.Text.Check(s) != nil || !multiline && strings.ContainsAny(s, "\n\t")
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// normalizeLocale accepts a BCP 47-like tag (letters, digits, '-' or '_', at most 35) and returns
// it with '-' separators and a lower-case language; "" is fine (the fallback locale).
func normalizeLocale(s string) (string, bool) {
	if len(s) > 35 {
		return "", false
	}
	s = strings.ReplaceAll(s, "_", "-")
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return "", false
		}
	}
	if s == "" {
		return "", true
	}
	lang, rest, _ := strings.Cut(s, "-")
	if lang == "" || len(lang) > 8 {
		return "", false
	}
	if rest != "" {
		return strings.ToLower(lang) + "-" + rest, true
	}
	return strings.ToLower(lang), true
}

const deviceCols = `id, user_id, session_id, platform, provider, token, voip_token, p256dh, auth, app_id, locale, created_at, updated_at`

func scanDevice(sc interface{ Scan(...any) error }) (deviceRow, error) {
	var r deviceRow
	var created, updated int64
	err := sc.Scan(&r.ID, &r.UserID, &r.SessionID, &r.Platform, &r.Provider, &r.Token, &r.VoIPToken, &r.P256dh, &r.Auth,
		&r.AppID, &r.Locale, &created, &updated)
	r.HasVoIP = r.VoIPToken != ""
	r.CreatedAt, r.UpdatedAt = store.Time(created), store.Time(updated)
	return r, err
}

// RegisterDevice stores the device for userID's session. The same token again (from any account)
// updates the one row, which then belongs to userID and this session; a session registering a new
// token for the same provider and app replaces its previous one. It reports whether the device
// is new.
func (s *Service) RegisterDevice(ctx context.Context, userID, sessionID string, in DeviceInput) (Device, bool, error) {
	r, err := in.normalize()
	if err != nil {
		return Device{}, false, err
	}
	r.UserID, r.SessionID = userID, sessionID
	now := store.Millis(s.o.Now())
	var created bool
	for try := 0; ; try++ {
		err = s.db.Tx(ctx, func(tx *sql.Tx) error {
			var err error
			r, created, err = upsertDevice(ctx, tx, r, now)
			return err
		})
		if err == nil || try == 2 || !store.IsUniqueViolation(err) {
			break
		}
		// A concurrent registration of the same token won the insert: update its row instead.
	}
	if err != nil {
		return Device{}, false, s.internal("register device", err)
	}
	return r.Device, created, nil
}

func upsertDevice(ctx context.Context, tx *sql.Tx, r deviceRow, now int64) (deviceRow, bool, error) {
	existing, err := scanDevice(tx.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM push_devices WHERE provider = $1 AND token = $2`, r.Provider, r.Token))
	found := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return r, false, err
	}
	if !found && r.SessionID != "" {
		existing, err = scanDevice(tx.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM push_devices
			WHERE session_id = $1 AND user_id = $2 AND provider = $3 AND app_id = $4 ORDER BY created_at LIMIT 1`,
			r.SessionID, r.UserID, r.Provider, r.AppID))
		found = err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return r, false, err
		}
	}
	if !found || existing.UserID != r.UserID { // a device more for this user
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM push_devices WHERE user_id = $1`, r.UserID).Scan(&n); err != nil {
			return r, false, err
		}
		if n >= MaxDevices {
			return r, false, apperr.New(apperr.KindConflict, "too_many_devices", fmt.Sprintf("a user has at most %d devices", MaxDevices))
		}
	}
	if found {
		r.ID, r.CreatedAt = existing.ID, existing.CreatedAt
		r.UpdatedAt = store.Time(now)
		_, err := tx.ExecContext(ctx, `UPDATE push_devices SET user_id = $1, session_id = $2, platform = $3, token = $4,
			voip_token = $5, p256dh = $6, auth = $7, app_id = $8, locale = $9, updated_at = $10 WHERE id = $11`,
			r.UserID, r.SessionID, r.Platform, r.Token, r.VoIPToken, r.P256dh, r.Auth, r.AppID, r.Locale, now, r.ID)
		return r, false, err
	}
	r.ID = newID()
	r.CreatedAt, r.UpdatedAt = store.Time(now), store.Time(now)
	_, err = tx.ExecContext(ctx, `INSERT INTO push_devices (`+deviceCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)`,
		r.ID, r.UserID, r.SessionID, r.Platform, r.Provider, r.Token, r.VoIPToken, r.P256dh, r.Auth, r.AppID, r.Locale, now)
	return r, true, err
}

// Devices lists userID's devices, newest first.
func (s *Service) Devices(ctx context.Context, userID string) ([]Device, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT `+deviceCols+` FROM push_devices WHERE user_id = $1 ORDER BY created_at DESC, id DESC`, userID)
	if err != nil {
		return nil, s.internal("devices", err)
	}
	defer rows.Close()
	out := []Device{}
	for rows.Next() {
		r, err := scanDevice(rows)
		if err != nil {
			return nil, s.internal("devices", err)
		}
		out = append(out, r.Device)
	}
	if err := rows.Err(); err != nil {
		return nil, s.internal("devices", err)
	}
	return out, nil
}

// DeleteDevice removes one of userID's devices; someone else's is not found.
func (s *Service) DeleteDevice(ctx context.Context, userID, id string) error {
	res, err := s.db.W.ExecContext(ctx, `DELETE FROM push_devices WHERE id = $1 AND user_id = $2`, id, userID)
	if err != nil {
		return s.internal("delete device", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.NotFound("device")
	}
	return nil
}

// SessionsRevoked removes the devices registered by these sessions of userID (sign-out, a
// revoked session, refresh-token reuse, a password change). Auth calls it through its
// OnSessionsRevoked option.
func (s *Service) SessionsRevoked(ctx context.Context, userID string, sessionIDs []string) {
	if len(sessionIDs) == 0 {
		return
	}
	args := []any{userID}
	ph := make([]string, len(sessionIDs))
	for i, id := range sessionIDs {
		args = append(args, id)
		ph[i] = fmt.Sprintf("$%d", i+2)
	}
	if _, err := s.db.W.ExecContext(ctx, `DELETE FROM push_devices WHERE user_id = $1 AND session_id IN (`+strings.Join(ph, ", ")+`)`, args...); err != nil {
		s.log.ErrorContext(ctx, "push: remove the devices of revoked sessions", "user_id", userID, "err", err)
	}
}
