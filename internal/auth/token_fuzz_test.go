package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fuzzNow is the clock of the token fuzz targets.
var fuzzNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// checkVerified holds for every answer of verify: a 401 of one of the two kinds, or claims that
// satisfy every rule the Authenticator relies on.
func checkVerified(t *testing.T, in string, c *accessClaims, err error) {
	t.Helper()
	if err != nil {
		if c != nil {
			t.Fatalf("verify(%q): claims %+v with error %v", in, c, err)
		}
		if !errors.Is(err, errTokenInvalid) && !errors.Is(err, errTokenExpired) {
			t.Fatalf("verify(%q): error %v is neither invalid_token nor token_expired", in, err)
		}
		return
	}
	switch {
	case c.Subject == "" || c.SessionID == "" || c.ID == "":
		t.Fatalf("verify(%q) accepted claims without sub, sid or jti: %+v", in, c)
	case c.Issuer != tokenIssuer || !slices.Contains(c.Audience, tokenAudience):
		t.Fatalf("verify(%q) accepted iss %q aud %v", in, c.Issuer, c.Audience)
	case c.ExpiresAt == nil || !fuzzNow.Before(c.ExpiresAt.Add(clockLeeway)):
		t.Fatalf("verify(%q) accepted an expired token or one without exp: %+v", in, c.ExpiresAt)
	case c.IssuedAt == nil || c.IssuedAt.After(fuzzNow.Add(clockLeeway)):
		t.Fatalf("verify(%q) accepted a token without iat or issued in the future: %+v", in, c.IssuedAt)
	}
}

// FuzzVerifyToken verifies arbitrary strings as access tokens: never a panic, and anything
// accepted is a token signed with the key whose claims pass every rule (which, for a string the
// fuzzer made up, means it found a forgery: that fails too, unless it is one of the seeds the
// target issued itself).
func FuzzVerifyToken(f *testing.F) {
	tk, err := newTokens(testKey, 15*time.Minute, fixedClock(fuzzNow))
	if err != nil {
		f.Fatal(err)
	}
	// A genuine token with a fixed jti: issue draws a random one, and the seeds must be the same
	// in every fuzzing process (the workers recompute them).
	good, err := jwt.NewWithClaims(jwt.SigningMethodHS256, accessClaims{
		SessionID: "0190a3e0-0000-7000-8000-000000000002",
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: tokenIssuer, Subject: "0190a3e0-0000-7000-8000-000000000001",
			Audience: jwt.ClaimStrings{tokenAudience}, ID: "0190a3e0-0000-7000-8000-000000000003",
			IssuedAt: jwt.NewNumericDate(fuzzNow), ExpiresAt: jwt.NewNumericDate(fuzzNow.Add(15 * time.Minute)),
		},
	}).SignedString(testKey)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := tk.verify(good); err != nil {
		f.Fatalf("the genuine seed does not verify: %v", err)
	}
	for _, s := range []string{
		good, good + "x", good[:len(good)-2], "", ".", "..", "a.b.c", "Bearer " + good,
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
		"eyJhbGciOiJIUzI1NiJ9.e30.",
		"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.c2ln",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := tk.verify(s)
		checkVerified(t, s, c, err)
		if err == nil && s != good {
			// A different string may still be the same token (base64 padding bits); it must
			// carry the same claims, or it is a forgery.
			want, _ := tk.verify(good)
			if c.ID != want.ID || c.Subject != want.Subject || c.SessionID != want.SessionID {
				t.Fatalf("verify accepted a forged token %q: %+v", s, c)
			}
		}
	})
}

// FuzzVerifyClaims signs arbitrary header and claims JSON with the real key (what an attacker
// cannot do, and what a bug in the issuer might): verify must never panic, and must accept only
// claims that satisfy every rule, whatever their JSON types, duplicates or sizes.
func FuzzVerifyClaims(f *testing.F) {
	tk, err := newTokens(testKey, 15*time.Minute, fixedClock(fuzzNow))
	if err != nil {
		f.Fatal(err)
	}
	now := fuzzNow.Unix()
	hdr := `{"alg":"HS256","typ":"JWT"}`
	for _, c := range []string{
		`{"iss":"nerutalk","aud":["nerutalk-access"],"sub":"u","sid":"s","jti":"j","iat":` + itoa(now) + `,"exp":` + itoa(now+900) + `}`,
		`{"iss":"nerutalk","aud":"nerutalk-access","sub":"u","sid":"s","jti":"j","iat":` + itoa(now) + `,"exp":` + itoa(now-900) + `}`,
		`{"iss":"nerutalk","aud":["x","nerutalk-access"],"sub":"u","sid":"s","jti":"j","iat":1e300,"exp":1e300}`,
		`{"iss":"nerutalk","aud":["nerutalk-access"],"sub":1,"sid":null,"jti":[],"iat":"0","exp":-1}`,
		`{"iss":"nerutalk","aud":["nerutalk-access"],"sub":"u","sid":"s","jti":"j","iat":` + itoa(now) + `.5,"exp":9223372036854775807}`,
		`{"iss":"nerutalk","aud":["nerutalk-access"],"sub":"u","sid":"s","sid":"","jti":"j","iat":` + itoa(now) + `,"exp":` + itoa(now+900) + `}`,
		`{"exp":NaN}`, `[]`, `null`, ``, `{"aud":{}}`, "\xff",
	} {
		f.Add(hdr, c)
	}
	f.Add(`{"alg":"none"}`, `{}`)
	f.Add(`{"alg":"HS256","crit":["x"],"x":1}`, `{}`)
	f.Add(`{"alg":"HS256","kid":"../../etc/passwd"}`, `{}`)
	f.Fuzz(func(t *testing.T, header, claims string) {
		enc := base64.RawURLEncoding.EncodeToString
		in := enc([]byte(header)) + "." + enc([]byte(claims))
		m := hmac.New(sha256.New, testKey)
		m.Write([]byte(in))
		tok := in + "." + enc(m.Sum(nil))
		c, err := tk.verify(tok)
		checkVerified(t, tok, c, err)
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
