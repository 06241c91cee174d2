package provider

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// APNs endpoints (HTTP/2 only).
const (
	APNsProduction = "https://api.push.apple.com"
	APNsSandbox    = "https://api.sandbox.push.apple.com"
)

// apnsTokenRefresh is how long one provider token is reused. Apple refuses tokens older than an
// hour (ExpiredProviderToken) and new ones more often than every 20 minutes
// (TooManyProviderTokenUpdates), so the token is renewed after 50 minutes.
const apnsTokenRefresh = 50 * time.Minute

// APNsConfig configures the APNs sender (token-based authentication).
type APNsConfig struct {
	KeyPEM []byte // the .p8 signing key from the Apple developer account (PKCS#8, P-256)
	KeyID  string // its 10-character key id (the JWT's kid)
	TeamID string // the 10-character team id (the JWT's iss)
	// Topic is the app's bundle id, used when a Target has no AppID.
	Topic string
	// Endpoint is APNsProduction, APNsSandbox or another base URL (a fake in tests); empty =
	// production.
	Endpoint   string
	HTTPClient *http.Client     // nil = a default client (HTTP/2 over TLS)
	Now        func() time.Time // nil = time.Now; the provider token's age is measured with it
}

// APNs sends to Apple Push Notification service over HTTP/2 with a provider token (ES256 JWT).
// It is safe for concurrent use: the token is shared by all sends and renewed under a mutex.
type APNs struct {
	endpoint, topic, keyID, teamID string
	key                            *ecdsa.PrivateKey
	client                         *http.Client
	now                            func() time.Time

	mu     sync.Mutex
	token  string
	issued time.Time
}

// NewAPNs checks the key and prepares the client. It does not contact Apple.
func NewAPNs(cfg APNsConfig) (*APNs, error) {
	key, err := ParseAPNsKey(cfg.KeyPEM)
	if err != nil {
		return nil, err
	}
	if cfg.KeyID == "" || cfg.TeamID == "" {
		return nil, errors.New("push: apns: key id and team id are required")
	}
	endpoint := strings.TrimRight(cfg.Endpoint, "/")
	switch endpoint {
	case "", "production":
		endpoint = APNsProduction
	case "sandbox", "development":
		endpoint = APNsSandbox
	}
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("push: apns: endpoint %q is not production, sandbox or a URL", cfg.Endpoint)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = defaultHTTPClient()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &APNs{endpoint: endpoint, topic: cfg.Topic, keyID: cfg.KeyID, teamID: cfg.TeamID,
		key: key, client: client, now: now}, nil
}

