package chat

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCursorsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []chatCursor{{0, "0190a0a0-0000-7000-8000-000000000001"}, {1_700_000_000_000, "0190a0a0-0000-7000-8000-0000000000ff"}} {
		got, err := parseChatCursor(c.String())
		if err != nil || got != c {
			t.Errorf("chat cursor %+v: got %+v, %v", c, got, err)
		}
	}
	for _, c := range []seqCursor{{true, 0}, {true, 42}, {false, 1}, {false, 1 << 40}} {
		got, err := parseSeqCursor(c.String())
		if err != nil || got != c {
			t.Errorf("seq cursor %+v: got %+v, %v", c, got, err)
		}
	}
	for _, bad := range []string{"", "!", "czE6YTot", seqCursor{false, 5}.String()[:4], chatCursor{1, "x"}.String()} {
		if _, err := parseSeqCursor(bad); err == nil {
			t.Errorf("parseSeqCursor(%q) accepted", bad)
		}
	}
	if _, err := parseChatCursor(seqCursor{true, 5}.String()); err == nil {
		t.Error("a seq cursor passed as a chat cursor")
	}
	for _, c := range []memberCursor{{0, "0190a0a0-0000-7000-8000-000000000001"}, {1_700_000_000_000, "0190a0a0-0000-7000-8000-0000000000ff"}} {
		got, err := parseMemberCursor(c.String())
		if err != nil || got != c {
			t.Errorf("member cursor %+v: got %+v, %v", c, got, err)
		}
	}
	if _, err := parseMemberCursor(chatCursor{1, "0190a0a0-0000-7000-8000-000000000001"}.String()); err == nil {
		t.Error("a chat cursor passed as a member cursor")
	}
}

// FuzzCursors feeds untrusted cursor strings to both parsers: they never panic, and whatever they
// accept encodes back to an equivalent cursor.
func FuzzCursors(f *testing.F) {
	f.Add(chatCursor{5, "id"}.String())
	f.Add(seqCursor{true, 7}.String())
	f.Add("")
	f.Add("YzE6LTE6eA")
	f.Add(memberCursor{5, "0190a0a0-0000-7000-8000-000000000001"}.String())
	f.Fuzz(func(t *testing.T, s string) {
		if c, err := parseMemberCursor(s); err == nil {
			if c.JoinedAt < 0 || c.UserID == "" {
				t.Fatalf("accepted %+v from %q", c, s)
			}
			if again, err := parseMemberCursor(c.String()); err != nil || again != c {
				t.Fatalf("round trip of %+v: %+v %v", c, again, err)
			}
		}
		if c, err := parseChatCursor(s); err == nil {
			if c.At < 0 || c.ID == "" {
				t.Fatalf("accepted %+v from %q", c, s)
			}
			if again, err := parseChatCursor(c.String()); err != nil || again != c {
				t.Fatalf("round trip of %+v: %+v %v", c, again, err)
			}
		}
		if c, err := parseSeqCursor(s); err == nil {
			if c.Seq < 0 || (!c.Forward && c.Seq == 0) {
				t.Fatalf("accepted %+v from %q", c, s)
			}
			if again, err := parseSeqCursor(c.String()); err != nil || again != c {
				t.Fatalf("round trip of %+v: %+v %v", c, again, err)
			}
		}
	})
}

// FuzzSendCommand feeds untrusted send_message data to the decoding and validation of the
// WebSocket command: they never panic, and what they accept is within the limits.
func FuzzSendCommand(f *testing.F) {
	f.Add([]byte(`{"chat_id":"c","client_id":"k","text":"hi"}`))
	f.Add([]byte(`{"chat_id":"c","client_id":"k","kind":"sticker","text":"s","reply_to":"m"}`))
	f.Add([]byte(`{"chat_id":"c","client_id":"","attachment_ids":["a"]}`))
	f.Add([]byte(`{"chat_id":5}`))
	s := &Service{opts: Options{MaxTextChars: 16}}
	f.Fuzz(func(t *testing.T, data []byte) {
		var in SendCommand
		if err := decode(data, &in, &in.ChatID); err != nil {
			return
		}
		if _, err := s.validate(t.Context(), "u", &in.SendInput); err != nil { // no Files: every attachment is refused
			return
		}
		if !validClientID(in.ClientID) || !in.Kind.clientKind() || in.Kind.needsAttachment() ||
			len(in.AttachmentIDs) > 0 || utf8.RuneCountInString(in.Text) > 16 || strings.TrimSpace(in.Text) == "" {
			t.Fatalf("accepted %+v", in)
		}
	})
}
