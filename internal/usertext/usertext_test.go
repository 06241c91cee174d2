package usertext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		s        string
		nameOK   bool
		textOK   bool
		contains string // part of the Name error, when it fails
	}{
		{"empty", "", true, true, ""},
		{"plain", "Ana Silva", true, true, ""},
		{"accents and scripts", "Zoë Ñandú 山田 Ελένη عمر", true, true, ""},
		{"emoji", "party 🎉", true, true, ""},
		{"newline", "a\nb", false, true, "U+000A"},
		{"tab", "a\tb", false, true, "U+0009"},
		{"carriage return", "a\rb", false, false, "U+000D"},
		{"NUL", "a\x00b", false, false, "U+0000"},
		{"ESC", "a\x1b[31mred", false, false, "control"},
		{"BEL", "ding\a", false, false, "control"},
		{"DEL", "a\x7fb", false, false, "control"},
		{"C1 control", "a\u0085b", false, false, "control"},
		{"right-to-left override", "abc\u202Etxt.exe", false, true, "U+202E"},
		{"left-to-right embedding", "\u202Aabc", false, true, "bidirectional"},
		{"first strong isolate", "a\u2068b\u2069", false, true, "U+2068"},
		{"zero-width space", "ad\u200Bmin", false, true, "U+200B"},
		{"zero-width joiner between letters", "ad\u200Dmin", false, true, "U+200D"},
		{"zero-width joiner at the end", "👨\u200D", false, true, "U+200D"},
		{"zero-width joiner after a letter", "a\u200D👩", false, true, "U+200D"},
		{"zero-width joiner before a letter", "👨\u200Da", false, true, "U+200D"},
		{"family emoji", "Ana 👨\u200D👩\u200D👧", true, true, ""},
		{"rainbow flag", "🏳\uFE0F\u200D🌈", true, true, ""},
		{"skin tone and joiner", "👩\U0001F3FD\u200D💻", true, true, ""},
		{"left-to-right mark", "a\u200E", false, true, "U+200E"},
		{"right-to-left mark", "a\u200F", false, true, "U+200F"},
		{"byte order mark", "\uFEFFadmin", false, true, "U+FEFF"},
		{"arabic letter mark", "a\u061Cb", false, true, "U+061C"},
		{"word joiner", "a\u2060b", false, true, "U+2060"},
		{"soft hyphen", "ad\u00ADmin", false, true, "U+00AD"},
		{"tag character", "a\U000E0041b", false, true, "U+E0041"},
		{"tag range start", "a\U000E0000b", false, true, "U+E0000"},
		{"cancel tag", "a\U000E007Fb", false, true, "U+E007F"},
		{"hangul filler", "\u3164", false, true, "U+3164"},
		{"hangul choseong filler", "\u115F", false, true, "U+115F"},
		{"hangul jungseong filler", "\u1160", false, true, "U+1160"},
		{"halfwidth hangul filler", "\uFFA0", false, true, "U+FFA0"},
		{"line separator", "a\u2028b", false, true, "U+2028"},
		{"paragraph separator", "a\u2029b", false, true, "U+2029"},
		{"hangul syllables", "한국어", true, true, ""},
		{"invalid utf-8", "a\xffb", false, false, "UTF-8"},
		{"replacement character itself", "a\uFFFDb", true, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Name.Check(tt.s)
			if (err == nil) != tt.nameOK {
				t.Errorf("Name.Check(%q) = %v, want ok=%v", tt.s, err, tt.nameOK)
			}
			if err != nil && !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("Name.Check(%q) = %q, want it to mention %q", tt.s, err, tt.contains)
			}
			if err := Text.Check(tt.s); (err == nil) != tt.textOK {
				t.Errorf("Text.Check(%q) = %v, want ok=%v", tt.s, err, tt.textOK)
			}
		})
	}
}

func TestSanitize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Mozilla/5.0":     "Mozilla/5.0",
		"a\x00b\u202Ec":   "a b c",
		"bad\xff":         "bad\uFFFD",
		"tab\there":       "tab here",
		"zero\u200Bwidth": "zero width",
	} {
		if got := Name.Sanitize(in); got != want {
			t.Errorf("Name.Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Text.Sanitize("a\tb\nc\x00"); got != "a\tb\nc " {
		t.Errorf("Text.Sanitize = %q", got)
	}
}

// FuzzPolicy: Check and Sanitize agree. What Sanitize returns always passes Check, a string that
// passes Check comes back from Sanitize unchanged, and Name is never more lenient than Text.
func FuzzPolicy(f *testing.F) {
	for _, s := range []string{"", "Ana", "a\x00b", "a\u202Eb", "\U000E0041", "\u3164", "x\n\ty", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range []Policy{Name, Text} {
			clean := p.Sanitize(s)
			if err := p.Check(clean); err != nil {
				t.Fatalf("policy %d: Sanitize(%q) = %q fails Check: %v", p, s, clean, err)
			}
			if utf8.RuneCountInString(clean) != utf8.RuneCountInString(s) {
				t.Fatalf("policy %d: Sanitize changed the length of %q to %q", p, s, clean)
			}
			if p.Check(s) == nil && clean != s {
				t.Fatalf("policy %d: Sanitize changed an allowed string %q to %q", p, s, clean)
			}
		}
		if Name.Check(s) == nil && Text.Check(s) != nil {
			t.Fatalf("%q passes Name but not Text", s)
		}
	})
}
