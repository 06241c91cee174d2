package provider

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxErrorBody bounds how much of a provider's answer is read: error bodies are small, and a
// misbehaving server must not make a sender buffer megabytes.
const maxErrorBody = 64 << 10

// maxRetryAfter caps a Retry-After: a provider asking for more than a day is treated as asking
// for a day, so an outbox row is never parked for years by a bad header.
const maxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads an HTTP Retry-After value (RFC 9110 10.2.3): either delay-seconds or an
// HTTP date, relative to now. It returns 0 for an empty, malformed or past value, and caps the
// delay at one day.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return maxRetryAfter
			}
			return 0
		}
		if n > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now)
	switch {
	case d <= 0:
		return 0
	case d > maxRetryAfter:
		return maxRetryAfter
	}
	return d.Round(time.Second)
}

// temporary reports whether an HTTP status is worth retrying: 429 and every 5xx.
func temporary(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500 && status <= 599
}

// retryableStatus wraps a temporary HTTP failure with the Retry-After the provider asked for.
func retryableStatus(res *http.Response, now time.Time, err error) *RetryableError {
	return &RetryableError{Status: res.StatusCode, RetryAfter: ParseRetryAfter(res.Header.Get("Retry-After"), now), Err: err}
}

// readBody reads at most maxErrorBody bytes of a response and closes it.
func readBody(res *http.Response) []byte {
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	return b
}

// drain reads what is left of a successful response (bounded) so the connection is reused.
func drain(res *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxErrorBody))
	res.Body.Close()
}

// collapseID turns a collapse key into an identifier of at most max characters from the
// URL-safe base64 alphabet (what Web Push's Topic demands, and safe for apns-collapse-id): a key
// that already fits is kept, any other is replaced by a digest of it, so equal keys still collapse.
func collapseID(key string, max int) string {
	if key == "" {
		return ""
	}
	if len(key) <= max && strings.IndexFunc(key, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) < 0 {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	id := base64.RawURLEncoding.EncodeToString(sum[:])
	if len(id) > max {
		id = id[:max]
	}
	return id
}

// statusError is a permanent failure answered by a provider.
func statusError(name string, status int, reason string) error {
	if reason == "" {
		return fmt.Errorf("push: %s: HTTP %d", name, status)
	}
	return fmt.Errorf("push: %s: HTTP %d: %s", name, status, reason)
}

// defaultHTTPClient is used when the configuration gives none: bounded, HTTP/2 where offered.
func defaultHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = true
	tr.MaxIdleConnsPerHost = 32
	// Providers keep HTTP/2 connections open for long; a ping finds one that died silently.
	tr.HTTP2 = &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}
