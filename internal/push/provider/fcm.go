package provider

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// fcmScope is the OAuth2 scope of the FCM HTTP v1 API.
const fcmScope = "https://www.googleapis.com/auth/firebase.messaging"

// FCMConfig configures the FCM HTTP v1 sender.
type FCMConfig struct {
	// CredentialsJSON is the service-account key file downloaded from the Firebase console.
	CredentialsJSON []byte
	// Endpoint is the API base URL; empty = https://fcm.googleapis.com (tests point it to a fake).
	Endpoint string
	// TokenURL overrides the credentials' token_uri (tests point it to a fake).
	TokenURL string
	// HTTPClient carries both the token exchange and the sends; nil = a default client.
	HTTPClient *http.Client
	// Now is the clock used for Retry-After dates; nil = time.Now.
	Now func() time.Time
}

// FCM sends through Firebase Cloud Messaging's HTTP v1 API. It is safe for concurrent use.
//
// The OAuth2 access token is obtained from the service account with the JWT bearer grant and
// reused until shortly before it expires (oauth2.ReuseTokenSource), so a burst of sends costs one
// token exchange an hour.
type FCM struct {
	url    string // .../v1/projects/{id}/messages:send
	client *http.Client
	source *renewableSource
	now    func() time.Time
}

// renewableSource is the cached token source, replaced by a fresh one when FCM refuses the
// cached token (401) before it expires: a revoked token then costs one failed send, not an hour.
type renewableSource struct {
	fresh func() oauth2.TokenSource

	mu  sync.Mutex
	gen int
	ts  oauth2.TokenSource
}

func (s *renewableSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	ts := s.ts
	s.mu.Unlock()
	return ts.Token()
}

func (s *renewableSource) generation() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// renew drops the cached token unless another send already did since generation gen.
func (s *renewableSource) renew(gen int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen == gen {
		s.ts, s.gen = s.fresh(), s.gen+1
	}
}

