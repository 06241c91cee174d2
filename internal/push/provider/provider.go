// Package provider holds the push senders NeruTalk hands notifications to: FCM HTTP v1, APNs and
// Web Push, each a real client of its service, plus Log, the embedded default that only writes
// what it would send. The push package (devices, outbox, triggers) uses them through Sender and
// decides from the error what happens to the device and the outbox row.
package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Target is one registered device, as a sender needs it.
type Target struct {
	Provider  string // "fcm", "apns" or "webpush"
	Platform  string // "android", "ios" or "web"
	Token     string // FCM registration token or APNs device token; the endpoint for Web Push
	VoIPToken string // APNs PushKit token, used for Message.PushType == "voip" when set
	AppID     string // APNs topic (bundle id); FCM/Web Push may ignore it
	// Web Push subscription keys (RFC 8291), base64url as the browser gives them.
	P256dh string
	Auth   string
}

// Priority of a notification.
type Priority string

const (
	PriorityNormal Priority = "normal"
	PriorityHigh   Priority = "high"
)

// Message is one notification, independent of the provider.
type Message struct {
	Title       string
	Body        string
	Data        map[string]string // delivered to the app (chat_id, call_id, type, ...)
	Priority    Priority
	TTL         time.Duration // 0 = the provider's default
	CollapseKey string        // a later message with the same key replaces an undelivered one
	// PushType is APNs' apns-push-type: "alert" (default), "background" or "voip". FCM maps
	// "background" to a data-only message.
	PushType string
	Badge    *int
	Sound    string
}

// Sender delivers one message to one device.
//
// Its error decides what the caller does:
//   - nil: delivered (accepted by the provider).
//   - errors.Is(err, ErrInvalidToken): the token is dead (unregistered, wrong sender, 404/410);
//     the device must be removed and the message not retried for it.
//   - errors.As(err, *RetryableError): try again later, not before RetryAfter when it is set.
//   - anything else: a permanent failure of this message (bad payload, auth misconfigured).
type Sender interface {
	Send(ctx context.Context, t Target, m Message) error
}

// ErrInvalidToken means the device's token or subscription is no longer valid.
var ErrInvalidToken = errors.New("push: invalid device token")

// RetryableError is a temporary failure (429, 5xx, a network error).
type RetryableError struct {
	Status     int           // HTTP status, 0 for a network error
	RetryAfter time.Duration // from the Retry-After header; 0 = use backoff
	Err        error
}

func (e *RetryableError) Error() string {
	return fmt.Sprintf("push: temporary failure (status %d, retry after %s): %v", e.Status, e.RetryAfter, e.Err)
}

func (e *RetryableError) Unwrap() error { return e.Err }

// Log is the embedded default: it writes what it would send and reports success.
type Log struct{ Logger *slog.Logger }

// Send logs the message.
func (l Log) Send(ctx context.Context, t Target, m Message) error {
	l.Logger.InfoContext(ctx, "push (log sender): would send",
		"provider", t.Provider, "platform", t.Platform, "title", m.Title, "body", m.Body,
		"priority", string(m.Priority), "push_type", m.PushType, "collapse_key", m.CollapseKey, "data", m.Data)
	return nil
}
