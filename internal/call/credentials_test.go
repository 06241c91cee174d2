package call_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/nerutalk/nerutalk/internal/call"
	"github.com/nerutalk/nerutalk/internal/call/agora"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 500_000_000, time.UTC)

// TestTURNCredential checks the coturn REST form against a value computed independently:
// printf '1764763200:user-1' | openssl dgst -sha1 -hmac 'north' -binary | base64
func TestTURNCredential(t *testing.T) {
	t.Parallel()
	user, cred := call.TURNCredential([]byte("north"), "user-1", time.Unix(1764763200, 0))
	if user != "1764763200:user-1" {
		t.Errorf("username = %q", user)
	}
	if want := "MuQo32kAoxozkKpZcCStXcHWW8c="; cred != want {
		t.Errorf("credential = %q, want %q", cred, want)
	}
	// And with the standard library spelled out once more.
	h := hmac.New(sha1.New, []byte("north"))
	h.Write([]byte(user))
	if cred != base64.StdEncoding.EncodeToString(h.Sum(nil)) {
		t.Error("differs from HMAC-SHA1")
	}
}

func TestP2P(t *testing.T) {
	t.Parallel()
	p, err := call.NewProvider(call.ProviderOptions{TTL: time.Hour, STUNURLs: []string{"stun:stun.example.org:3478"},
		TURNURLs: []string{"turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"}, TURNSecret: "north"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Issue(call.Grant{Channel: "ch", UserID: "u1", Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	exp := t0.Add(time.Hour).Truncate(time.Second)
	user, cred := call.TURNCredential([]byte("north"), "u1", exp)
	want := call.Credentials{Provider: "p2p", Channel: "ch", ExpiresAt: exp, ICEServers: []call.ICEServer{
		{URLs: []string{"stun:stun.example.org:3478"}},
		{URLs: []string{"turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"}, Username: user, Credential: cred},
	}}
	if d := cmp.Diff(want, c); d != "" {
		t.Errorf("credentials (-want +got):\n%s", d)
	}
	if _, err := call.NewProvider(call.ProviderOptions{TURNURLs: []string{"turn:x"}}); err == nil {
		t.Error("TURN without secret accepted")
	}
	// Nothing configured: an empty list, not null.
	p, _ = call.NewProvider(call.ProviderOptions{})
	c, _ = p.Issue(call.Grant{Channel: "ch", UserID: "u1", Now: t0})
	if c.ICEServers == nil || len(c.ICEServers) != 0 {
		t.Errorf("ice servers %v", c.ICEServers)
	}
}

func TestLiveKit(t *testing.T) {
	t.Parallel()
	p, err := call.NewProvider(call.ProviderOptions{Name: "livekit", TTL: 30 * time.Minute,
		LiveKitURL: "wss://lk.example.org", LiveKitAPIKey: "APIkey1", LiveKitAPISecret: "secret-of-32-bytes-at-least-xxxx"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Issue(call.Grant{Channel: "nerutalk-c1", UserID: "u1", DisplayName: "Ana", Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if c.Provider != "livekit" || c.URL != "wss://lk.example.org" || c.Channel != "nerutalk-c1" ||
		!c.ExpiresAt.Equal(t0.Truncate(time.Second).Add(30*time.Minute)) {
		t.Errorf("credentials %+v", c)
	}
	var claims map[string]any
	tok, err := jwt.Parse(c.Token, func(tk *jwt.Token) (any, error) { return []byte("secret-of-32-bytes-at-least-xxxx"), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	claims = tok.Claims.(jwt.MapClaims)
	want := map[string]any{
		"iss": "APIkey1", "sub": "u1", "jti": "u1", "name": "Ana",
		"nbf": float64(t0.Truncate(time.Second).Unix()), "exp": float64(t0.Truncate(time.Second).Add(30 * time.Minute).Unix()),
		"video": map[string]any{"room": "nerutalk-c1", "roomJoin": true, "canPublish": true, "canSubscribe": true},
	}
	if d := cmp.Diff(want, claims); d != "" {
		t.Errorf("claims (-want +got):\n%s", d)
	}
	if tok.Header["alg"] != "HS256" {
		t.Errorf("alg %v", tok.Header["alg"])
	}
	if _, err := jwt.Parse(c.Token, func(*jwt.Token) (any, error) { return []byte("other"), nil }); err == nil {
		t.Error("verified with another secret")
	}
	if _, err := call.NewProvider(call.ProviderOptions{Name: "livekit", LiveKitURL: "wss://x"}); err == nil {
		t.Error("livekit without key accepted")
	}
}

func TestAgoraProvider(t *testing.T) {
	t.Parallel()
	const id, cert = "970CA35de60c44645bbae8a215061b33", "5CFd2fd1755d40ecb72977518be15d3b"
	p, err := call.NewProvider(call.ProviderOptions{Name: "agora", TTL: time.Hour, PrivilegeTTL: 20 * time.Minute,
		AgoraAppID: id, AgoraAppCertificate: cert})
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Issue(call.Grant{Channel: "nerutalk-c1", UserID: "u1", UID: 3, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if c.AppID != id || c.UID == nil || *c.UID != 3 || !c.ExpiresAt.Equal(t0.Truncate(time.Second).Add(20*time.Minute)) {
		t.Errorf("credentials %+v", c)
	}
	tok, err := agora.Verify(c.Token, cert)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Channel != "nerutalk-c1" || tok.UID != "3" || tok.IssueTs != uint32(t0.Unix()) || tok.Expire != 3600 ||
		tok.Privileges[agora.PrivilegeJoinChannel] != 1200 || tok.Privileges[agora.PrivilegePublishVideoStream] != 1200 {
		t.Errorf("token %+v", tok)
	}
	if _, err := call.NewProvider(call.ProviderOptions{Name: "agora", AgoraAppID: "x"}); err == nil {
		t.Error("bad agora app id accepted")
	}
}