// NewFCM reads the service account and prepares the client. It does not contact Google.
func NewFCM(cfg FCMConfig) (*FCM, error) {
	var sa struct {
		Type       string `json:"type"`
		ProjectID  string `json:"project_id"`
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(cfg.CredentialsJSON, &sa); err != nil {
		return nil, fmt.Errorf("push: fcm: credentials are not JSON: %w", err)
	}
	if sa.Type != "service_account" {
		return nil, fmt.Errorf("push: fcm: credentials of type %q, want a service_account key", sa.Type)
	}
	if sa.ProjectID == "" {
		return nil, errors.New("push: fcm: credentials have no project_id")
	}
	// The key is only used at the first token exchange: check it now, so a bad file stops start-up.
	block, _ := pem.Decode([]byte(sa.PrivateKey))
	if block == nil {
		return nil, errors.New("push: fcm: credentials have no PEM private_key")
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		if _, err1 := x509.ParsePKCS1PrivateKey(block.Bytes); err1 != nil {
			return nil, fmt.Errorf("push: fcm: credentials' private_key: %w", err)
		}
	}
	jwtCfg, err := google.JWTConfigFromJSON(cfg.CredentialsJSON, fcmScope)
	if err != nil {
		return nil, fmt.Errorf("push: fcm: credentials: %w", err)
	}
	if cfg.TokenURL != "" {
		jwtCfg.TokenURL = cfg.TokenURL
	}
	base := cfg.HTTPClient
	if base == nil {
		base = defaultHTTPClient()
	}
	// The token source keeps this context for its token requests: it only carries the client.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, base)
	source := &renewableSource{fresh: func() oauth2.TokenSource { return jwtCfg.TokenSource(ctx) }}
	source.ts = source.fresh()
	// Not oauth2.NewClient: it would cache the token once more, out of renew's reach.
	client := &http.Client{Transport: &oauth2.Transport{Source: source, Base: base.Transport}, Timeout: base.Timeout}
	endpoint := strings.TrimRight(cfg.Endpoint, "/")
	if endpoint == "" {
		endpoint = "https://fcm.googleapis.com"
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &FCM{url: endpoint + "/v1/projects/" + url.PathEscape(sa.ProjectID) + "/messages:send", client: client, source: source, now: now}, nil
}

// fcm* mirror the parts of the v1 Message resource NeruTalk fills.
type fcmRequest struct {
	Message fcmMessage `json:"message"`
}

type fcmMessage struct {
	Token        string            `json:"token"`
	Notification *fcmNotification  `json:"notification,omitempty"`
	Data         map[string]string `json:"data,omitempty"`
	Android      fcmAndroid        `json:"android"`
	APNs         fcmAPNs           `json:"apns"`
	WebPush      fcmWebPush        `json:"webpush"`
}

type fcmNotification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

type fcmAndroid struct {
	Priority     string                  `json:"priority"` // NORMAL or HIGH
	TTL          string                  `json:"ttl,omitempty"`
	CollapseKey  string                  `json:"collapse_key,omitempty"`
	Notification *fcmAndroidNotification `json:"notification,omitempty"`
}

type fcmAndroidNotification struct {
	Sound string `json:"sound,omitempty"`
	Tag   string `json:"tag,omitempty"` // replaces a shown notification with the same tag
}

type fcmAPNs struct {
	Headers map[string]string `json:"headers"`
	Payload apnsPayload       `json:"payload"`
}

type fcmWebPush struct {
	Headers map[string]string `json:"headers"`
}

// fcmBody builds the v1 request for one device.
func fcmBody(t Target, m Message, now time.Time) fcmRequest {
	background := m.PushType == "background"
	high := m.Priority == PriorityHigh && !background
	apnsType := "alert" // VoIP pushes need PushKit, which FCM does not reach: sent as alerts
	if background {
		apnsType = "background"
	} else if m.PushType == "voip" {
		high = true
	}
	msg := fcmMessage{Token: t.Token, Data: fcmData(m.Data)}

	msg.Android.Priority = "NORMAL"
	if high {
		msg.Android.Priority = "HIGH"
	}
	if m.TTL > 0 {
		msg.Android.TTL = strconv.FormatInt(int64(m.TTL/time.Second), 10) + "s"
	}
	msg.Android.CollapseKey = m.CollapseKey

	msg.APNs.Headers = apnsHeaders(m, apnsType, high, now)
	msg.APNs.Payload = apnsPayloadFor(m, nil, background)

	msg.WebPush.Headers = map[string]string{"Urgency": "normal"}
	if high {
		msg.WebPush.Headers["Urgency"] = "high"
	}
	if m.TTL > 0 {
		msg.WebPush.Headers["TTL"] = strconv.FormatInt(int64(m.TTL/time.Second), 10)
	}
	if id := collapseID(m.CollapseKey, 32); id != "" {
		msg.WebPush.Headers["Topic"] = id
	}

	if !background {
		msg.Notification = &fcmNotification{Title: m.Title, Body: m.Body}
		if m.Sound != "" || m.CollapseKey != "" {
			msg.Android.Notification = &fcmAndroidNotification{Sound: m.Sound, Tag: m.CollapseKey}
		}
	}
	return fcmRequest{Message: msg}
}

// fcmData drops the keys FCM reserves ("from", "notification", "message_type", "google*",
// "gcm*"): one of them would make FCM refuse the whole message.
func fcmData(data map[string]string) map[string]string {
	reserved := func(k string) bool {
		k = strings.ToLower(k)
		return k == "from" || k == "notification" || k == "message_type" ||
			strings.HasPrefix(k, "google") || strings.HasPrefix(k, "gcm")
	}
	for k := range data {
		if reserved(k) {
			clean := make(map[string]string, len(data))
			for k, v := range data {
				if !reserved(k) {
					clean[k] = v
				}
			}
			return clean
		}
	}
	return data
}

// Send delivers m to the FCM registration token t.Token.
func (f *FCM) Send(ctx context.Context, t Target, m Message) error {
	if t.Token == "" {
		return fmt.Errorf("push: fcm: %w: empty token", ErrInvalidToken)
	}
	body, err := json.Marshal(fcmBody(t, m, f.now()))
	if err != nil {
		return fmt.Errorf("push: fcm: encode: %w", err)
	}
	for attempt := 0; ; attempt++ {
		gen := f.source.generation()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("push: fcm: %w", err)
		}
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
		res, err := f.client.Do(req)
		if err != nil {
			return f.transportError(err)
		}
		if res.StatusCode/100 == 2 {
			drain(res)
			return nil
		}
		resBody := readBody(res)
		if res.StatusCode == http.StatusUnauthorized && attempt == 0 && ParseFCMError(resBody).ErrorCode == "" {
			// Our access token was refused (revoked, or the clock moved): fetch a new one and
			// try once more. THIRD_PARTY_AUTH_ERROR (APNs or Web Push credentials in Firebase)
			// is not ours to fix.
			f.source.renew(gen)
			continue
		}
		return fcmError(res, resBody, f.now())
	}
}

// transportError maps a failed round trip: the token exchange refused (permanent), the token
// endpoint or the network down (retryable).
func (f *FCM) transportError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		return &RetryableError{Err: fmt.Errorf("push: fcm: %w", err)}
	}
	if !temporary(re.Response.StatusCode) {
		// The service account was refused: a configuration problem, not worth retrying.
		return fmt.Errorf("push: fcm: access token: %w", err)
	}
	return &RetryableError{Status: re.Response.StatusCode,
		RetryAfter: ParseRetryAfter(re.Response.Header.Get("Retry-After"), f.now()),
		Err:        fmt.Errorf("push: fcm: access token: %w", err)}
}

