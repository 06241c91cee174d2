package provider_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/nerutalk/nerutalk/internal/push/provider"
)

// rsaKey is one service-account key for every FCM test (RSA generation is slow).
var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// fakeFCM speaks the two halves of FCM HTTP v1: Google's OAuth2 token endpoint (JWT bearer
// grant, the assertion checked with the service account's public key) and messages:send.
type fakeFCM struct {
	t         testing.TB
	srv       *httptest.Server
	project   string
	email     string
	expiresIn int // seconds, in token answers

	tokenRequests atomic.Int64
	mu            sync.Mutex
	issued        map[string]bool
	sent          []map[string]any // the "message" objects received
}

func newFakeFCM(t testing.TB) *fakeFCM {
	f := &fakeFCM{t: t, project: "nerutalk-test", email: "push@nerutalk-test.iam.gserviceaccount.com",
		expiresIn: 3600, issued: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", f.send)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// credentials is the service-account JSON, as the Firebase console gives it.
func (f *fakeFCM) credentials() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey())
	if err != nil {
		f.t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": f.project, "private_key_id": "key-1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": f.email, "client_id": "1", "token_uri": f.srv.URL + "/token",
	})
	return b
}

func (f *fakeFCM) token(w http.ResponseWriter, r *http.Request) {
	f.tokenRequests.Add(1)
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
		return
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(r.PostForm.Get("assertion"), claims, func(tok *jwt.Token) (any, error) {
		return &rsaKey().PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(f.srv.URL+"/token"), jwt.WithIssuer(f.email),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil || !strings.Contains(fmt.Sprint(claims["scope"]), "https://www.googleapis.com/auth/firebase.messaging") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"invalid_grant","error_description":%q}`, fmt.Sprint(err))
		return
	}
	tok := fmt.Sprintf("ya29.fake-%d", f.tokenRequests.Load())
	f.mu.Lock()
	f.issued[tok] = true
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":%d}`, tok, f.expiresIn)
}

// fcmFailures answers a send to these tokens with FCM's documented errors.
var fcmFailures = map[string]struct {
	status int
	header string
	body   string
}{
	"unregistered": {404, "", `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`},
	"mismatch":     {403, "", `{"error":{"code":403,"message":"SenderId mismatch","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"SENDER_ID_MISMATCH"}]}}`},
	"malformed":    {400, "", `{"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"},{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token","description":"Invalid registration token"}]}]}}`},
	"badpayload":   {400, "", `{"error":{"code":400,"message":"Invalid value at 'message.data[0].value'","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.data[0].value","description":"Invalid value"}]}]}}`},
	"wrongproject": {404, "", `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND"}}`},
	"quota":        {429, "7", `{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"QUOTA_EXCEEDED"}]}}`},
	"unavailable":  {503, "Thu, 03 Dec 2026 12:00:30 GMT", `{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}`},
	"internal":     {500, "", `{"error":{"code":500,"message":"Internal error encountered.","status":"INTERNAL","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INTERNAL"}]}}`},
	"notjson":      {502, "", `<html>Bad Gateway</html>`},
	"auth":         {401, "", `{"error":{"code":401,"message":"Auth error from APNS or Web Push Service","status":"UNAUTHENTICATED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"THIRD_PARTY_AUTH_ERROR"}]}}`},
}

func (f *fakeFCM) send(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	valid := ok && f.issued[tok]
	f.mu.Unlock()
	if !valid {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`)
		return
	}
	if r.PathValue("project") != f.project {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND"}}`)
		return
	}
	var req struct {
		Message map[string]any `json:"message"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Message["token"] == nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"code":400,"message":"Invalid JSON payload received.","status":"INVALID_ARGUMENT"}}`)
		return
	}
	token := req.Message["token"].(string)
	if fail, ok := fcmFailures[token]; ok {
		if fail.header != "" {
			w.Header().Set("Retry-After", fail.header)
		}
		w.WriteHeader(fail.status)
		fmt.Fprint(w, fail.body)
		return
	}
	f.mu.Lock()
	f.sent = append(f.sent, req.Message)
	n := len(f.sent)
	f.mu.Unlock()
	fmt.Fprintf(w, `{"name":"projects/%s/messages/%d"}`, f.project, n)
}

