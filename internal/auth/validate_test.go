package auth

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/usertext"
)

func TestNormalizeUsername(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"ana", "ana", true},
		{"Ana.Silva_99", "ana.silva_99", true},
		{"abc", "abc", true},
		{strings.Repeat("z", 32), strings.Repeat("z", 32), true},
		{"ab", "", false},
		{strings.Repeat("z", 33), "", false},
		{"ana silva", "", false},
		{"ana-silva", "", false},
		{"anä", "", false},
		{"ana@x", "", false},
		{"", "", false},
		{"K\u212aK", "", false}, // the Kelvin sign lower-cases to 'k' in Unicode: still refused
	}
	for _, tt := range tests {
		got, err := normalizeUsername("body.username", tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("normalizeUsername(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && apperr.KindOf(err) != apperr.KindInvalid {
			t.Errorf("normalizeUsername(%q): error kind %v, want invalid", tt.in, apperr.KindOf(err))
		}
	}
}

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"ana@example.com", "ana@example.com", true},
		{" Ana.Silva+chat@Example.COM ", "ana.silva+chat@example.com", true},
		{"root@localhost", "root@localhost", true},
		{"a@b-c.d", "a@b-c.d", true},
		{"ana", "", false},
		{"@example.com", "", false},
		{"ana@", "", false},
		{"ana@@example.com", "", false},
		{"ana@exa mple.com", "", false},
		{"Ana <ana@example.com>", "", false},
		{"<ana@example.com>", "", false},
		{"ana@example..com", "", false},
		{"ana@.example.com", "", false},
		{"ana@-example.com", "", false},
		{"ana@example.com-", "", false},
		{"ana@exämple.com", "", false},
		{`"a b"@example.com`, "", false},
		{"ana@[127.0.0.1]", "", false},
		{"ana@example.com (comment)", "", false},
		{strings.Repeat("a", 65) + "@example.com", "", false},
		{"a@" + strings.Repeat("b", 250) + ".com", "", false},
	}
	for _, tt := range tests {
		got, err := normalizeEmail("body.email", tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("normalizeEmail(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestNormalizeDisplayNameAndBio(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"Ana", "Ana", true},
		{"  Ana Silva \t", "Ana Silva", true},
		{"李小龍 🐉", "李小龍 🐉", true},
		{"👨\u200d👩\u200d👧", "👨\u200d👩\u200d👧", true}, // a joiner between emoji only joins pictures
		{strings.Repeat("é", 64), strings.Repeat("é", 64), true},
		{strings.Repeat("é", 65), "", false},
		{"", "", false},
		{"   ", "", false},
		{"Ana\nSilva", "", false},
		{"Ana\x00", "", false},
		{"An\u0085a", "", false},
		{"Ana\u202eavliS", "", false},
		{"Ana\u2066", "", false},
		{"ad\u200dmin", "", false},
		{"ad\u200bmin", "", false},
		{"Ana\u200e", "", false},
		{"\ufeffAna", "", false},
		{"A\u061cna", "", false},
		{"Ana\U000E0041", "", false},
		{"\u3164", "", false},
		{"Ana\x1b[31m", "", false},
		{"\xff", "", false},
	} {
		got, err := normalizeDisplayName("body.display_name", tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("normalizeDisplayName(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"  hello\nworld  ", "hello\nworld", true},
		{strings.Repeat("b", 500), strings.Repeat("b", 500), true},
		{strings.Repeat("b", 501), "", false},
		{"tab\tinside", "tab\tinside", true},
		{"nul\x00", "", false},
		{"esc\x1b[2J", "", false},
		{"bell\a", "", false},
	} {
		got, err := normalizeBio("body.bio", tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("normalizeBio(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"12345678", true},
		{"        ", true}, // no rules beyond the length
		{"ääääääää", true}, // characters, not bytes
		{strings.Repeat("p", 128), true},
		{"1234567", false},
		{"äääääää", false},
		{strings.Repeat("p", 129), false},
	} {
		if err := checkPassword("body.password", tt.in); (err == nil) != tt.ok {
			t.Errorf("checkPassword(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func TestDeviceFromUserAgent(t *testing.T) {
	t.Parallel()
	for ua, want := range map[string]string{
		"": "Unknown device",
		"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0":                                                                  "Firefox on Linux",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36":                         "Chrome on Windows",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0":           "Edge on Windows",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1": "Safari on iPhone",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15":                      "Safari on macOS",
		"NeruTalk/1.2.0 (Android 14; Pixel 8)": "NeruTalk on Android",
		"okhttp/4.12.0":                        "Android app",
		"curl/8.5.0":                           "curl",
		"\x00\x01":                             "Unknown device",
	} {
		if got := deviceFromUserAgent(ua); got != want {
			t.Errorf("deviceFromUserAgent(%q) = %q, want %q", ua, got, want)
		}
	}
}

func TestTruncateText(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 3, "hel"},
		{"héllo", 2, "hé"},
		{"a\x00b\nc", 10, "a b c"},
		{"\xffab", 10, "\uFFFDab"},
	} {
		if got := truncateText(tt.in, tt.n); got != tt.want {
			t.Errorf("truncateText(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestIPKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"203.0.113.7":          "203.0.113.7",
		"::ffff:203.0.113.7":   "203.0.113.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"not an address":       "not an address",
		"fe80::1%eth0":         "fe80::/64",
		"2001:db8:1:3:0:0:0:1": "2001:db8:1:3::/64",
	} {
		if got := ipKey(in); got != want {
			t.Errorf("ipKey(%q) = %q, want %q", in, got, want)
		}
	}
	if got := remoteIP("[2001:db8::1]:443"); got != "2001:db8::1" {
		t.Errorf("remoteIP = %q", got)
	}
	if got := remoteIP("pipe"); got != "pipe" {
		t.Errorf("remoteIP(pipe) = %q", got)
	}
}

var usernameRE = regexp.MustCompile(`^[a-z0-9_.]{3,32}$`)

// FuzzValidateRegister feeds arbitrary registration fields to the validation that guards the
// database: it must never panic, and what it accepts must satisfy the documented rules.
func FuzzValidateRegister(f *testing.F) {
	f.Add("ana.silva", "Ana@Example.com", "correct horse", "Ana Silva", "phone")
	f.Add("ab", "x", "short", "", "")
	f.Add("ÄÖÜ", "a@b", strings.Repeat("p", 200), "\u202e", "\x00")
	f.Add("K\u212aK", "\"a b\"@c.d", "pässwörd", "  ", strings.Repeat("d", 70))
	f.Fuzz(func(t *testing.T, username, email, pw, display, device string) {
		a, dev, err := validateRegister(registerRequest{Username: username, Email: email, Password: pw, DisplayName: display, DeviceName: device})
		if err != nil {
			var ae *apperr.Error
			if !errors.As(err, &ae) || ae.Kind != apperr.KindInvalid || len(ae.Fields) == 0 {
				t.Fatalf("error %v is not a validation failure naming fields", err)
			}
			seen := map[string]bool{}
			for _, f := range ae.Fields {
				if seen[f.Location] || !strings.HasPrefix(f.Location, "body.") || f.Message == "" {
					t.Fatalf("error %v: field errors %+v, want each field once, with a message", err, ae.Fields)
				}
				seen[f.Location] = true
			}
			return
		}
		if !usernameRE.MatchString(a.Username) {
			t.Fatalf("accepted username %q", a.Username)
		}
		if a.Email != strings.ToLower(a.Email) || strings.Count(a.Email, "@") != 1 || len(a.Email) > emailMax || strings.ContainsAny(a.Email, " <>\"") {
			t.Fatalf("accepted email %q", a.Email)
		}
		if n := utf8.RuneCountInString(pw); n < passwordMin || n > passwordMax {
			t.Fatalf("accepted a password of %d characters", n)
		}
		if n := utf8.RuneCountInString(a.DisplayName); n < 1 || n > displayNameMax || a.DisplayName != strings.TrimSpace(a.DisplayName) || usertext.Name.Check(a.DisplayName) != nil {
			t.Fatalf("accepted display name %q", a.DisplayName)
		}
		if utf8.RuneCountInString(dev) > deviceNameMax || usertext.Name.Check(dev) != nil {
			t.Fatalf("accepted device name %q", dev)
		}
		// Normalising is idempotent.
		again, _, err := validateRegister(registerRequest{Username: a.Username, Email: a.Email, Password: pw, DisplayName: a.DisplayName, DeviceName: dev})
		if err != nil || again.Username != a.Username || again.Email != a.Email || again.DisplayName != a.DisplayName {
			t.Fatalf("normalised values do not validate to themselves: %+v, %v", again, err)
		}
	})
}

// FuzzNormalizeLogin checks the login field: any input is either an email or a username lookup,
// lower-cased and trimmed, without panicking.
func FuzzNormalizeLogin(f *testing.F) {
	f.Add("Ana.Silva")
	f.Add(" ana@EXAMPLE.com ")
	f.Add("\xff@\x00")
	f.Fuzz(func(t *testing.T, login string) {
		v, isEmail := normalizeLogin(login)
		if v != strings.TrimSpace(v) || v != strings.ToLower(v) {
			t.Fatalf("normalizeLogin(%q) = %q", login, v)
		}
		if isEmail != strings.Contains(v, "@") {
			t.Fatalf("normalizeLogin(%q): isEmail=%v", login, isEmail)
		}
	})
}
