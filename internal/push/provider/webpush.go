package provider

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// webPushRecordSize is the rs of the single aes128gcm record; push services accept at most
	// 4096 bytes of body, which a one-record message of rs 4096 never exceeds.
	webPushRecordSize = 4096
	// webPushHeaderLen is salt(16) + rs(4) + idlen(1) + keyid (the 65-byte public key).
	webPushHeaderLen = 16 + 4 + 1 + 65
	// WebPushMaxPlaintext is the largest payload one push carries: 4096 bytes of body minus the
	// header, the 16-byte tag and the padding delimiter.
	WebPushMaxPlaintext = webPushRecordSize - webPushHeaderLen - 16 - 1
	// webPushDefaultTTL is used when a Message has no TTL (the header is mandatory): 4 weeks.
	webPushDefaultTTL = 28 * 24 * time.Hour
	// vapidLifetime is the exp of a VAPID JWT (RFC 8292 allows at most 24 h); one is reused per
	// push service until an hour before it expires.
	vapidLifetime = 12 * time.Hour
)

// WebPushConfig configures the Web Push sender.
type WebPushConfig struct {
	// VAPIDPublicKey and VAPIDPrivateKey are the application server's P-256 key pair, base64url
	// (the uncompressed point and the 32-byte scalar), as GenerateVAPIDKeys returns them.
	VAPIDPublicKey, VAPIDPrivateKey string
	// Subject is the VAPID contact, a mailto: or https: URL (RFC 8292 section 2.1).
	Subject string
	// HTTPClient nil = a default client whose dialer refuses loopback, private and link-local
	// addresses: subscription endpoints come from browsers, so a user could otherwise make the
	// server POST into its own network. Tests pass their own client.
	HTTPClient *http.Client
	Now        func() time.Time // nil = time.Now
}

// WebPush sends RFC 8291-encrypted messages with RFC 8292 (VAPID) authentication to the push
// service named by each subscription's endpoint. It is safe for concurrent use.
type WebPush struct {
	key     *ecdsa.PrivateKey
	pubB64  string
	subject string
	client  *http.Client
	now     func() time.Time

	mu   sync.Mutex
	jwts map[string]vapidJWT // by audience (scheme://host of the push service)
}

type vapidJWT struct {
	token string
	exp   time.Time
}

// GenerateVAPIDKeys makes a new VAPID key pair, base64url without padding: public is the
// uncompressed P-256 point browsers take as applicationServerKey, private the 32-byte scalar.
func GenerateVAPIDKeys() (public, private string, err error) {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("push: webpush: generate VAPID keys: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()), base64.RawURLEncoding.EncodeToString(k.Bytes()), nil
}

// decodeB64 reads base64url with or without padding, and tolerates the standard alphabet
// (browsers and libraries disagree).
func decodeB64(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	s = strings.NewReplacer("+", "-", "/", "_").Replace(s)
	return base64.RawURLEncoding.DecodeString(s)
}

// ParseVAPIDKeys checks a key pair: the private key must be a P-256 scalar whose public point is
// the given public key.
func ParseVAPIDKeys(public, private string) (*ecdsa.PrivateKey, error) {
	priv, err := decodeB64(private)
	if err != nil || len(priv) != 32 {
		return nil, errors.New("push: webpush: VAPID private key is not 32 bytes of base64url")
	}
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), priv)
	if err != nil {
		return nil, fmt.Errorf("push: webpush: VAPID private key: %w", err)
	}
	pub, err := decodeB64(public)
	if err != nil || len(pub) != 65 {
		return nil, errors.New("push: webpush: VAPID public key is not 65 bytes of base64url")
	}
	ek, err := key.ECDH()
	if err != nil {
		return nil, fmt.Errorf("push: webpush: VAPID private key: %w", err)
	}
	if !bytes.Equal(ek.PublicKey().Bytes(), pub) {
		return nil, errors.New("push: webpush: VAPID public key does not match the private key")
	}
	return key, nil
}