func (f *fakeFCM) client(t testing.TB, now func() time.Time) *provider.FCM {
	c, err := provider.NewFCM(provider.FCMConfig{CredentialsJSON: f.credentials(), Endpoint: f.srv.URL,
		HTTPClient: f.srv.Client(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFCMSendsV1MessageWithOverrides(t *testing.T) {
	t.Parallel()
	fake := newFakeFCM(t)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	c := fake.client(t, func() time.Time { return now })
	badge := 3
	msg := provider.Message{Title: "Ann", Body: "hi there", Data: map[string]string{"chat_id": "c1", "type": "message"},
		Priority: provider.PriorityHigh, TTL: time.Hour, CollapseKey: "chat-c1", Badge: &badge, Sound: "default"}
	if err := c.Send(context.Background(), provider.Target{Provider: "fcm", Platform: "android", Token: "tok-1"}, msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	want := map[string]any{
		"token":        "tok-1",
		"notification": map[string]any{"title": "Ann", "body": "hi there"},
		"data":         map[string]any{"chat_id": "c1", "type": "message"},
		"android": map[string]any{"priority": "HIGH", "ttl": "3600s", "collapse_key": "chat-c1",
			"notification": map[string]any{"sound": "default", "tag": "chat-c1"}},
		"apns": map[string]any{
			"headers": map[string]any{"apns-priority": "10", "apns-push-type": "alert",
				"apns-expiration": fmt.Sprint(now.Add(time.Hour).Unix()), "apns-collapse-id": "chat-c1"},
			"payload": map[string]any{"aps": map[string]any{"alert": map[string]any{"title": "Ann", "body": "hi there"},
				"badge": float64(3), "sound": "default", "thread-id": "chat-c1"}},
		},
		"webpush": map[string]any{"headers": map[string]any{"TTL": "3600", "Urgency": "high", "Topic": "chat-c1"}},
	}
	if diff := cmp.Diff(want, fake.sent[0]); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
}

func TestFCMBackgroundIsDataOnly(t *testing.T) {
	t.Parallel()
	fake := newFakeFCM(t)
	c := fake.client(t, nil)
	msg := provider.Message{Title: "ignored", Body: "ignored", Data: map[string]string{"type": "sync"},
		Priority: provider.PriorityHigh, PushType: "background"}
	if err := c.Send(context.Background(), provider.Target{Token: "tok-bg"}, msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := fake.sent[0]
	if _, ok := got["notification"]; ok {
		t.Errorf("background message has a notification: %v", got["notification"])
	}
	if p := got["android"].(map[string]any)["priority"]; p != "NORMAL" {
		t.Errorf("android priority = %v, want NORMAL", p)
	}
	apns := got["apns"].(map[string]any)
	if diff := cmp.Diff(map[string]any{"apns-priority": "5", "apns-push-type": "background"}, apns["headers"]); diff != "" {
		t.Errorf("apns headers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"aps": map[string]any{"content-available": float64(1)}}, apns["payload"]); diff != "" {
		t.Errorf("apns payload (-want +got):\n%s", diff)
	}
}

func TestFCMLongCollapseKeyBecomesValidTopic(t *testing.T) {
	t.Parallel()
	fake := newFakeFCM(t)
	c := fake.client(t, nil)
	key := "chat:0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	for range 2 {
		if err := c.Send(context.Background(), provider.Target{Token: "tok"}, provider.Message{Title: "t", CollapseKey: key}); err != nil {
			t.Fatal(err)
		}
	}
	t1 := fake.sent[0]["webpush"].(map[string]any)["headers"].(map[string]any)["Topic"].(string)
	t2 := fake.sent[1]["webpush"].(map[string]any)["headers"].(map[string]any)["Topic"].(string)
	if len(t1) != 32 || t1 != t2 || strings.ContainsAny(t1, ":+/=") {
		t.Errorf("Topic = %q then %q, want the same 32 URL-safe characters", t1, t2)
	}
}

func TestFCMAccessTokenIsCached(t *testing.T) {
	t.Parallel()
	fake := newFakeFCM(t)
	c := fake.client(t, nil)
	for i := range 5 {
		if err := c.Send(context.Background(), provider.Target{Token: fmt.Sprint("tok-", i)}, provider.Message{Title: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.tokenRequests.Load(); n != 1 {
		t.Errorf("token requests = %d for 5 sends, want 1", n)
	}
}

func TestFCMAccessTokenRenewedBeforeExpiry(t *testing.T) {
	t.Parallel()
	fake := newFakeFCM(t)
	fake.expiresIn = 5 // inside the oauth2 package's 10 s early-expiry margin: every send renews
	c := fake.client(t, nil)
	for range 3 {
		if err := c.Send(context.Background(), provider.Target{Token: "tok"}, provider.Message{Title: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.tokenRequests.Load(); n != 3 {
		t.Errorf("token requests = %d for 3 sends with a token about to expire, want 3", n)
	}
}

func TestFCMRevokedAccessTokenIsRenewedOnce(t *testing.T) {
	t.Parallel()
	fake := newFakeFCM(t)
	c := fake.client(t, nil)
	send := func() error {
		return c.Send(context.Background(), provider.Target{Token: "tok"}, provider.Message{Title: "t"})
	}
	if err := send(); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	clear(fake.issued) // Google forgets the token before it expires
	fake.mu.Unlock()
	if err := send(); err != nil {
		t.Fatalf("Send after the token was revoked: %v", err)
	}
	if n := fake.tokenRequests.Load(); n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}
	if err := send(); err != nil { // the new token is cached again
		t.Fatal(err)
	}
	if n, sent := fake.tokenRequests.Load(), len(fake.sent); n != 2 || sent != 3 {
		t.Errorf("token requests %d, delivered %d; want 2, 3", n, sent)
	}
}

func TestFCMDropsReservedDataKeys(t *testing.T) {
	t.Parallel()
	fake := newFakeFCM(t)
	c := fake.client(t, nil)
	data := map[string]string{"chat_id": "c1", "from": "x", "google.c.a": "x", "gcm.n": "x", "message_type": "x"}
	if err := c.Send(context.Background(), provider.Target{Token: "tok"}, provider.Message{Title: "t", Data: data}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"chat_id": "c1"}, fake.sent[0]["data"]); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	if len(data) != 5 {
		t.Error("the caller's map was modified")
	}
}

func TestFCMRejectedServiceAccountIsPermanent(t *testing.T) {
	t.Parallel()
	fake := newFakeFCM(t)
	fake.email = "someone-else@example.com" // the fake checks iss against this
	creds := fake.credentials()
	fake.email = "push@nerutalk-test.iam.gserviceaccount.com"
	c, err := provider.NewFCM(provider.FCMConfig{CredentialsJSON: creds, Endpoint: fake.srv.URL, HTTPClient: fake.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Send(context.Background(), provider.Target{Token: "tok"}, provider.Message{Title: "t"})
	var re *provider.RetryableError
	if err == nil || errors.As(err, &re) || errors.Is(err, provider.ErrInvalidToken) {
		t.Errorf("Send with a refused service account = %v, want a permanent error", err)
	}
	if len(fake.sent) != 0 {
		t.Error("a message was sent without a valid access token")
	}
}

func TestFCMErrors(t *testing.T) {
	t.Parallel()
	fake := newFakeFCM(t)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	c := fake.client(t, func() time.Time { return now })
	tests := []struct {
		token      string
		invalid    bool
		retry      bool
		status     int
		retryAfter time.Duration
	}{
		{token: "unregistered", invalid: true},
		{token: "mismatch", invalid: true},
		{token: "malformed", invalid: true},
		{token: "badpayload"},
		{token: "wrongproject"},
		{token: "auth"},
		{token: "quota", retry: true, status: 429, retryAfter: 7 * time.Second},
		{token: "unavailable", retry: true, status: 503, retryAfter: 30 * time.Second},
		{token: "internal", retry: true, status: 500},
		{token: "notjson", retry: true, status: 502},
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
			if re != nil && (re.Status != tt.status || re.RetryAfter != tt.retryAfter) {
				t.Errorf("RetryableError{Status: %d, RetryAfter: %s}, want {%d, %s}", re.Status, re.RetryAfter, tt.status, tt.retryAfter)
			}
		})
	}
}

func TestFCMNetworkErrorIsRetryable(t *testing.T) {
	t.Parallel()
	fake := newFakeFCM(t)
	c := fake.client(t, nil)
	if err := c.Send(context.Background(), provider.Target{Token: "tok"}, provider.Message{Title: "t"}); err != nil {
		t.Fatal(err)
	}
	fake.srv.Close()
	err := c.Send(context.Background(), provider.Target{Token: "tok"}, provider.Message{Title: "t"})
	var re *provider.RetryableError
	if !errors.As(err, &re) || re.Status != 0 {
		t.Errorf("Send to a closed server = %v, want a *RetryableError with status 0", err)
	}
}

func TestNewFCMRejectsBadCredentials(t *testing.T) {
	t.Parallel()
	for _, creds := range []string{``, `{`, `{"type":"authorized_user","project_id":"p"}`, `{"type":"service_account"}`,
		`{"type":"service_account","project_id":"p","private_key":"nope","client_email":"a@b"}`} {
		if _, err := provider.NewFCM(provider.FCMConfig{CredentialsJSON: []byte(creds)}); err == nil {
			t.Errorf("NewFCM(%s) = nil error, want one", creds)
		}
	}
}

// BenchmarkFCMSend measures sends handed to a local fake FCM (HTTP/1.1 keep-alive, loopback);
// run with -cpu to vary parallelism.
func BenchmarkFCMSend(b *testing.B) {
	fake := newFakeFCM(b)
	fake.srv.Config.SetKeepAlivesEnabled(true)
	tr := fake.srv.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	c, err := provider.NewFCM(provider.FCMConfig{CredentialsJSON: fake.credentials(), Endpoint: fake.srv.URL,
		HTTPClient: &http.Client{Transport: tr}})
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
			if err := c.Send(context.Background(), provider.Target{Token: "tok"}, msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
	// Process CPU (user+system) per send; it includes the fake server's share in this process.
	b.ReportMetric(float64((cpuTime()-before).Microseconds())/float64(b.N), "cpu-µs/send")
}

// cpuTime is the CPU time this process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
