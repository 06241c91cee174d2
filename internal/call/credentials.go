package call

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/nerutalk/nerutalk/internal/call/agora"
)

// The media providers (NERUTALK_CALLS_PROVIDER).
const (
	ProviderP2P     = "p2p"
	ProviderAgora   = "agora"
	ProviderLiveKit = "livekit"
)

// ICEServer is one entry of RTCConfiguration.iceServers.
type ICEServer struct {
	URLs       []string `json:"urls" doc:"stun:, turn: or turns: URLs"`
	Username   string   `json:"username,omitempty" doc:"TURN: <expiry unix seconds>:<user id>"`
	Credential string   `json:"credential,omitempty" doc:"TURN: base64(HMAC-SHA1(NERUTALK_TURN_SECRET, username))"`
}

// Credentials let one participant join a call's media: what a client hands to its provider's SDK.
type Credentials struct {
	Provider  string    `json:"provider" enum:"p2p,agora,livekit"`
	Channel   string    `json:"channel" doc:"The call's channel (Agora channel, LiveKit room)"`
	ExpiresAt time.Time `json:"expires_at" doc:"Ask POST /calls/{id}/token for fresh credentials before this"`
	// agora
	AppID string  `json:"app_id,omitempty" doc:"agora: the app id"`
	UID   *uint32 `json:"uid,omitempty" doc:"agora: the participant's numeric uid, stable within the call"`
	// agora (AccessToken2 "007...") and livekit (JWT)
	Token string `json:"token,omitempty" doc:"agora: AccessToken2; livekit: access token (JWT)"`
	// livekit
	URL string `json:"url,omitempty" doc:"livekit: the server URL"`
	// p2p
	ICEServers []ICEServer `json:"ice_servers,omitempty" doc:"p2p: STUN and TURN servers for RTCPeerConnection"`
}

// Grant is what credentials are issued for.
type Grant struct {
	Channel     string
	UserID      string
	DisplayName string
	UID         uint32 // agora uid (1..)
	Now         time.Time
}

// Provider issues media credentials.
type Provider interface {
	Name() string
	Issue(g Grant) (Credentials, error)
}

// ProviderOptions configures NewProvider (from NERUTALK_* settings).
type ProviderOptions struct {
	Name string // p2p (default), agora, livekit
	TTL  time.Duration
	// PrivilegeTTL bounds Agora's join and publish privileges (0: TTL).
	PrivilegeTTL time.Duration

	AgoraAppID, AgoraAppCertificate             string
	LiveKitURL, LiveKitAPIKey, LiveKitAPISecret string
	STUNURLs, TURNURLs                          []string
	TURNSecret                                  string
}

// NewProvider returns the configured provider.
func NewProvider(o ProviderOptions) (Provider, error) {
	if o.TTL <= 0 {
		o.TTL = time.Hour
	}
	if o.PrivilegeTTL <= 0 || o.PrivilegeTTL > o.TTL {
		o.PrivilegeTTL = o.TTL
	}
	switch o.Name {
	case "", ProviderP2P:
		if len(o.TURNURLs) > 0 && o.TURNSecret == "" {
			return nil, errors.New("call: TURN URLs need a TURN secret")
		}
		return &P2P{STUN: o.STUNURLs, TURN: o.TURNURLs, Secret: []byte(o.TURNSecret), TTL: o.TTL}, nil
	case ProviderAgora:
		if _, err := agora.RTC(o.AgoraAppID, "c", 1, true, 1, 1, 1, 1).Build(o.AgoraAppCertificate); err != nil {
			return nil, fmt.Errorf("call: %w", err)
		}
		return &Agora{AppID: o.AgoraAppID, Certificate: o.AgoraAppCertificate, TTL: o.TTL, PrivilegeTTL: o.PrivilegeTTL}, nil
	case ProviderLiveKit:
		if o.LiveKitURL == "" || o.LiveKitAPIKey == "" || o.LiveKitAPISecret == "" {
			return nil, errors.New("call: livekit needs a URL, an API key and an API secret")
		}
		return &LiveKit{URL: o.LiveKitURL, APIKey: o.LiveKitAPIKey, APISecret: []byte(o.LiveKitAPISecret), TTL: o.TTL}, nil
	}
	return nil, fmt.Errorf("call: unknown provider %q", o.Name)
}