// NewWebPush checks the keys and the subject.
func NewWebPush(cfg WebPushConfig) (*WebPush, error) {
	key, err := ParseVAPIDKeys(cfg.VAPIDPublicKey, cfg.VAPIDPrivateKey)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(cfg.Subject, "mailto:") && !strings.HasPrefix(cfg.Subject, "https://") {
		return nil, fmt.Errorf("push: webpush: VAPID subject %q is not a mailto: or https: URL", cfg.Subject)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = publicOnlyHTTPClient()
	}
	w := &WebPush{key: key, subject: cfg.Subject, client: client, now: cfg.Now,
		jwts: map[string]vapidJWT{}}
	pub, _ := decodeB64(cfg.VAPIDPublicKey)
	w.pubB64 = base64.RawURLEncoding.EncodeToString(pub)
	if w.now == nil {
		w.now = time.Now
	}
	return w, nil
}

// publicOnlyHTTPClient refuses to connect to addresses that are not public unicast.
func publicOnlyHTTPClient() *http.Client {
	c := defaultHTTPClient()
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip := net.ParseIP(host)
			if ip == nil || !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() {
				return fmt.Errorf("push: webpush: refusing to connect to non-public address %s", host)
			}
			return nil
		}}
	c.Transport.(*http.Transport).DialContext = d.DialContext
	c.Transport.(*http.Transport).Proxy = nil
	return c
}

// webPushPayload is what the service worker receives (after decryption) in the push event.
type webPushPayload struct {
	Title    string            `json:"title,omitempty"`
	Body     string            `json:"body,omitempty"`
	Data     map[string]string `json:"data,omitempty"`
	Tag      string            `json:"tag,omitempty"` // the collapse key: a later one replaces the shown notification
	Badge    *int              `json:"badge,omitempty"`
	PushType string            `json:"push_type,omitempty"`
}

// webPushPlaintext is the JSON payload, the body shortened (at a rune boundary, with "…") when
// the whole would not fit in one push.
func webPushPlaintext(m Message) ([]byte, error) {
	p := webPushPayload{Title: m.Title, Body: m.Body, Data: m.Data, Tag: m.CollapseKey, Badge: m.Badge, PushType: m.PushType}
	for range 4 {
		b, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		over := len(b) - WebPushMaxPlaintext
		if over <= 0 {
			return b, nil
		}
		cut := len(p.Body) - over - len("…") - 8 // JSON escaping may take a few more bytes
		if cut <= 0 {
			break
		}
		for cut > 0 && !utf8.RuneStart(p.Body[cut]) {
			cut--
		}
		p.Body = p.Body[:cut] + "…"
	}
	return nil, fmt.Errorf("push: webpush: payload larger than %d bytes", WebPushMaxPlaintext)
}

// encryptWebPush encrypts plaintext for a subscription (RFC 8291: one aes128gcm record of RFC
// 8188) with a fresh ephemeral key and salt.
func encryptWebPush(plaintext, uaPublic, authSecret []byte) ([]byte, error) {
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	return encryptWebPushWith(as, salt, plaintext, uaPublic, authSecret)
}