// ParseAPNsKey reads a .p8 file: a PEM "PRIVATE KEY" block holding a PKCS#8 P-256 key.
func ParseAPNsKey(p8 []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(p8)
	if block == nil {
		return nil, errors.New("push: apns: the key is not PEM (want the .p8 file)")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("push: apns: the key is not PKCS#8: %w", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("push: apns: the key is not an ECDSA P-256 key")
	}
	return ec, nil
}

// providerToken returns the current provider token, signing a new one when it is older than
// apnsTokenRefresh or when the one that failed (stale) is still the current one.
func (a *APNs) providerToken(stale string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	age := now.Sub(a.issued)
	if a.token != "" && a.token != stale && age >= 0 && age < apnsTokenRefresh {
		return a.token, nil
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": a.teamID, "iat": now.Unix()})
	tok.Header["kid"] = a.keyID
	s, err := tok.SignedString(a.key)
	if err != nil {
		return "", fmt.Errorf("push: apns: sign provider token: %w", err)
	}
	a.token, a.issued = s, now
	return s, nil
}

// apnsPayload is the JSON body of an APNs notification: "aps" plus the app's own keys.
type apnsPayload map[string]any

type apsAlert struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

// apnsPayloadFor builds the body: an alert (title, body, badge, sound) or, for background, only
// content-available. data, when given, is added at the top level (never over "aps").
func apnsPayloadFor(m Message, data map[string]string, background bool) apnsPayload {
	aps := map[string]any{}
	if background {
		aps["content-available"] = 1
	} else {
		aps["alert"] = apsAlert{Title: m.Title, Body: m.Body}
		if m.Sound != "" {
			aps["sound"] = m.Sound
		}
	}
	if m.Badge != nil {
		aps["badge"] = *m.Badge
	}
	if m.CollapseKey != "" && !background {
		aps["thread-id"] = m.CollapseKey // groups the notifications of one chat
	}
	p := apnsPayload{"aps": aps}
	for k, v := range data {
		if k != "aps" {
			p[k] = v
		}
	}
	return p
}

// apnsHeaders gives the apns-* request headers of a notification of the given push type.
func apnsHeaders(m Message, pushType string, high bool, now time.Time) map[string]string {
	h := map[string]string{"apns-push-type": pushType, "apns-priority": "5"}
	if high && pushType != "background" {
		h["apns-priority"] = "10"
	}
	if m.TTL > 0 {
		h["apns-expiration"] = strconv.FormatInt(now.Add(m.TTL).Unix(), 10)
	}
	if id := collapseID(m.CollapseKey, 64); id != "" {
		h["apns-collapse-id"] = id
	}
	return h
}

// isHex reports whether s is a non-empty string of hexadecimal digits (an APNs device token).
func isHex(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// Send delivers m to the device. PushType "voip" goes to t.VoIPToken on topic "<bundle>.voip";
// without a VoIP token it falls back to a high-priority alert on the device token.
func (a *APNs) Send(ctx context.Context, t Target, m Message) error {
	pushType := m.PushType
	if pushType == "" {
		pushType = "alert"
	}
	token, topic := t.Token, t.AppID
	if topic == "" {
		topic = a.topic
	}
	high := m.Priority == PriorityHigh
	switch pushType {
	case "alert", "background":
	case "voip":
		if t.VoIPToken != "" {
			token, topic, high = t.VoIPToken, topic+".voip", true
		} else {
			pushType, high = "alert", true
		}
	default:
		return fmt.Errorf("push: apns: unknown push type %q", pushType)
	}
	if topic == "" || strings.HasPrefix(topic, ".") {
		return errors.New("push: apns: no topic (set the APNs topic or the device's app id)")
	}
	if !isHex(token) {
		return fmt.Errorf("push: apns: %w: not a hexadecimal device token", ErrInvalidToken)
	}
	body, err := json.Marshal(apnsPayloadFor(m, m.Data, pushType == "background"))
	if err != nil {
		return fmt.Errorf("push: apns: encode: %w", err)
	}
	headers := apnsHeaders(m, pushType, high, a.now())
	headers["apns-topic"] = topic

	stale := ""
	for attempt := 0; ; attempt++ {
		bearer, err := a.providerToken(stale)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint+"/3/device/"+token, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("push: apns: %w", err)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		req.Header.Set("Authorization", "bearer "+bearer)
		req.Header.Set("Content-Type", "application/json")
		res, err := a.client.Do(req)
		if err != nil {
			return &RetryableError{Err: fmt.Errorf("push: apns: %w", err)}
		}
		if res.StatusCode == http.StatusOK {
			drain(res)
			return nil
		}
		reason := ParseAPNsReason(readBody(res))
		if res.StatusCode == http.StatusForbidden && reason == "ExpiredProviderToken" && attempt == 0 {
			stale = bearer // sign a new token and try once more
			continue
		}
		return apnsError(res, reason, a.now())
	}
}

// ParseAPNsReason reads the reason of an APNs error body ({"reason": "BadDeviceToken"}); "" when
// the body is not that.
func ParseAPNsReason(body []byte) string {
	var e struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Reason
}

// apnsError maps a failed send to the Sender contract.
func apnsError(res *http.Response, reason string, now time.Time) error {
	cause := statusError("apns", res.StatusCode, reason)
	switch {
	case res.StatusCode == http.StatusGone, // Unregistered, ExpiredToken
		res.StatusCode == http.StatusBadRequest && reason == "BadDeviceToken":
		return fmt.Errorf("%w: %w", ErrInvalidToken, cause)
	case temporary(res.StatusCode):
		return retryableStatus(res, now, cause)
	}
	return cause
}