// P2P is the embedded provider: WebRTC between the participants, signaled over the NeruTalk
// WebSocket, with the configured STUN servers and TURN credentials in coturn's REST form.
type P2P struct {
	STUN, TURN []string
	Secret     []byte
	TTL        time.Duration
}

func (p *P2P) Name() string { return ProviderP2P }

func (p *P2P) Issue(g Grant) (Credentials, error) {
	exp := g.Now.Add(p.TTL).Truncate(time.Second)
	c := Credentials{Provider: ProviderP2P, Channel: g.Channel, ExpiresAt: exp.UTC(), ICEServers: []ICEServer{}}
	if len(p.STUN) > 0 {
		c.ICEServers = append(c.ICEServers, ICEServer{URLs: p.STUN})
	}
	if len(p.TURN) > 0 {
		user, cred := TURNCredential(p.Secret, g.UserID, exp)
		c.ICEServers = append(c.ICEServers, ICEServer{URLs: p.TURN, Username: user, Credential: cred})
	}
	return c, nil
}

// TURNCredential is the TURN REST API credential (coturn's use-auth-secret):
// username = "<expiry unix seconds>:<user id>", credential = base64(HMAC-SHA1(secret, username)).
func TURNCredential(secret []byte, userID string, expires time.Time) (username, credential string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + userID
	h := hmac.New(sha1.New, secret)
	h.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Agora issues AccessToken2 RTC tokens with the join-channel and publish privileges.
type Agora struct {
	AppID, Certificate string
	TTL, PrivilegeTTL  time.Duration
}

func (a *Agora) Name() string { return ProviderAgora }

func (a *Agora) Issue(g Grant) (Credentials, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Credentials{}, fmt.Errorf("call: agora salt: %w", err)
	}
	salt := binary.LittleEndian.Uint32(b[:])%99999998 + 1
	now := g.Now.Truncate(time.Second)
	tok, err := agora.RTC(a.AppID, g.Channel, g.UID, true, uint32(now.Unix()), salt,
		uint32(a.TTL/time.Second), uint32(a.PrivilegeTTL/time.Second)).Build(a.Certificate)
	if err != nil {
		return Credentials{}, fmt.Errorf("call: agora token: %w", err)
	}
	uid := g.UID
	return Credentials{Provider: ProviderAgora, Channel: g.Channel, ExpiresAt: now.Add(a.PrivilegeTTL).UTC(),
		AppID: a.AppID, UID: &uid, Token: tok}, nil
}

// LiveKit issues LiveKit access tokens: HS256 JWTs with the video grant.
type LiveKit struct {
	URL, APIKey string
	APISecret   []byte
	TTL         time.Duration
}

func (l *LiveKit) Name() string { return ProviderLiveKit }

// VideoGrant is the "video" claim of a LiveKit access token.
type VideoGrant struct {
	Room         string `json:"room"`
	RoomJoin     bool   `json:"roomJoin"`
	CanPublish   bool   `json:"canPublish"`
	CanSubscribe bool   `json:"canSubscribe"`
}

// LiveKitClaims are the claims of a LiveKit access token.
type LiveKitClaims struct {
	jwt.RegisteredClaims
	Name  string     `json:"name,omitempty"`
	Video VideoGrant `json:"video"`
}

func (l *LiveKit) Issue(g Grant) (Credentials, error) {
	now := g.Now.Truncate(time.Second)
	exp := now.Add(l.TTL)
	claims := LiveKitClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: l.APIKey, Subject: g.UserID, ID: g.UserID,
			NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
		},
		Name:  g.DisplayName,
		Video: VideoGrant{Room: g.Channel, RoomJoin: true, CanPublish: true, CanSubscribe: true},
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(l.APISecret)
	if err != nil {
		return Credentials{}, fmt.Errorf("call: livekit token: %w", err)
	}
	return Credentials{Provider: ProviderLiveKit, Channel: g.Channel, ExpiresAt: exp.UTC(), URL: l.URL, Token: tok}, nil
}
