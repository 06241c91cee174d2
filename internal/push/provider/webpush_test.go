package provider_test

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
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nerutalk/nerutalk/internal/clocktest"
	"github.com/nerutalk/nerutalk/internal/push/provider"
)

// subscription is a browser's side of a Web Push subscription: it keeps the private key.
type subscription struct {
	key  *ecdh.PrivateKey
	auth []byte
}

func (s subscription) target(endpoint string) provider.Target {
	return provider.Target{Provider: "webpush", Platform: "web", Token: endpoint,
		P256dh: base64.RawURLEncoding.EncodeToString(s.key.PublicKey().Bytes()),
		Auth:   base64.RawURLEncoding.EncodeToString(s.auth)}
}

// decryptWebPush is the user agent's half of RFC 8291 (and RFC 8188 aes128gcm), written from the
// RFC independently of the sender.
func decryptWebPush(body []byte, sub subscription) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("body shorter than the aes128gcm header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if len(body) < 21+idlen || rs < 18 {
		return nil, errors.New("bad header")
	}
	asPublicBytes, ciphertext := body[21:21+idlen], body[21+idlen:]
	if uint32(len(ciphertext)) > rs {
		return nil, errors.New("more than one record")
	}
	asPublic, err := ecdh.P256().NewPublicKey(asPublicBytes)
	if err != nil {
		return nil, fmt.Errorf("keyid is not a P-256 point: %w", err)
	}
	shared, err := sub.key.ECDH(asPublic)
	if err != nil {
		return nil, err
	}
	uaPublic := sub.key.PublicKey().Bytes()
	prkKey, _ := hkdf.Extract(sha256.New, shared, sub.auth)
	ikm, _ := hkdf.Expand(sha256.New, prkKey, "WebPush: info\x00"+string(uaPublic)+string(asPublicBytes), 32)
	prk, _ := hkdf.Extract(sha256.New, ikm, salt)
	cek, _ := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	nonce, _ := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)
	record, err := gcm.Open(nil, nonce, ciphertext, nil)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	record = bytes.TrimRight(record, "\x00") // padding
	if len(record) == 0 || record[len(record)-1] != 0x02 {
		return nil, errors.New("last record does not end with the 0x02 delimiter")
	}
	return record[:len(record)-1], nil
}

// pushDelivery is one message the fake push service accepted, decrypted.
type pushDelivery struct {
	Sub     string
	Headers map[string]string
	Payload map[string]any
}

// fakePushService is a push service (like FCM's or Mozilla's Web Push endpoints) that checks the
// VAPID JWT against the k= key, decrypts every payload with the subscription's private key and
// answers the documented statuses.
type fakePushService struct {
	srv      *httptest.Server
	vapidPub string
	clock    *clocktest.Clock

	mu       sync.Mutex
	subs     map[string]subscription
	status   map[string]int // sub id -> forced status
	got      []pushDelivery
	vapidJWT map[string]bool
}

func newFakePushService(t testing.TB, vapidPub string, clock *clocktest.Clock) *fakePushService {
	f := &fakePushService{vapidPub: vapidPub, clock: clock, subs: map[string]subscription{},
		status: map[string]int{}, vapidJWT: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /push/{id}", f.push)
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// subscribe creates a browser subscription and returns its target.
func (f *fakePushService) subscribe(t testing.TB, id string) provider.Target {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	sub := subscription{key: key, auth: auth}
	f.mu.Lock()
	f.subs[id] = sub
	f.mu.Unlock()
	return sub.target(f.srv.URL + "/push/" + id)
}

func (f *fakePushService) push(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	// RFC 8292: Authorization: vapid t=<JWT>, k=<public key>
	var tok, k string
	for part := range strings.SplitSeq(strings.TrimPrefix(r.Header.Get("Authorization"), "vapid "), ",") {
		part = strings.TrimSpace(part)
		if v, ok := strings.CutPrefix(part, "t="); ok {
			tok = v
		} else if v, ok := strings.CutPrefix(part, "k="); ok {
			k = v
		}
	}
	pubBytes, _ := base64.RawURLEncoding.DecodeString(k)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pubBytes)
	if err != nil || k != f.vapidPub {
		http.Error(w, "unknown VAPID key", http.StatusUnauthorized)
		return
	}
	_, claims, err := verifyES256(tok, pub)
	if err != nil {
		http.Error(w, "VAPID JWT: "+err.Error(), http.StatusForbidden)
		return
	}
	exp, _ := claims["exp"].(float64)
	now := f.clock.Now()
	if claims["aud"] != f.srv.URL || time.Unix(int64(exp), 0).Before(now) || time.Unix(int64(exp), 0).After(now.Add(24*time.Hour)) ||
		!strings.HasPrefix(fmt.Sprint(claims["sub"]), "mailto:") {
		http.Error(w, fmt.Sprintf("VAPID claims %v", claims), http.StatusForbidden)
		return
	}
	f.vapidJWT[tok] = true
	if st, ok := f.status[id]; ok {
		if st == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "12")
		}
		http.Error(w, http.StatusText(st), st)
		return
	}
	sub, ok := f.subs[id]
	if !ok {
		http.Error(w, "no such subscription", http.StatusGone)
		return
	}
	if _, err := strconv.Atoi(r.Header.Get("TTL")); err != nil {
		http.Error(w, "TTL required", http.StatusBadRequest)
		return
	}
	if r.Header.Get("Content-Encoding") != "aes128gcm" {
		http.Error(w, "want aes128gcm", http.StatusUnsupportedMediaType)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4097))
	if len(body) > 4096 {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	plain, err := decryptWebPush(body, sub)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var payload map[string]any
	if err := json.Unmarshal(plain, &payload); err != nil {
		http.Error(w, "payload is not JSON", http.StatusBadRequest)
		return
	}
	headers := map[string]string{}
	for _, h := range []string{"TTL", "Urgency", "Topic"} {
		if v := r.Header.Get(h); v != "" {
			headers[h] = v
		}
	}
	f.got = append(f.got, pushDelivery{Sub: id, Headers: headers, Payload: payload})
	w.Header().Set("Location", f.srv.URL+"/message/1")
	w.WriteHeader(http.StatusCreated)
}

