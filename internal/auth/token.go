package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/nerutalk/nerutalk/internal/apperr"
)

const (
	tokenIssuer   = "nerutalk"
	tokenAudience = "nerutalk-access"
	// clockLeeway is the clock skew tolerated between nodes, for exp and iat alike.
	clockLeeway = 5 * time.Second
	// maxTokenLen caps what the parser is asked to look at; our tokens are about 350 bytes.
	maxTokenLen = 4096
)

// The 401 answers of the Authenticator.
var (
	errTokenExpired = apperr.New(apperr.KindUnauthenticated, "token_expired", "the access token has expired; refresh it")
	errTokenInvalid = apperr.New(apperr.KindUnauthenticated, "invalid_token", "the access token is not valid")
)

// accessClaims are the claims of an access token: sub (user id), sid (session id), iat, exp, jti,
// plus iss and aud so that no other token signed with the same key passes for an access token.
type accessClaims struct {
	SessionID string `json:"sid"`
	jwt.RegisteredClaims
}

// tokens issues and verifies access tokens: JWTs signed with HS256 and nothing else.
type tokens struct {
	key    []byte
	ttl    time.Duration
	now    func() time.Time
	parser *jwt.Parser
}

func newTokens(key []byte, ttl time.Duration, now func() time.Time) (*tokens, error) {
	if len(key) < 32 {
		return nil, errors.New("auth: the signing key must be at least 32 bytes")
	}
	if ttl <= 0 {
		return nil, errors.New("auth: the access token lifetime must be positive")
	}
	t := &tokens{key: key, ttl: ttl, now: now}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithAudience(tokenAudience),
		jwt.WithLeeway(clockLeeway),
		jwt.WithTimeFunc(func() time.Time { return t.now() }),
	)
	return t, nil
}

// issue signs an access token for the session and returns it with its expiry.
func (t *tokens) issue(userID, sessionID string) (string, time.Time, error) {
	now := t.now().Truncate(time.Second)
	exp := now.Add(t.ttl)
	c := accessClaims{
		SessionID: sessionID,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuer,
			Subject:   userID,
			Audience:  jwt.ClaimStrings{tokenAudience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        uuid.NewString(),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign access token: %w", err)
	}
	return s, exp, nil
}

// verify checks the signature (HS256 only), the registered claims and the presence of sub, sid,
// iat and jti. It answers errTokenExpired for a genuine token past its expiry and errTokenInvalid
// for anything else.
func (t *tokens) verify(token string) (*accessClaims, error) {
	if len(token) > maxTokenLen {
		return nil, errTokenInvalid
	}
	var c accessClaims
	_, err := t.parser.ParseWithClaims(token, &c, func(tok *jwt.Token) (any, error) {
		if m, ok := tok.Method.(*jwt.SigningMethodHMAC); !ok || m != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("unexpected signing method %v", tok.Header["alg"])
		}
		return t.key, nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired) && !errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, errTokenExpired
	case err != nil:
		return nil, errTokenInvalid
	}
	if c.Subject == "" || c.SessionID == "" || c.ID == "" || c.IssuedAt == nil {
		return nil, errTokenInvalid
	}
	return &c, nil
}

// newRefreshToken returns a fresh refresh token (256 random bits, base64url) and its stored hash.
func newRefreshToken() (token, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("auth: refresh token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, hashRefreshToken(token), nil
}

// hashRefreshToken is how a refresh token is found in the database: only its SHA-256 is stored, so
// a leaked database does not leak usable tokens. (A fast hash is right here: the token has 256
// bits of entropy, nothing to brute-force.)
func hashRefreshToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
