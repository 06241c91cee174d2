package auth

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

var cheap = Argon2Params{MemoryKiB: 8, Time: 1, Threads: 1}

func TestPasswordHashFormatAndVerify(t *testing.T) {
	t.Parallel()
	h, err := cheap.hashPassword("hunter2hunter2")
	if err != nil {
		t.Fatal(err)
	}
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=8,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !phc.MatchString(h) {
		t.Fatalf("hash %q is not a PHC argon2id string", h)
	}
	h2, _ := cheap.hashPassword("hunter2hunter2")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt?")
	}
	tests := []struct {
		name       string
		params     Argon2Params // the parameters in force when verifying
		password   string
		ok, rehash bool
	}{
		{"right password", cheap, "hunter2hunter2", true, false},
		{"wrong password", cheap, "hunter2hunter3", false, false},
		{"empty password", cheap, "", false, false},
		{"right password, parameters raised since", Argon2Params{MemoryKiB: 16, Time: 2, Threads: 1}, "hunter2hunter2", true, true},
		{"wrong password, parameters raised since", Argon2Params{MemoryKiB: 16, Time: 2, Threads: 1}, "nope", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, rehash, err := tt.params.verifyPassword(tt.password, h)
			if err != nil || ok != tt.ok || rehash != tt.rehash {
				t.Fatalf("verify = %v, %v, %v; want %v, %v", ok, rehash, err, tt.ok, tt.rehash)
			}
		})
	}
}

func TestParseHashRejectsMalformedHashes(t *testing.T) {
	t.Parallel()
	good, _ := cheap.hashPassword("password1")
	parts := strings.Split(good, "$")
	for name, h := range map[string]string{
		"empty":           "",
		"bcrypt":          "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"argon2i":         strings.Replace(good, "argon2id", "argon2i", 1),
		"other version":   strings.Replace(good, "v=19", "v=16", 1),
		"huge memory":     strings.Replace(good, "m=8", "m=99999999", 1),
		"zero time":       strings.Replace(good, "t=1", "t=0", 1),
		"unknown param":   strings.Replace(good, "p=1", "x=1", 1),
		"bad salt":        strings.Join([]string{"", parts[1], parts[2], parts[3], "!!!", parts[5]}, "$"),
		"short key":       strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], "AAAA"}, "$"),
		"missing section": strings.Join(parts[:5], "$"),
	} {
		if _, err := parseHash(h); err == nil {
			t.Errorf("%s: %q parsed", name, h)
		}
	}
}

func TestHasherDummyNeverMatches(t *testing.T) {
	t.Parallel()
	h, err := newHasher(cheap, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"", "password", h.dummy} {
		if ok, _, err := h.verify(context.Background(), pw, ""); ok || err != nil {
			t.Fatalf("unknown user with %q: ok=%v err=%v", pw, ok, err)
		}
	}
}

func TestHasherRespectsContext(t *testing.T) {
	t.Parallel()
	h, err := newHasher(cheap, 1)
	if err != nil {
		t.Fatal(err)
	}
	h.slots <- struct{}{} // the only slot is busy
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.hash(ctx, "password1"); err == nil {
		t.Fatal("hash with a cancelled context and no free slot succeeded")
	}
}

func BenchmarkPasswordHashDefault(b *testing.B) {
	for b.Loop() {
		if _, err := DefaultArgon2.hashPassword("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPasswordVerifyDefault(b *testing.B) {
	h, err := DefaultArgon2.hashPassword("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, _, err := DefaultArgon2.verifyPassword("correct horse battery staple", h); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
