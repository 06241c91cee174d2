package auth

import (
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/usertext"
)

// Limits of account fields, in characters (runes).
const (
	usernameMin    = 3
	usernameMax    = 32
	passwordMin    = 8
	passwordMax    = 128
	displayNameMax = 64
	bioMax         = 500
	emailMax       = 254
	deviceNameMax  = 64
	userAgentMax   = 256
	loginMax       = emailMax
)

// normalizeUsername checks u (3–32 characters of a-z, A-Z, 0-9, '_' and '.') and lower-cases it.
// The check comes first: some non-ASCII letters (the Kelvin sign) lower-case to ASCII ones.
func normalizeUsername(field, u string) (string, error) {
	if n := len(u); n < usernameMin || n > usernameMax {
		return "", apperr.Invalid(field, "must be 3 to 32 characters long")
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return "", apperr.Invalid(field, "may contain only letters a-z, digits, '_' and '.'")
		}
	}
	return strings.ToLower(u), nil
}

// normalizeEmail lower-cases e and checks that it is a plain address (no display name, no
// comments): local@domain, where domain is one or more dot-separated labels of letters, digits and
// hyphens (a dot-less domain such as "localhost" is allowed).
func normalizeEmail(field, e string) (string, error) {
	e = strings.ToLower(strings.TrimSpace(e))
	if e == "" || len(e) > emailMax || !utf8.ValidString(e) {
		return "", apperr.Invalid(field, "must be an email address of at most 254 characters")
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Name != "" || a.Address != e {
		return "", apperr.Invalid(field, "must be a plain email address such as ana@example.com")
	}
	at := strings.LastIndexByte(e, '@')
	local, domain := e[:at], e[at+1:]
	if local == "" || len(local) > 64 || !validDomain(domain) {
		return "", apperr.Invalid(field, "must be a plain email address such as ana@example.com")
	}
	for _, r := range local {
		if r < 0x21 || r > 0x7e { // printable ASCII only: no quoted spaces, no control characters
			return "", apperr.Invalid(field, "must be a plain email address such as ana@example.com")
		}
	}
	return e, nil
}

func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// normalizeDisplayName trims s and checks it: 1–64 characters of usertext.Name (no control,
// invisible or bidirectional formatting characters).
func normalizeDisplayName(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if n := utf8.RuneCountInString(s); n < 1 || n > displayNameMax {
		return "", apperr.Invalid(field, "must be 1 to 64 characters long")
	}
	if err := usertext.Name.Check(s); err != nil {
		return "", apperr.Invalid(field, err.Error())
	}
	return s, nil
}

// normalizeBio trims s and checks it: at most 500 characters of usertext.Text (line breaks and
// tabs allowed, no other control characters).
func normalizeBio(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > bioMax {
		return "", apperr.Invalid(field, "must be at most 500 characters long")
	}
	if err := usertext.Text.Check(s); err != nil {
		return "", apperr.Invalid(field, err.Error())
	}
	return s, nil
}

// checkPassword checks the only rule for passwords: 8 to 128 characters.
func checkPassword(field, p string) error {
	if n := utf8.RuneCountInString(p); n < passwordMin || n > passwordMax {
		return apperr.Invalid(field, "must be 8 to 128 characters long")
	}
	return nil
}

// normalizeLogin prepares the login field of POST /auth/login: an email when it contains '@',
// otherwise a username. Values that cannot be either are not rejected here: they simply match no
// account and get the same 401 as a wrong password.
func normalizeLogin(login string) (value string, isEmail bool) {
	login = strings.ToLower(strings.TrimSpace(login))
	return login, strings.Contains(login, "@")
}

// cleanDeviceName trims a client-supplied device name; an invalid one is an error.
func cleanDeviceName(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if utf8.RuneCountInString(s) > deviceNameMax {
		return "", apperr.Invalid(field, "must be at most 64 characters")
	}
	if err := usertext.Name.Check(s); err != nil {
		return "", apperr.Invalid(field, err.Error())
	}
	return s, nil
}

// truncateText cuts s to at most n runes and replaces what usertext.Name refuses with spaces,
// for values the client does not choose deliberately (the User-Agent header).
func truncateText(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if n == 0 {
			break
		}
		b.WriteRune(r)
		n--
	}
	return strings.TrimSpace(usertext.Name.Sanitize(b.String()))
}

// deviceFromUserAgent derives a readable device name ("Firefox on Linux", "NeruTalk on Android")
// from a User-Agent header, for sessions whose client did not name itself.
func deviceFromUserAgent(ua string) string {
	if ua == "" {
		return "Unknown device"
	}
	l := strings.ToLower(ua)
	var app string
	switch {
	case strings.Contains(l, "nerutalk"):
		app = "NeruTalk"
	case strings.Contains(l, "edg/"):
		app = "Edge"
	case strings.Contains(l, "opr/") || strings.Contains(l, "opera"):
		app = "Opera"
	case strings.Contains(l, "firefox/"):
		app = "Firefox"
	case strings.Contains(l, "chrome/") || strings.Contains(l, "crios/"):
		app = "Chrome"
	case strings.Contains(l, "safari/"):
		app = "Safari"
	case strings.Contains(l, "okhttp"):
		app = "Android app"
	case strings.Contains(l, "cfnetwork"):
		app = "iOS app"
	}
	var os string
	switch {
	case strings.Contains(l, "android"):
		os = "Android"
	case strings.Contains(l, "iphone"):
		os = "iPhone"
	case strings.Contains(l, "ipad"):
		os = "iPad"
	case strings.Contains(l, "windows"):
		os = "Windows"
	case strings.Contains(l, "mac os") || strings.Contains(l, "macintosh"):
		os = "macOS"
	case strings.Contains(l, "cros"):
		os = "ChromeOS"
	case strings.Contains(l, "linux"):
		os = "Linux"
	}
	switch {
	case app != "" && os != "":
		return app + " on " + os
	case app != "":
		return app
	case os != "":
		return os
	}
	// An unknown client: its first product token ("curl/8.5.0" gives "curl").
	product, _, _ := strings.Cut(ua, " ")
	product, _, _ = strings.Cut(product, "/")
	if product = truncateText(product, 32); product != "" {
		return product
	}
	return "Unknown device"
}

// invalidFields is one validation failure naming every offending field, so that a client fixes
// them all at once.
func invalidFields(fields []apperr.FieldError) *apperr.Error {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = f.Location + ": " + f.Message
	}
	return &apperr.Error{Kind: apperr.KindInvalid, Code: "validation_failed", Detail: strings.Join(parts, "; "), Fields: fields}
}
