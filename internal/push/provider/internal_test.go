package provider

import (
	"crypto/ecdh"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// RFC 8291 Appendix A: the encryption of "When I grow up, I want to be a watermelon".
func TestEncryptWebPushRFC8291Vector(t *testing.T) {
	t.Parallel()
	b := func(s string) []byte {
		v, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	as, err := ecdh.P256().NewPrivateKey(b("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := encryptWebPushWith(as, b("DGv6ra1nlYgDCS1FRnbzlw"), []byte("When I grow up, I want to be a watermelon"),
		b("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"), b("BTBZMqHH6r4Tts7J_aSIgg"))
	if err != nil {
		t.Fatal(err)
	}
	const want = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
	if s := base64.RawURLEncoding.EncodeToString(got); s != want {
		t.Errorf("encrypted\n got %s\nwant %s", s, want)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"86400", 24 * time.Hour},
		{"86401", 24 * time.Hour},
		{"99999999999999999999999", 24 * time.Hour},
		{"-5", 0},
		{"1.5", 0},
		{"soon", 0},
		{"Thu, 03 Dec 2026 12:00:30 GMT", 30 * time.Second},
		{"Thursday, 03-Dec-26 12:01:00 GMT", time.Minute},
		{"Thu Dec  3 12:00:10 2026", 10 * time.Second},
		{"Thu, 03 Dec 2026 11:00:00 GMT", 0},
		{"Thu, 03 Dec 2030 11:00:00 GMT", 24 * time.Hour},
	}
	for _, tt := range tests {
		if got := ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestCollapseID(t *testing.T) {
	t.Parallel()
	if got := collapseID("chat-1_a", 32); got != "chat-1_a" {
		t.Errorf("collapseID(valid) = %q", got)
	}
	long := strings.Repeat("x", 40)
	if got := collapseID(long, 32); len(got) != 32 || got == long[:32] {
		t.Errorf("collapseID(40 x) = %q, want a 32-character digest", got)
	}
	if a, b := collapseID("chat:1", 32), collapseID("chat:2", 32); a == b || strings.Contains(a, ":") {
		t.Errorf("collapseID(chat:1) = %q, collapseID(chat:2) = %q", a, b)
	}
	if collapseID("", 32) != "" {
		t.Error("collapseID(\"\") is not empty")
	}
}

func TestWebPushPlaintextShortensLongBodies(t *testing.T) {
	t.Parallel()
	m := Message{Title: "t", Body: strings.Repeat("é\"", 3000), Data: map[string]string{"chat_id": "c"}}
	b, err := webPushPlaintext(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > WebPushMaxPlaintext || !strings.Contains(string(b), "…") {
		t.Errorf("plaintext of %d bytes (max %d), shortened: %v", len(b), WebPushMaxPlaintext, strings.Contains(string(b), "…"))
	}
	m.Data = map[string]string{"big": strings.Repeat("x", 5000)}
	if _, err := webPushPlaintext(m); err == nil {
		t.Error("a payload whose data alone is too large was accepted")
	}
}