// FCMErrorInfo is what an FCM v1 error body says, as far as a sender cares.
type FCMErrorInfo struct {
	Status      string   // google.rpc status, e.g. NOT_FOUND, INVALID_ARGUMENT
	Message     string   // human-readable message
	ErrorCode   string   // FcmError.errorCode, e.g. UNREGISTERED, SENDER_ID_MISMATCH
	FieldsNamed []string // BadRequest.fieldViolations[].field
}

// ParseFCMError reads an FCM v1 error body ({"error": {"code", "message", "status", "details"}}).
// Unknown or malformed bodies give a zero FCMErrorInfo and no panic.
func ParseFCMError(body []byte) FCMErrorInfo {
	var e struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
			Details []struct {
				Type            string `json:"@type"`
				ErrorCode       string `json:"errorCode"`
				FieldViolations []struct {
					Field string `json:"field"`
				} `json:"fieldViolations"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return FCMErrorInfo{}
	}
	info := FCMErrorInfo{Status: e.Error.Status, Message: e.Error.Message}
	for _, d := range e.Error.Details {
		switch {
		case strings.HasSuffix(d.Type, "google.firebase.fcm.v1.FcmError") && info.ErrorCode == "":
			info.ErrorCode = d.ErrorCode
		case strings.HasSuffix(d.Type, "google.rpc.BadRequest"):
			for _, v := range d.FieldViolations {
				info.FieldsNamed = append(info.FieldsNamed, v.Field)
			}
		}
	}
	return info
}

// fcmError maps a failed send to the Sender contract.
func fcmError(res *http.Response, body []byte, now time.Time) error {
	info := ParseFCMError(body)
	cause := statusError("fcm", res.StatusCode, strings.TrimSpace(info.ErrorCode+" "+info.Message))
	switch info.ErrorCode {
	case "UNREGISTERED", "SENDER_ID_MISMATCH":
		return fmt.Errorf("%w: %w", ErrInvalidToken, cause)
	}
	// A bare 404 is not taken as a dead token: a wrong project id answers 404 too, and must not
	// remove every device.
	if res.StatusCode == http.StatusBadRequest && (info.ErrorCode == "INVALID_ARGUMENT" || info.Status == "INVALID_ARGUMENT") {
		for _, f := range info.FieldsNamed {
			if f == "message.token" {
				return fmt.Errorf("%w: %w", ErrInvalidToken, cause)
			}
		}
		return cause // a bad payload: retrying it would fail again
	}
	if temporary(res.StatusCode) {
		return retryableStatus(res, now, cause)
	}
	return cause
}
