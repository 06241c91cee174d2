// Package usertext is the one text policy for user-visible fields: what characters a name (a
// display name, a group title, a device name) and a text (a message, a bio) may contain.
//
//   - Every field must be valid UTF-8 and free of control characters (Unicode category Cc: C0,
//     DEL and C1, NUL included); a Text keeps '\n' and '\t'.
//   - A Name also refuses the characters that are invisible or reorder what is shown, so that
//     one name cannot pass for another: format characters (category Cf: zero-width spaces and
//     joiners U+200B..U+200F, the bidirectional embeddings, overrides and isolates U+202A..U+202E
//     and U+2066..U+2069, U+061C, U+FEFF, the tag characters U+E0000..U+E007F, ...), the Hangul
//     fillers U+115F, U+1160, U+3164 and U+FFA0 (letters that render as nothing), and the line
//     and paragraph separators U+2028 and U+2029. The one exception is the zero-width joiner
//     U+200D between two emoji (👨‍👩‍👧, 🏳️‍🌈): there it only joins pictures, which cannot pass for
//     letters.
//
// Message text keeps format characters: right-to-left languages need the marks, emoji need the
// zero-width joiner; clients must show message text in its own bidirectional isolate.
package usertext

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Policy is the rule set of one kind of field.
type Policy uint8

const (
	// Name is for one-line identifiers people read to recognize someone or something: display
	// names, group titles, device names.
	Name Policy = iota + 1
	// Text is for free text: messages, bios. '\n' and '\t' are allowed.
	Text
)

// ErrInvalidUTF8 is the error of Check for bytes that are not UTF-8.
var ErrInvalidUTF8 = errors.New("must be valid UTF-8")

// Check returns nil when s follows the policy, or an error whose message says what is wrong
// (suitable as a validation failure's message: "must not contain control characters (U+0000)").
func (p Policy) Check(s string) error {
	if !utf8.ValidString(s) {
		return ErrInvalidUTF8
	}
	var prev rune
	for i, r := range s {
		if !p.Allows(r) && !(p == Name && emojiJoiner(prev, r, s[i+utf8.RuneLen(r):])) {
			if unicode.IsControl(r) {
				return fmt.Errorf("must not contain control characters (%U)", r)
			}
			return fmt.Errorf("must not contain invisible or bidirectional formatting characters (%U)", r)
		}
		prev = r
	}
	return nil
}

// zwj is the zero-width joiner.
const zwj = '\u200D'

// emojiJoiner reports whether r is a zero-width joiner inside an emoji sequence: after an emoji
// (a pictographic symbol, its variation selector U+FE0F or a skin-tone modifier) and before a
// pictographic symbol.
func emojiJoiner(prev, r rune, rest string) bool {
	if r != zwj {
		return false
	}
	next, size := utf8.DecodeRuneInString(rest)
	if next == utf8.RuneError && size <= 1 { // the end, or not UTF-8
		return false
	}
	return (unicode.Is(unicode.So, prev) || prev == 0xFE0F || prev >= 0x1F3FB && prev <= 0x1F3FF) &&
		unicode.Is(unicode.So, next)
}

// Allows reports whether the policy allows rune r wherever it stands (Check also allows a Name's
// zero-width joiner inside an emoji sequence). utf8.RuneError is allowed (it is a visible
// replacement character); Check refuses invalid UTF-8 separately.
func (p Policy) Allows(r rune) bool {
	if unicode.IsControl(r) {
		return p == Text && (r == '\n' || r == '\t')
	}
	if p == Text {
		return true
	}
	switch {
	case unicode.Is(unicode.Cf, r),
		r >= 0xE0000 && r <= 0xE007F,                       // tags (E0000 is unassigned, so not in Cf)
		r == 0x115F, r == 0x1160, r == 0x3164, r == 0xFFA0, // Hangul fillers
		r == 0x2028, r == 0x2029: // line and paragraph separators
		return false
	}
	return true
}

// Sanitize returns s with invalid UTF-8 replaced by U+FFFD and every rune the policy refuses
// replaced by a space, for values the client does not choose deliberately (a User-Agent header).
func (p Policy) Sanitize(s string) string {
	out := make([]rune, 0, len(s))
	var prev rune
	for i, r := range s {
		if !p.Allows(r) && !(p == Name && emojiJoiner(prev, r, s[i+utf8.RuneLen(r):])) {
			r = ' '
		}
		out = append(out, r)
		prev = r
	}
	return string(out)
}
