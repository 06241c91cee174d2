package push

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

func webSub() *WebPushSubscription {
	s := &WebPushSubscription{Endpoint: "https://push.example.com/send/abc"}
	key := make([]byte, 65)
	key[0] = 4
	s.Keys.P256dh = base64.RawURLEncoding.EncodeToString(key)
	s.Keys.Auth = base64.RawURLEncoding.EncodeToString(make([]byte, 16))
	return s
}

func TestRegisterValidation(t *testing.T) {
	t.Parallel()
	bad := []struct {
		name  string
		in    DeviceInput
		field string
	}{
		{"no platform", DeviceInput{Token: "x"}, "body.platform"},
		{"apns on android", DeviceInput{Platform: "android", Provider: "apns", Token: apnsToken}, "body.provider"},
		{"empty fcm token", DeviceInput{Platform: "android"}, "body.token"},
		{"apns token not hex", DeviceInput{Platform: "ios", Token: "zz" + apnsToken}, "body.token"},
		{"web without subscription", DeviceInput{Platform: "web"}, "body.subscription"},
		{"voip on android", DeviceInput{Platform: "android", Token: "t", VoIPToken: apnsToken}, "body.voip_token"},
		{"bad locale", DeviceInput{Platform: "android", Token: "t", Locale: "en US!"}, "body.locale"},
		{"http endpoint", DeviceInput{Platform: "web", Subscription: func() *WebPushSubscription {
			s := webSub()
			s.Endpoint = "http://push.example.com/x"
			return s
		}()}, "body.subscription.endpoint"},
		{"short p256dh", DeviceInput{Platform: "web", Subscription: func() *WebPushSubscription {
			s := webSub()
			s.Keys.P256dh = "AAAA"
			return s
		}()}, "body.subscription.keys.p256dh"},
	}
	for _, tc := range bad {
		_, err := tc.in.normalize()
		e, ok := apperr.As(err)
		if !ok || e.Kind != apperr.KindInvalid || len(e.Fields) == 0 || e.Fields[0].Location != tc.field {
			t.Errorf("%s: got %v, want invalid %s", tc.name, err, tc.field)
		}
	}
	r, err := DeviceInput{Platform: "web", Subscription: webSub(), Locale: "de_AT"}.normalize()
	if err != nil || r.Provider != "webpush" || r.Token != "https://push.example.com/send/abc" || r.Locale != "de-AT" {
		t.Errorf("web: got %+v, %v", r, err)
	}
	r, err = DeviceInput{Platform: "ios", Token: strings.ToUpper(apnsToken), VoIPToken: apnsToken}.normalize()
	if err != nil || r.Provider != "apns" || r.Token != apnsToken || !r.HasVoIP {
		t.Errorf("ios: got %+v, %v", r, err)
	}
}

func TestDevices(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		ctx := context.Background()
		alice, bob := h.user("alice"), h.user("bob")
		d1, created, err := h.svc.RegisterDevice(ctx, alice, "s1", DeviceInput{Platform: "android", Token: "tok-1", Locale: "en"})
		if err != nil || !created {
			t.Fatalf("register: %v %v", created, err)
		}
		// The same token again updates the row.
		d2, created, err := h.svc.RegisterDevice(ctx, alice, "s1", DeviceInput{Platform: "android", Token: "tok-1", Locale: "fr"})
		if err != nil || created || d2.ID != d1.ID || d2.Locale != "fr" {
			t.Fatalf("re-register: %+v %v %v", d2, created, err)
		}
		// A new token from the same session and app replaces the old one.
		d3, _, err := h.svc.RegisterDevice(ctx, alice, "s1", DeviceInput{Platform: "android", Token: "tok-2"})
		if err != nil || d3.ID != d1.ID || d3.Token != "tok-2" {
			t.Fatalf("rotate: %+v %v", d3, err)
		}
		// Bob registers a token alice had (same phone, other account): it moves to him.
		if _, _, err := h.svc.RegisterDevice(ctx, bob, "s9", DeviceInput{Platform: "android", Token: "tok-2"}); err != nil {
			t.Fatal(err)
		}
		if ds, _ := h.svc.Devices(ctx, alice); len(ds) != 0 {
			t.Fatalf("alice still has %+v", ds)
		}
		bds, _ := h.svc.Devices(ctx, bob)
		if len(bds) != 1 || bds[0].ID != d1.ID || bds[0].SessionID != "s9" {
			t.Fatalf("bob's devices: %+v", bds)
		}
		// Deleting someone else's device is not found.
		if err := h.svc.DeleteDevice(ctx, alice, d1.ID); apperr.KindOf(err) != apperr.KindNotFound {
			t.Fatalf("delete other's: %v", err)
		}
		// Web Push and a second session.
		w, _, err := h.svc.RegisterDevice(ctx, bob, "s10", DeviceInput{Platform: "web", Subscription: webSub()})
		if err != nil || w.Provider != "webpush" {
			t.Fatalf("web: %+v %v", w, err)
		}
		// Revoking session s9 removes its device only.
		h.svc.SessionsRevoked(ctx, bob, []string{"s9"})
		bds, _ = h.svc.Devices(ctx, bob)
		if len(bds) != 1 || bds[0].ID != w.ID {
			t.Fatalf("after revocation: %+v", bds)
		}
		if err := h.svc.DeleteDevice(ctx, bob, w.ID); err != nil {
			t.Fatal(err)
		}
		if bds, _ = h.svc.Devices(ctx, bob); len(bds) != 0 {
			t.Fatalf("after delete: %+v", bds)
		}
	})
}

