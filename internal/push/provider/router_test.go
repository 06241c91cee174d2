package provider_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/clocktest"
	"github.com/nerutalk/nerutalk/internal/push/provider"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRouterRoutesByProvider(t *testing.T) {
	t.Parallel()
	fcm := newFakeFCM(t)
	pub, priv, err := provider.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	web := newFakePushService(t, pub, clocktest.New(time.Now()))
	dir := t.TempDir()
	credsFile := filepath.Join(dir, "fcm.json")
	if err := os.WriteFile(credsFile, fcm.credentials(), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	r, err := provider.NewRouter(provider.Options{FCMCredentialsFile: credsFile, FCMEndpoint: fcm.srv.URL,
		VAPIDPublicKey: pub, VAPIDPrivateKey: priv, VAPIDSubject: "mailto:ops@example.org",
		HTTPClient: web.srv.Client(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Configured("fcm") || r.Configured("apns") || !r.Configured("webpush") {
		t.Errorf("Configured fcm/apns/webpush = %v/%v/%v, want true/false/true", r.Configured("fcm"), r.Configured("apns"), r.Configured("webpush"))
	}
	ctx := context.Background()
	msg := provider.Message{Title: "Ann", Body: "hi"}
	if err := r.Send(ctx, provider.Target{Provider: "fcm", Token: "tok"}, msg); err != nil {
		t.Fatalf("fcm: %v", err)
	}
	if err := r.Send(ctx, web.subscribe(t, "s1"), msg); err != nil {
		t.Fatalf("webpush: %v", err)
	}
	for range 2 {
		if err := r.Send(ctx, provider.Target{Provider: "apns", Token: deviceToken}, msg); err != nil {
			t.Fatalf("apns (log): %v", err)
		}
	}
	if err := r.Send(ctx, provider.Target{Provider: "carrier-pigeon"}, msg); err == nil {
		t.Error("unknown provider: Send = nil, want an error")
	}
	if len(fcm.sent) != 1 || len(web.got) != 1 {
		t.Errorf("fcm got %d, webpush got %d; want 1 each", len(fcm.sent), len(web.got))
	}
	out := logs.String()
	if n := strings.Count(out, "provider not configured"); n != 1 {
		t.Errorf("%d warnings for the unconfigured provider, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "would send"); n != 2 {
		t.Errorf("%d log-sender lines, want 2:\n%s", n, out)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	pub, priv, _ := provider.GenerateVAPIDKeys()
	pub2, _, _ := provider.GenerateVAPIDKeys()
	apnsKey := newFakeAPNs(t).p8
	tests := []struct {
		name string
		opts provider.Options
		want string
	}{
		{"missing FCM file", provider.Options{FCMCredentialsFile: "/nonexistent/fcm.json"}, "fcm"},
		{"bad FCM JSON", provider.Options{FCMCredentialsJSON: []byte("{}")}, "fcm"},
		{"missing APNs key file", provider.Options{APNsKeyFile: "/nonexistent/key.p8", APNsKeyID: "K", APNsTeamID: "T"}, "apns"},
		{"APNs without key id", provider.Options{APNsKeyPEM: apnsKey, APNsTeamID: "T"}, "apns"},
		{"VAPID private key only", provider.Options{VAPIDPrivateKey: priv}, "VAPID public key"},
		{"VAPID keys of two pairs", provider.Options{VAPIDPublicKey: pub2, VAPIDPrivateKey: priv}, "does not match"},
		{"VAPID bad subject", provider.Options{VAPIDPublicKey: pub, VAPIDPrivateKey: priv, VAPIDSubject: "ops@example.org"}, "subject"},
	}
	for _, tt := range tests {
		if _, err := provider.New(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, want an error mentioning %q", tt.name, err, tt.want)
		}
	}
	s, err := provider.New(provider.Options{})
	if err != nil {
		t.Fatalf("New(no providers) = %v", err)
	}
	if err := s.Send(context.Background(), provider.Target{Provider: "webpush"}, provider.Message{}); err != nil {
		t.Errorf("log fallback: %v", err)
	}
}
