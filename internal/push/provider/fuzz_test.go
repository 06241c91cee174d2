package provider

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

// Fuzz targets for what providers and browsers send us: error bodies, Retry-After headers and
// subscription keys. Run one with e.g. go test -run XXX -fuzz FuzzParseRetryAfter ./internal/push/provider

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "7", "120", "-1", "1e9", "99999999999999999999", "Thu, 03 Dec 2026 12:00:30 GMT",
		"Thursday, 03-Dec-26 12:01:00 GMT", "Thu Dec  3 12:00:10 2026", "soon"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d := ParseRetryAfter(v, now)
		if d < 0 || d > maxRetryAfter {
			t.Errorf("ParseRetryAfter(%q) = %s, outside [0, %s]", v, d, maxRetryAfter)
		}
	})
}

func FuzzFCMError(f *testing.F) {
	for _, b := range []string{
		`{"error":{"code":404,"status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`,
		`{"error":{"code":400,"status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token"}]}]}}`,
		`{"error":{"details":[{"fieldViolations":null}]}}`, `{"error":null}`, `[]`, `<html>`, ``,
	} {
		f.Add(400, "", []byte(b))
		f.Add(503, "30", []byte(b))
	}
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		ParseFCMError(body)
		res := &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {retryAfter}}, Body: io.NopCloser(bytes.NewReader(body))}
		err := fcmError(res, body, time.Now())
		if err == nil {
			t.Fatal("fcmError = nil")
		}
		var re *RetryableError
		if errors.As(err, &re) && errors.Is(err, ErrInvalidToken) {
			t.Errorf("error %v is both retryable and an invalid token", err)
		}
		if errors.As(err, &re) && !temporary(status) {
			t.Errorf("status %d gave a retryable error", status)
		}
	})
}

func FuzzAPNsReason(f *testing.F) {
	for _, b := range []string{`{"reason":"BadDeviceToken"}`, `{"reason":"Unregistered","timestamp":1}`, `{"reason":1}`, `null`, ``} {
		f.Add(410, []byte(b))
		f.Add(400, []byte(b))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		reason := ParseAPNsReason(body)
		err := apnsError(&http.Response{StatusCode: status, Header: http.Header{}}, reason, time.Now())
		var re *RetryableError
		if errors.As(err, &re) && errors.Is(err, ErrInvalidToken) {
			t.Errorf("error %v is both retryable and an invalid token", err)
		}
	})
}

// FuzzEncryptWebPush feeds arbitrary subscription keys (they come from browsers, through the
// device registration) to the encryption: it must fail cleanly, never panic.
func FuzzEncryptWebPush(f *testing.F) {
	pub, _, _ := GenerateVAPIDKeys() // any valid P-256 point
	f.Add(pub, "BTBZMqHH6r4Tts7J_aSIgg", []byte("hi"))
	f.Add("", "", []byte{})
	f.Add("BA", "AAAA", []byte("x"))
	f.Fuzz(func(t *testing.T, p256dh, auth string, plaintext []byte) {
		ua, err1 := decodeB64(p256dh)
		secret, err2 := decodeB64(auth)
		if err1 != nil || err2 != nil {
			return
		}
		out, err := encryptWebPush(plaintext, ua, secret)
		if err == nil && len(out) != webPushHeaderLen+len(plaintext)+1+16 {
			t.Errorf("ciphertext of %d bytes for %d of plaintext", len(out), len(plaintext))
		}
	})
}