func newWebPush(t testing.TB) (*provider.WebPush, *fakePushService) {
	pub, priv, err := provider.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	clock := clocktest.New(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	fake := newFakePushService(t, pub, clock)
	c, err := provider.NewWebPush(provider.WebPushConfig{VAPIDPublicKey: pub, VAPIDPrivateKey: priv,
		Subject: "mailto:ops@example.org", HTTPClient: fake.srv.Client(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return c, fake
}

func TestWebPushEncryptsAndSigns(t *testing.T) {
	t.Parallel()
	c, fake := newWebPush(t)
	target := fake.subscribe(t, "s1")
	badge := 4
	msg := provider.Message{Title: "Ann", Body: "secret text", Data: map[string]string{"chat_id": "c1"},
		Priority: provider.PriorityHigh, TTL: 90 * time.Second, CollapseKey: "chat-c1", Badge: &badge}
	if err := c.Send(context.Background(), target, msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	want := pushDelivery{Sub: "s1",
		Headers: map[string]string{"TTL": "90", "Urgency": "high", "Topic": "chat-c1"},
		Payload: map[string]any{"title": "Ann", "body": "secret text", "data": map[string]any{"chat_id": "c1"},
			"tag": "chat-c1", "badge": float64(4)}}
	if diff := cmp.Diff(want, fake.got[0]); diff != "" {
		t.Errorf("delivery (-want +got):\n%s", diff)
	}

	// Defaults: a TTL is always sent; background is low urgency.
	if err := c.Send(context.Background(), target, provider.Message{PushType: "background", Data: map[string]string{"type": "sync"}}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"TTL": "2419200", "Urgency": "low"}, fake.got[1].Headers); diff != "" {
		t.Errorf("background headers (-want +got):\n%s", diff)
	}
}

func TestWebPushReusesVAPIDTokenPerAudience(t *testing.T) {
	t.Parallel()
	c, fake := newWebPush(t)
	target := fake.subscribe(t, "s1")
	send := func() {
		t.Helper()
		if err := c.Send(context.Background(), target, provider.Message{Title: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	send()
	fake.clock.Advance(10 * time.Hour)
	send()
	if n := len(fake.vapidJWT); n != 1 {
		t.Errorf("VAPID tokens after 10 h = %d, want 1", n)
	}
	fake.clock.Advance(time.Hour + time.Second) // within an hour of the 12 h expiry
	send()
	if n := len(fake.vapidJWT); n != 2 {
		t.Errorf("VAPID tokens after 11 h = %d, want 2", n)
	}
}

func TestWebPushErrors(t *testing.T) {
	t.Parallel()
	c, fake := newWebPush(t)
	tests := []struct {
		status         int
		invalid, retry bool
		retryAfter     time.Duration
	}{
		{status: 404, invalid: true},
		{status: 410, invalid: true},
		{status: 413},
		{status: 400},
		{status: 429, retry: true, retryAfter: 12 * time.Second},
		{status: 500, retry: true},
		{status: 503, retry: true},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			id := "s" + strconv.Itoa(tt.status)
			target := fake.subscribe(t, id)
			fake.mu.Lock()
			fake.status[id] = tt.status
			fake.mu.Unlock()
			err := c.Send(context.Background(), target, provider.Message{Title: "t"})
			if err == nil {
				t.Fatal("Send = nil, want an error")
			}
			if got := errors.Is(err, provider.ErrInvalidToken); got != tt.invalid {
				t.Errorf("errors.Is(%v, ErrInvalidToken) = %v, want %v", err, got, tt.invalid)
			}
			var re *provider.RetryableError
			if got := errors.As(err, &re); got != tt.retry {
				t.Fatalf("errors.As(%v, *RetryableError) = %v, want %v", err, got, tt.retry)
			}
			if re != nil && (re.Status != tt.status || re.RetryAfter != tt.retryAfter) {
				t.Errorf("RetryableError{%d, %s}, want {%d, %s}", re.Status, re.RetryAfter, tt.status, tt.retryAfter)
			}
		})
	}
}

func TestWebPushRejectsBadSubscriptions(t *testing.T) {
	t.Parallel()
	c, fake := newWebPush(t)
	good := fake.subscribe(t, "s1")
	bad := []provider.Target{
		{Token: "http://push.example.org/x", P256dh: good.P256dh, Auth: good.Auth},
		{Token: "not a url", P256dh: good.P256dh, Auth: good.Auth},
		{Token: good.Token, P256dh: "!!!", Auth: good.Auth},
		{Token: good.Token, P256dh: base64.RawURLEncoding.EncodeToString(make([]byte, 65)), Auth: good.Auth},
		{Token: good.Token, P256dh: good.P256dh, Auth: "c2hvcnQ"},
	}
	for _, tt := range bad {
		if err := c.Send(context.Background(), tt, provider.Message{Title: "t"}); !errors.Is(err, provider.ErrInvalidToken) {
			t.Errorf("Send(%+v) = %v, want ErrInvalidToken", tt, err)
		}
	}
	if len(fake.got) != 0 {
		t.Errorf("%d pushes delivered for bad subscriptions", len(fake.got))
	}
}

func TestWebPushDefaultClientRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	pub, priv, err := provider.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	fake := newFakePushService(t, pub, clocktest.New(time.Now()))
	target := fake.subscribe(t, "s1")
	c, err := provider.NewWebPush(provider.WebPushConfig{VAPIDPublicKey: pub, VAPIDPrivateKey: priv, Subject: "mailto:ops@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Send(context.Background(), target, provider.Message{Title: "t"}) // the fake listens on 127.0.0.1
	if err == nil || !strings.Contains(err.Error(), "non-public address") {
		t.Errorf("Send to a loopback endpoint = %v, want a refusal", err)
	}
	if len(fake.got) != 0 {
		t.Error("the push reached a loopback address")
	}
}

func TestVAPIDKeys(t *testing.T) {
	t.Parallel()
	pub, priv, err := provider.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := base64.RawURLEncoding.DecodeString(pub); len(p) != 65 || p[0] != 4 {
		t.Errorf("public key %q is not an uncompressed P-256 point", pub)
	}
	if _, err := provider.ParseVAPIDKeys(pub, priv); err != nil {
		t.Errorf("ParseVAPIDKeys(generated) = %v", err)
	}
	pub2, priv2, _ := provider.GenerateVAPIDKeys()
	for _, tt := range [][2]string{{pub, priv2}, {pub2, priv}, {"", priv}, {pub, ""}, {pub, "AAAA"}, {pub + "x", priv}} {
		if _, err := provider.ParseVAPIDKeys(tt[0], tt[1]); err == nil {
			t.Errorf("ParseVAPIDKeys(%q, %q) = nil error, want one", tt[0], tt[1])
		}
	}
	for _, subject := range []string{"", "ops@example.org", "http://example.org"} {
		if _, err := provider.NewWebPush(provider.WebPushConfig{VAPIDPublicKey: pub, VAPIDPrivateKey: priv, Subject: subject}); err == nil {
			t.Errorf("NewWebPush(subject %q) = nil error, want one", subject)
		}
	}
}

// BenchmarkWebPushSend measures encrypted sends to the local fake push service (whose own
// decryption and VAPID check are part of the CPU measured).
func BenchmarkWebPushSend(b *testing.B) {
	c, fake := newWebPush(b)
	target := fake.subscribe(b, "s1")
	msg := provider.Message{Title: "Ann", Body: "a message of ordinary length for a chat", Data: map[string]string{"chat_id": "c1"},
		Priority: provider.PriorityHigh, TTL: time.Hour, CollapseKey: "chat-c1"}
	b.ReportAllocs()
	before := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.Send(context.Background(), target, msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
	b.ReportMetric(float64((cpuTime()-before).Microseconds())/float64(b.N), "cpu-µs/send")
}
