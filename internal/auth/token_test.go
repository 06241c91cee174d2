package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestTokensRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	tk, err := newTokens(testKey, 15*time.Minute, fixedClock(now))
	if err != nil {
		t.Fatal(err)
	}
	tok, exp, err := tk.issue("user-1", "session-1")
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(now.Add(15 * time.Minute)) {
		t.Fatalf("exp = %v", exp)
	}
	c, err := tk.verify(tok)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if c.Subject != "user-1" || c.SessionID != "session-1" || c.ID == "" || !c.ExpiresAt.Time.Equal(exp) || !c.IssuedAt.Time.Equal(now) {
		t.Fatalf("claims = %+v", c)
	}
	tok2, _, _ := tk.issue("user-1", "session-1")
	c2, _ := tk.verify(tok2)
	if c2.ID == c.ID {
		t.Fatal("two tokens share a jti")
	}
}

// forge builds a token from a header and claims, signed by sign (nil: no signature).
func forge(t *testing.T, header map[string]any, claims map[string]any, sign func(signingInput string) []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	in := enc(header) + "." + enc(claims)
	var sig []byte
	if sign != nil {
		sig = sign(in)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestTokensRejectForgeries(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	tk, err := newTokens(testKey, 15*time.Minute, fixedClock(now))
	if err != nil {
		t.Fatal(err)
	}
	good, _, _ := tk.issue("user-1", "session-1")
	claims := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{"sub": "user-1", "sid": "session-1", "iss": tokenIssuer, "aud": []string{tokenAudience},
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": uuid.NewString()}
		if mod != nil {
			mod(m)
		}
		return m
	}
	hs256 := func(key []byte) func(string) []byte {
		return func(in string) []byte {
			s, err := jwt.SigningMethodHS256.Sign(in, key)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	signWith := func(m jwt.SigningMethod, key any, c map[string]any) string {
		s, err := jwt.NewWithClaims(m, jwt.MapClaims(c)).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := strings.Replace(string(payload), `"sub":"user-1"`, `"sub":"user-2"`, 1)
	if tampered == string(payload) {
		t.Fatalf("payload %s has no sub to tamper with", payload)
	}
	hs := map[string]any{"alg": "HS256", "typ": "JWT"}

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(tampered)) + "." + parts[2], errTokenInvalid},
		{"signature removed", parts[0] + "." + parts[1] + ".", errTokenInvalid},
		{"alg none", forge(t, map[string]any{"alg": "none", "typ": "JWT"}, claims(nil), nil), errTokenInvalid},
		{"alg None", forge(t, map[string]any{"alg": "None"}, claims(nil), nil), errTokenInvalid},
		{"alg none with the real signature", forge(t, map[string]any{"alg": "none"}, claims(nil), hs256(testKey)), errTokenInvalid},
		{"RS256 with another key", signWith(jwt.SigningMethodRS256, rsaKey, claims(nil)), errTokenInvalid},
		{"RS256 header, HMAC with the secret (key confusion)", forge(t, map[string]any{"alg": "RS256"}, claims(nil), hs256(testKey)), errTokenInvalid},
		{"HS512 with the right key", signWith(jwt.SigningMethodHS512, testKey, claims(nil)), errTokenInvalid},
		{"HS384 with the right key", signWith(jwt.SigningMethodHS384, testKey, claims(nil)), errTokenInvalid},
		{"wrong key", forge(t, hs, claims(nil), hs256([]byte("another key that is long enough!!"))), errTokenInvalid},
		{"expired", forge(t, hs, claims(func(m map[string]any) { m["exp"] = now.Add(-time.Minute).Unix() }), hs256(testKey)), errTokenExpired},
		{"expired and wrong key", forge(t, hs, claims(func(m map[string]any) { m["exp"] = now.Add(-time.Minute).Unix() }), hs256([]byte("another key that is long enough!!"))), errTokenInvalid},
		{"issued in the future", forge(t, hs, claims(func(m map[string]any) { m["iat"] = now.Add(time.Minute).Unix() }), hs256(testKey)), errTokenInvalid},
		{"no exp", forge(t, hs, claims(func(m map[string]any) { delete(m, "exp") }), hs256(testKey)), errTokenInvalid},
		{"no iat", forge(t, hs, claims(func(m map[string]any) { delete(m, "iat") }), hs256(testKey)), errTokenInvalid},
		{"no sid", forge(t, hs, claims(func(m map[string]any) { delete(m, "sid") }), hs256(testKey)), errTokenInvalid},
		{"no sub", forge(t, hs, claims(func(m map[string]any) { delete(m, "sub") }), hs256(testKey)), errTokenInvalid},
		{"no jti", forge(t, hs, claims(func(m map[string]any) { delete(m, "jti") }), hs256(testKey)), errTokenInvalid},
		{"other issuer", forge(t, hs, claims(func(m map[string]any) { m["iss"] = "someone-else" }), hs256(testKey)), errTokenInvalid},
		{"other audience", forge(t, hs, claims(func(m map[string]any) { m["aud"] = "livekit" }), hs256(testKey)), errTokenInvalid},
		{"exp as a string", forge(t, hs, claims(func(m map[string]any) { m["exp"] = "tomorrow" }), hs256(testKey)), errTokenInvalid},
		{"garbage", "not-a-token", errTokenInvalid},
		{"empty", "", errTokenInvalid},
		{"huge", strings.Repeat("a", maxTokenLen+1), errTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := tk.verify(tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("verify = %+v, %v; want %v", c, err, tt.want)
			}
		})
	}

	// Within the leeway a slightly early iat and a just-expired exp still pass.
	skewed := forge(t, hs, claims(func(m map[string]any) {
		m["iat"] = now.Add(clockLeeway - time.Second).Unix()
		m["exp"] = now.Add(-clockLeeway + time.Second).Unix()
	}), hs256(testKey))
	if _, err := tk.verify(skewed); err != nil {
		t.Fatalf("token within the clock leeway: %v", err)
	}
}

func TestNewTokensRejectsWeakSettings(t *testing.T) {
	t.Parallel()
	if _, err := newTokens([]byte("short"), time.Minute, time.Now); err == nil {
		t.Error("a 5-byte key was accepted")
	}
	if _, err := newTokens(testKey, 0, time.Now); err == nil {
		t.Error("a zero lifetime was accepted")
	}
}

func TestRefreshTokens(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		tok, hash, err := newRefreshToken()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(raw) != 32 {
			t.Fatalf("token %q: %d bytes, %v", tok, len(raw), err)
		}
		if hash != hashRefreshToken(tok) || len(hash) != 64 || strings.Contains(hash, tok) {
			t.Fatalf("hash %q of %q", hash, tok)
		}
		if seen[tok] {
			t.Fatal("repeated refresh token")
		}
		seen[tok] = true
	}
}

func BenchmarkAccessTokenIssueVerify(b *testing.B) {
	tk, err := newTokens(testKey, 15*time.Minute, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		tok, _, err := tk.issue("01938f4e-7c1a-7d2b-9c3e-2a1b0c9d8e7f", "01938f4e-7c1a-7d2b-9c3e-2a1b0c9d8e80")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tk.verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAccessTokenVerify(b *testing.B) {
	tk, err := newTokens(testKey, 15*time.Minute, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	tok, _, _ := tk.issue("01938f4e-7c1a-7d2b-9c3e-2a1b0c9d8e7f", "01938f4e-7c1a-7d2b-9c3e-2a1b0c9d8e80")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tk.verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