func TestDeviceCap(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		ctx := context.Background()
		alice, bob := h.user("alice"), h.user("bob")
		for i := range MaxDevices {
			if _, _, err := h.svc.RegisterDevice(ctx, alice, fmt.Sprintf("s%d", i), DeviceInput{Platform: "android", Token: fmt.Sprintf("tok-%d", i)}); err != nil {
				t.Fatalf("device %d: %v", i, err)
			}
		}
		_, _, err := h.svc.RegisterDevice(ctx, alice, "more", DeviceInput{Platform: "android", Token: "tok-more"})
		if e, ok := apperr.As(err); !ok || e.Kind != apperr.KindConflict || e.Code != "too_many_devices" {
			t.Fatalf("one too many: %v", err)
		}
		// Updating a device she has is fine at the cap.
		if _, created, err := h.svc.RegisterDevice(ctx, alice, "s0", DeviceInput{Platform: "android", Token: "tok-0", Locale: "de"}); err != nil || created {
			t.Fatalf("update at the cap: %v %v", created, err)
		}
		// A token moving to her from another account counts as one more.
		if _, _, err := h.svc.RegisterDevice(ctx, bob, "b1", DeviceInput{Platform: "android", Token: "tok-bob"}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := h.svc.RegisterDevice(ctx, alice, "s-x", DeviceInput{Platform: "android", Token: "tok-bob"}); apperr.KindOf(err) != apperr.KindConflict {
			t.Fatalf("moved token over the cap: %v", err)
		}
	})
}

func TestControlCharactersRefused(t *testing.T) {
	t.Parallel()
	if _, err := (DeviceInput{Platform: "android", Token: "a\x00b"}).normalize(); apperr.KindOf(err) != apperr.KindInvalid {
		t.Errorf("NUL in token: %v", err)
	}
	if _, err := (DeviceInput{Platform: "android", Token: "t", AppID: "x\x01"}).normalize(); apperr.KindOf(err) != apperr.KindInvalid {
		t.Errorf("control in app id: %v", err)
	}
	if err := checkAdminText("a\x00", "", nil); apperr.KindOf(err) != apperr.KindInvalid {
		t.Errorf("NUL in title: %v", err)
	}
	if err := checkAdminText("t", "line\nline", map[string]string{"k": "v\x00"}); apperr.KindOf(err) != apperr.KindInvalid {
		t.Errorf("NUL in data: %v", err)
	}
	if err := checkAdminText("t", "line\nline", nil); err != nil {
		t.Errorf("newline in body: %v", err)
	}
	// The project's text policy (usertext.Text): C1 controls, carriage returns and bytes that
	// are not UTF-8 are refused as well.
	for _, bad := range []string{"a\u0085b", "a\r\nb", "a\xffb"} {
		if err := checkAdminText("t", bad, nil); apperr.KindOf(err) != apperr.KindInvalid {
			t.Errorf("body %q: %v", bad, err)
		}
	}
	if err := checkAdminText("two\nlines", "", nil); apperr.KindOf(err) != apperr.KindInvalid {
		t.Errorf("newline in title: %v", err)
	}
	if err := checkTemplate("body.body", "{{sender}}\x00"); apperr.KindOf(err) != apperr.KindInvalid {
		t.Errorf("NUL in template: %v", err)
	}
}

// FuzzDeviceInput: whatever a client registers, normalize never panics, and what it accepts
// carries no control characters and a known platform/provider pair.
func FuzzDeviceInput(f *testing.F) {
	f.Add("android", "", "tok", "", "", "", "en")
	f.Add("ios", "apns", apnsToken, apnsToken, "", "", "de_AT")
	f.Add("web", "", "", "", "https://push.example.com/x", "BAAA", "de-")
	f.Fuzz(func(t *testing.T, platform, prov, token, voip, endpoint, p256dh, locale string) {
		in := DeviceInput{Platform: platform, Provider: prov, Token: token, VoIPToken: voip, Locale: locale}
		if endpoint != "" || p256dh != "" {
			in.Subscription = &WebPushSubscription{Endpoint: endpoint}
			in.Subscription.Keys.P256dh = p256dh
			in.Subscription.Keys.Auth = p256dh
		}
		r, err := in.normalize()
		if err != nil {
			return
		}
		if controlChar(r.Token, false) || controlChar(r.AppID, false) || controlChar(r.Locale, false) {
			t.Fatalf("accepted control characters: %+v", r)
		}
		ok := false
		for _, p := range allowedProvider[r.Platform] {
			ok = ok || p == r.Provider
		}
		if !ok {
			t.Fatalf("accepted %s on %s", r.Provider, r.Platform)
		}
	})
}
