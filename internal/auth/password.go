package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters. They are written into every hash (PHC string
// format), so they can be raised at any time: old hashes keep verifying and are rehashed with the
// new parameters at the owner's next successful login.
type Argon2Params struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
}

// DefaultArgon2 is OWASP's recommended minimum for argon2id (19 MiB, 2 passes, 1 lane).
var DefaultArgon2 = Argon2Params{MemoryKiB: 19456, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
)

var b64 = base64.RawStdEncoding // the PHC string format's base64 (no padding)

// errBadHash reports a stored hash that cannot be parsed (a corrupt row, not a client error).
var errBadHash = errors.New("auth: malformed password hash")

// hashPassword derives a new salted argon2id hash of password in PHC form:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func (p Argon2Params) hashPassword(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

type parsedHash struct {
	params    Argon2Params
	salt, key []byte
}

// parseHash reads a PHC argon2id string. It refuses parameters no hash of ours would have, so that
// a corrupt row cannot make a login allocate gigabytes.
func parseHash(encoded string) (parsedHash, error) {
	var h parsedHash
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return h, errBadHash
	}
	var m, t, p uint64
	for _, kv := range strings.Split(parts[3], ",") {
		name, val, ok := strings.Cut(kv, "=")
		if !ok {
			return h, errBadHash
		}
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return h, errBadHash
		}
		switch name {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			p = n
		default:
			return h, errBadHash
		}
	}
	if m < 8 || m > 4<<20 || t < 1 || t > 64 || p < 1 || p > 255 {
		return h, errBadHash
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return h, errBadHash
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 128 {
		return h, errBadHash
	}
	h.params = Argon2Params{MemoryKiB: uint32(m), Time: uint32(t), Threads: uint8(p)}
	h.salt, h.key = salt, key
	return h, nil
}

// verifyPassword reports whether password matches encoded (in constant time) and whether the hash
// was made with parameters other than p, so it should be replaced.
func (p Argon2Params) verifyPassword(password, encoded string) (ok, rehash bool, err error) {
	h, err := parseHash(encoded)
	if err != nil {
		return false, false, err
	}
	key := argon2.IDKey([]byte(password), h.salt, h.params.Time, h.params.MemoryKiB, h.params.Threads, uint32(len(h.key)))
	ok = subtle.ConstantTimeCompare(key, h.key) == 1
	return ok, ok && (h.params != p || len(h.key) != keyLen || len(h.salt) != saltLen), nil
}

// hasher runs password hashing with bounded concurrency: each argon2id call allocates MemoryKiB,
// so a burst of logins must queue rather than exhaust memory.
type hasher struct {
	params Argon2Params
	slots  chan struct{}
	dummy  string // a hash of a random password, verified for unknown users so they cost the same
}

func newHasher(p Argon2Params, concurrency int) (*hasher, error) {
	h := &hasher{params: p, slots: make(chan struct{}, max(1, concurrency))}
	var pw [24]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return nil, fmt.Errorf("auth: dummy password: %w", err)
	}
	dummy, err := p.hashPassword(b64.EncodeToString(pw[:]))
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("auth: waiting to hash: %w", ctx.Err())
	}
}

func (h *hasher) release() { <-h.slots }

// hash hashes a new password with the configured parameters.
func (h *hasher) hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.params.hashPassword(password)
}

// verify checks password against encoded; an empty encoded (unknown user) is checked against the
// dummy hash and never matches, at the same cost as a real check.
func (h *hasher) verify(ctx context.Context, password, encoded string) (ok, rehash bool, err error) {
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	if encoded == "" {
		_, _, err := h.params.verifyPassword(password, h.dummy)
		return false, false, err
	}
	return h.params.verifyPassword(password, encoded)
}
