// Package apperr defines the kinds of failure that the domain packages report and that the HTTP and
// WebSocket layers turn into status codes. Domain code never speaks HTTP; it returns an *Error (or
// wraps one with %w) and the transport maps its Kind in exactly one place (httpapi.problem.go).
package apperr

import (
	"errors"
	"fmt"
	"time"
)

// Kind is the class of a failure; the transport maps it to a status code.
type Kind int

// The kinds of failure.
const (
	KindInternal        Kind = iota
	KindInvalid              // 422: the request is well-formed but its content is not acceptable
	KindBadRequest           // 400: the request cannot be parsed
	KindUnauthenticated      // 401
	KindForbidden            // 403
	KindNotFound             // 404 (also used where existence itself is private)
	KindConflict             // 409
	KindTooLarge             // 413
	KindUnsupportedType      // 415
	KindRateLimited          // 429
	KindUpstream             // 502: a provider we depend on failed
	KindUnavailable          // 503
)

// FieldError names one offending input field.
type FieldError struct {
	Location string `json:"location" doc:"Where the error occurred, e.g. body.username"`
	Message  string `json:"message" doc:"What is wrong with it"`
}

// Error is a classified failure with a stable machine-readable code.
type Error struct {
	Kind       Kind
	Code       string        // stable, snake_case, e.g. "username_taken"
	Detail     string        // human-readable, safe to show to the client
	Fields     []FieldError  // offending fields, for validation failures
	RetryAfter time.Duration // for KindRateLimited
	ExistingID string        // for KindConflict: the id of the existing resource the request ran into
	Err        error         // the cause, never shown to clients
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Detail, e.Err)
	}
	return e.Code + ": " + e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// Is lets errors.Is match two *Error values by Kind and Code, so package-level sentinels work
// even after they are copied with extra detail.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && t.Code == e.Code
}

// New returns a classified error.
func New(kind Kind, code, detail string) *Error {
	return &Error{Kind: kind, Code: code, Detail: detail}
}

// Invalid returns a validation failure naming one field.
func Invalid(location, message string) *Error {
	return &Error{Kind: KindInvalid, Code: "validation_failed", Detail: location + ": " + message,
		Fields: []FieldError{{Location: location, Message: message}}}
}

// NotFound returns a not-found error for the named resource.
func NotFound(what string) *Error {
	return &Error{Kind: KindNotFound, Code: "not_found", Detail: what + " not found"}
}

// Forbidden returns a permission failure.
func Forbidden(detail string) *Error {
	return &Error{Kind: KindForbidden, Code: "forbidden", Detail: detail}
}

// RateLimited returns a 429 error with a retry hint.
func RateLimited(retryAfter time.Duration) *Error {
	return &Error{Kind: KindRateLimited, Code: "rate_limited", Detail: "too many requests, retry later", RetryAfter: retryAfter}
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// KindOf returns the kind of err, KindInternal when it is not classified.
func KindOf(err error) Kind {
	if e, ok := As(err); ok {
		return e.Kind
	}
	return KindInternal
}
