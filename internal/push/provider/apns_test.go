package provider_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nerutalk/nerutalk/internal/clocktest"
	"github.com/nerutalk/nerutalk/internal/push/provider"
)

// verifyES256 checks a compact JWS signed with ES256 by pub, without a JWT library, and returns
// its header and claims.
func verifyES256(tok string, pub *ecdsa.PublicKey) (header, claims map[string]any, err error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, nil, errors.New("not a compact JWS")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return nil, nil, fmt.Errorf("signature is not 64 bytes of base64url: %v", err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, nil, errors.New("bad signature")
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return nil, nil, err
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return nil, nil, err
		}
	}
	if header["alg"] != "ES256" {
		return nil, nil, fmt.Errorf("alg %v, want ES256", header["alg"])
	}
	return header, claims, nil
}

// apnsRequest is one notification the fake APNs accepted.
type apnsRequest struct {
	Token   string
	Headers map[string]string
	Payload map[string]any
}

// fakeAPNs is an HTTP/2-over-TLS server that behaves like api.push.apple.com for token-based
// authentication: it checks the provider token's ES256 signature, kid, iss and age (an hour, on
// the shared clock), the request headers, and answers errors with Apple's reasons.
type fakeAPNs struct {
	srv   *httptest.Server
	key   *ecdsa.PrivateKey
	p8    []byte
	clock *clocktest.Clock

	mu           sync.Mutex
	requests     int
	jwts         map[string]bool // distinct provider tokens seen
	expired      map[string]bool // tokens to answer ExpiredProviderToken
	alwaysExpire bool
	got          []apnsRequest
}

const (
	apnsTeam  = "TEAM123456"
	apnsKeyID = "KEY1234567"
)

// apnsFailures: device tokens the fake answers with an error (status, reason).
var apnsFailures = map[string]struct {
	status int
	reason string
}{
	"0410": {410, "Unregistered"},
	"0400": {400, "BadDeviceToken"},
	"4000": {400, "DeviceTokenNotForTopic"},
	"0429": {429, "TooManyRequests"},
	"0500": {500, "InternalServerError"},
	"0503": {503, "ServiceUnavailable"},
}

func newFakeAPNs(t testing.TB) *fakeAPNs {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAPNs{key: key, p8: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		clock: clocktest.New(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)),
		jwts:  map[string]bool{}, expired: map[string]bool{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.handle))
	f.srv.EnableHTTP2 = true
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPNs) fail(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status == http.StatusGone {
		fmt.Fprintf(w, `{"reason":%q,"timestamp":%d}`, reason, f.clock.Now().UnixMilli())
		return
	}
	fmt.Fprintf(w, `{"reason":%q}`, reason)
}

func (f *fakeAPNs) handle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("apns-id", "00000000-0000-0000-0000-000000000001")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if r.ProtoMajor != 2 {
		f.fail(w, http.StatusHTTPVersionNotSupported, "HTTP/2 required")
		return
	}
	token, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if r.Method != http.MethodPost || !ok {
		f.fail(w, http.StatusNotFound, "BadPath")
		return
	}
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "bearer ")
	if !ok {
		f.fail(w, http.StatusForbidden, "MissingProviderToken")
		return
	}
	header, claims, err := verifyES256(bearer, &f.key.PublicKey)
	if err != nil || header["kid"] != apnsKeyID || claims["iss"] != apnsTeam {
		f.fail(w, http.StatusForbidden, "InvalidProviderToken")
		return
	}
	f.jwts[bearer] = true
	iat, _ := claims["iat"].(float64)
	if f.alwaysExpire || f.expired[bearer] || f.clock.Now().Sub(time.Unix(int64(iat), 0)) > time.Hour {
		f.fail(w, http.StatusForbidden, "ExpiredProviderToken")
		return
	}
	pushType, topic := r.Header.Get("apns-push-type"), r.Header.Get("apns-topic")
	switch {
	case pushType == "voip" && !strings.HasSuffix(topic, ".voip"),
		pushType != "voip" && strings.HasSuffix(topic, ".voip"):
		f.fail(w, http.StatusBadRequest, "BadTopic")
		return
	case pushType == "background" && r.Header.Get("apns-priority") != "5":
		f.fail(w, http.StatusBadRequest, "BadPriority")
		return
	}
	if fail, ok := apnsFailures[token]; ok {
		f.fail(w, fail.status, fail.reason)
		return
	}
	var payload map[string]any
	if err := json.NewDecoder(r.Body).Decode(&payload); err != nil || payload["aps"] == nil {
		f.fail(w, http.StatusBadRequest, "PayloadEmpty")
		return
	}
	headers := map[string]string{}
	for _, h := range []string{"apns-push-type", "apns-topic", "apns-priority", "apns-expiration", "apns-collapse-id"} {
		if v := r.Header.Get(h); v != "" {
			headers[h] = v
		}
	}
	f.got = append(f.got, apnsRequest{Token: token, Headers: headers, Payload: payload})
	w.WriteHeader(http.StatusOK)
}