// encryptWebPushWith is encryptWebPush with the application server's ephemeral key and the salt
// given (the RFC's test vector fixes both).
func encryptWebPushWith(as *ecdh.PrivateKey, salt, plaintext, uaPublic, authSecret []byte) ([]byte, error) {
	ua, err := ecdh.P256().NewPublicKey(uaPublic)
	if err != nil {
		return nil, fmt.Errorf("subscription key p256dh: %w", err)
	}
	if len(authSecret) != 16 {
		return nil, errors.New("subscription auth secret is not 16 bytes")
	}
	if len(salt) != 16 {
		return nil, errors.New("salt is not 16 bytes")
	}
	shared, err := as.ECDH(ua)
	if err != nil {
		return nil, err
	}
	asPublic := as.PublicKey().Bytes()
	// IKM = HKDF(salt = auth_secret, ikm = ecdh_secret, info = "WebPush: info\0" || ua || as, 32)
	keyInfo := "WebPush: info\x00" + string(uaPublic) + string(asPublic)
	ikm, err := hkdf.Key(sha256.New, shared, authSecret, keyInfo, 32)
	if err != nil {
		return nil, err
	}
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	out := make([]byte, webPushHeaderLen, webPushHeaderLen+len(plaintext)+1+gcm.Overhead())
	copy(out, salt)
	binary.BigEndian.PutUint32(out[16:], webPushRecordSize)
	out[20] = byte(len(asPublic))
	copy(out[21:], asPublic)
	record := append(append(make([]byte, 0, len(plaintext)+1), plaintext...), 0x02) // last record, no padding
	return gcm.Seal(out, nonce, record, nil), nil
}

// vapid returns the Authorization header value for a push service origin.
func (w *WebPush) vapid(audience string) (string, error) {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if j, ok := w.jwts[audience]; ok && now.Before(j.exp.Add(-time.Hour)) {
		return "vapid t=" + j.token + ", k=" + w.pubB64, nil
	}
	exp := now.Add(vapidLifetime)
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"aud": audience, "exp": exp.Unix(), "sub": w.subject})
	s, err := tok.SignedString(w.key)
	if err != nil {
		return "", fmt.Errorf("push: webpush: sign VAPID token: %w", err)
	}
	if len(w.jwts) > 1000 { // a bound: audiences are a handful of push services in practice
		clear(w.jwts)
	}
	w.jwts[audience] = vapidJWT{token: s, exp: exp}
	return "vapid t=" + s + ", k=" + w.pubB64, nil
}

// Send encrypts m for the subscription (t.Token is its endpoint, t.P256dh and t.Auth its keys)
// and posts it to the push service.
func (w *WebPush) Send(ctx context.Context, t Target, m Message) error {
	u, err := url.Parse(t.Token)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("push: webpush: %w: endpoint is not an https URL", ErrInvalidToken)
	}
	uaPublic, err1 := decodeB64(t.P256dh)
	auth, err2 := decodeB64(t.Auth)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("push: webpush: %w: subscription keys are not base64url", ErrInvalidToken)
	}
	plaintext, err := webPushPlaintext(m)
	if err != nil {
		return err
	}
	body, err := encryptWebPush(plaintext, uaPublic, auth)
	if err != nil {
		return fmt.Errorf("push: webpush: %w: %w", ErrInvalidToken, err)
	}
	authz, err := w.vapid(u.Scheme + "://" + u.Host)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.Token, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("push: webpush: %w", err)
	}
	ttl := m.TTL
	if ttl <= 0 {
		ttl = webPushDefaultTTL
	}
	req.Header.Set("TTL", strconv.FormatInt(int64(ttl/time.Second), 10))
	urgency := "normal"
	switch {
	case m.PushType == "background":
		urgency = "low"
	case m.Priority == PriorityHigh:
		urgency = "high"
	}
	req.Header.Set("Urgency", urgency)
	if id := collapseID(m.CollapseKey, 32); id != "" {
		req.Header.Set("Topic", id)
	}
	req.Header.Set("Content-Encoding", "aes128gcm")
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", authz)
	res, err := w.client.Do(req)
	if err != nil {
		return &RetryableError{Err: fmt.Errorf("push: webpush: %w", err)}
	}
	if res.StatusCode/100 == 2 {
		drain(res)
		return nil
	}
	reason := strings.TrimSpace(string(readBody(res)))
	if len(reason) > 200 {
		reason = reason[:200]
	}
	cause := statusError("webpush", res.StatusCode, strings.ToValidUTF8(reason, ""))
	switch {
	case res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusGone:
		return fmt.Errorf("%w: %w", ErrInvalidToken, cause)
	case temporary(res.StatusCode):
		return retryableStatus(res, w.now(), cause)
	}
	return cause
}