func (f *fakeAPNs) client(t *testing.T) *provider.APNs {
	c, err := provider.NewAPNs(provider.APNsConfig{KeyPEM: f.p8, KeyID: apnsKeyID, TeamID: apnsTeam,
		Topic: "org.nerutalk.app", Endpoint: f.srv.URL, HTTPClient: f.srv.Client(), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fakeAPNs) last() apnsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got[len(f.got)-1]
}

const deviceToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestAPNsSends(t *testing.T) {
	t.Parallel()
	badge := 2
	tests := []struct {
		name   string
		target provider.Target
		msg    provider.Message
		want   apnsRequest
	}{
		{
			name:   "alert",
			target: provider.Target{Token: deviceToken, VoIPToken: "ffff"},
			msg: provider.Message{Title: "Ann", Body: "hi", Data: map[string]string{"chat_id": "c1", "aps": "ignored"},
				Priority: provider.PriorityHigh, TTL: time.Hour, CollapseKey: "chat-c1", Badge: &badge, Sound: "default"},
			want: apnsRequest{Token: deviceToken,
				Headers: map[string]string{"apns-push-type": "alert", "apns-topic": "org.nerutalk.app", "apns-priority": "10",
					"apns-expiration": fmt.Sprint(time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC).Unix()), "apns-collapse-id": "chat-c1"},
				Payload: map[string]any{"aps": map[string]any{"alert": map[string]any{"title": "Ann", "body": "hi"},
					"badge": float64(2), "sound": "default", "thread-id": "chat-c1"}, "chat_id": "c1"}},
		},
		{
			name:   "normal priority on the device's own topic",
			target: provider.Target{Token: deviceToken, AppID: "org.example.other"},
			msg:    provider.Message{Title: "t", Priority: provider.PriorityNormal},
			want: apnsRequest{Token: deviceToken,
				Headers: map[string]string{"apns-push-type": "alert", "apns-topic": "org.example.other", "apns-priority": "5"},
				Payload: map[string]any{"aps": map[string]any{"alert": map[string]any{"title": "t"}}}},
		},
		{
			name:   "background is priority 5",
			target: provider.Target{Token: deviceToken},
			msg:    provider.Message{Title: "t", Priority: provider.PriorityHigh, PushType: "background", Data: map[string]string{"type": "sync"}},
			want: apnsRequest{Token: deviceToken,
				Headers: map[string]string{"apns-push-type": "background", "apns-topic": "org.nerutalk.app", "apns-priority": "5"},
				Payload: map[string]any{"aps": map[string]any{"content-available": float64(1)}, "type": "sync"}},
		},
		{
			name:   "voip goes to the PushKit token",
			target: provider.Target{Token: deviceToken, VoIPToken: "abcdef01"},
			msg:    provider.Message{Title: "Call", Body: "Ann is calling", PushType: "voip", Data: map[string]string{"call_id": "k1"}},
			want: apnsRequest{Token: "abcdef01",
				Headers: map[string]string{"apns-push-type": "voip", "apns-topic": "org.nerutalk.app.voip", "apns-priority": "10"},
				Payload: map[string]any{"aps": map[string]any{"alert": map[string]any{"title": "Call", "body": "Ann is calling"}}, "call_id": "k1"}},
		},
		{
			name:   "voip without a PushKit token is a high-priority alert",
			target: provider.Target{Token: deviceToken},
			msg:    provider.Message{Title: "Call", PushType: "voip"},
			want: apnsRequest{Token: deviceToken,
				Headers: map[string]string{"apns-push-type": "alert", "apns-topic": "org.nerutalk.app", "apns-priority": "10"},
				Payload: map[string]any{"aps": map[string]any{"alert": map[string]any{"title": "Call"}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFakeAPNs(t)
			if err := fake.client(t).Send(context.Background(), tt.target, tt.msg); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if diff := cmp.Diff(tt.want, fake.last()); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAPNsProviderTokenReusedThenRenewed(t *testing.T) {
	t.Parallel()
	fake := newFakeAPNs(t)
	c := fake.client(t)
	send := func() {
		t.Helper()
		if err := c.Send(context.Background(), provider.Target{Token: deviceToken}, provider.Message{Title: "t"}); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	send()
	fake.clock.Advance(20 * time.Minute)
	send()
	fake.clock.Advance(25 * time.Minute) // 45 min: still the first token
	send()
	if n := len(fake.jwts); n != 1 {
		t.Fatalf("provider tokens after 45 minutes = %d, want 1 (reused)", n)
	}
	fake.clock.Advance(10 * time.Minute) // 55 min: renewed before Apple's one-hour limit
	send()
	if n := len(fake.jwts); n != 2 {
		t.Fatalf("provider tokens after 55 minutes = %d, want 2 (renewed)", n)
	}
}

func TestAPNsExpiredProviderTokenIsRenewedAndRetriedOnce(t *testing.T) {
	t.Parallel()
	fake := newFakeAPNs(t)
	c := fake.client(t)
	if err := c.Send(context.Background(), provider.Target{Token: deviceToken}, provider.Message{Title: "t"}); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	for tok := range fake.jwts {
		fake.expired[tok] = true // Apple says the (still young) token expired
	}
	fake.mu.Unlock()
	if err := c.Send(context.Background(), provider.Target{Token: deviceToken}, provider.Message{Title: "t"}); err != nil {
		t.Fatalf("Send after ExpiredProviderToken: %v", err)
	}
	if fake.requests != 3 || len(fake.jwts) != 2 || len(fake.got) != 2 {
		t.Errorf("requests %d, provider tokens %d, delivered %d; want 3, 2, 2", fake.requests, len(fake.jwts), len(fake.got))
	}

	fake.mu.Lock()
	fake.alwaysExpire = true
	fake.mu.Unlock()
	err := c.Send(context.Background(), provider.Target{Token: deviceToken}, provider.Message{Title: "t"})
	var re *provider.RetryableError
	if err == nil || errors.As(err, &re) || errors.Is(err, provider.ErrInvalidToken) || !strings.Contains(err.Error(), "ExpiredProviderToken") {
		t.Errorf("Send when every token is refused = %v, want a permanent ExpiredProviderToken error", err)
	}
	if fake.requests != 5 {
		t.Errorf("requests = %d, want 5 (one retry only)", fake.requests)
	}
}

func TestAPNsErrors(t *testing.T) {
	t.Parallel()
	fake := newFakeAPNs(t)
	c := fake.client(t)
	tests := []struct {
		token          string
		invalid, retry bool
		status         int
	}{
		{token: "0410", invalid: true},
		{token: "0400", invalid: true},
		{token: "4000"},
		{token: "0429", retry: true, status: 429},
		{token: "0500", retry: true, status: 500},
		{token: "0503", retry: true, status: 503},
		{token: "not/hex", invalid: true},
		{token: "", invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			err := c.Send(context.Background(), provider.Target{Token: tt.token}, provider.Message{Title: "t"})
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
			if re != nil && re.Status != tt.status {
				t.Errorf("status %d, want %d", re.Status, tt.status)
			}
		})
	}
}

func TestAPNsNoTopicIsPermanent(t *testing.T) {
	t.Parallel()
	fake := newFakeAPNs(t)
	c, err := provider.NewAPNs(provider.APNsConfig{KeyPEM: fake.p8, KeyID: apnsKeyID, TeamID: apnsTeam,
		Endpoint: fake.srv.URL, HTTPClient: fake.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Send(context.Background(), provider.Target{Token: deviceToken}, provider.Message{Title: "t"})
	var re *provider.RetryableError
	if err == nil || errors.As(err, &re) || errors.Is(err, provider.ErrInvalidToken) {
		t.Errorf("Send without a topic = %v, want a permanent error", err)
	}
}

func TestNewAPNsRejectsBadKeys(t *testing.T) {
	t.Parallel()
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey())
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)
	good := newFakeAPNs(t).p8
	tests := []struct {
		name string
		cfg  provider.APNsConfig
	}{
		{"not PEM", provider.APNsConfig{KeyPEM: []byte("nope"), KeyID: apnsKeyID, TeamID: apnsTeam}},
		{"RSA", provider.APNsConfig{KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER}), KeyID: apnsKeyID, TeamID: apnsTeam}},
		{"P-384", provider.APNsConfig{KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384DER}), KeyID: apnsKeyID, TeamID: apnsTeam}},
		{"no key id", provider.APNsConfig{KeyPEM: good, TeamID: apnsTeam}},
		{"bad endpoint", provider.APNsConfig{KeyPEM: good, KeyID: apnsKeyID, TeamID: apnsTeam, Endpoint: "ftp://x"}},
	}
	for _, tt := range tests {
		if _, err := provider.NewAPNs(tt.cfg); err == nil {
			t.Errorf("%s: NewAPNs = nil error, want one", tt.name)
		}
	}
}

func TestAPNsNetworkErrorIsRetryable(t *testing.T) {
	t.Parallel()
	fake := newFakeAPNs(t)
	c := fake.client(t)
	fake.srv.Close()
	err := c.Send(context.Background(), provider.Target{Token: deviceToken}, provider.Message{Title: "t"})
	var re *provider.RetryableError
	if !errors.As(err, &re) || re.Status != 0 {
		t.Errorf("Send to a closed server = %v, want a *RetryableError with status 0", err)
	}
}

// BenchmarkAPNsSend measures sends to the local fake APNs over one HTTP/2 connection.
func BenchmarkAPNsSend(b *testing.B) {
	fake := newFakeAPNs(b)
	c, err := provider.NewAPNs(provider.APNsConfig{KeyPEM: fake.p8, KeyID: apnsKeyID, TeamID: apnsTeam,
		Topic: "org.nerutalk.app", Endpoint: fake.srv.URL, HTTPClient: fake.srv.Client(), Now: fake.clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	msg := provider.Message{Title: "Ann", Body: "a message of ordinary length for a chat", Data: map[string]string{"chat_id": "c1"},
		Priority: provider.PriorityHigh, TTL: time.Hour, CollapseKey: "chat-c1"}
	b.ReportAllocs()
	before := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.Send(context.Background(), provider.Target{Token: deviceToken}, msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
	b.ReportMetric(float64((cpuTime()-before).Microseconds())/float64(b.N), "cpu-µs/send")
}
