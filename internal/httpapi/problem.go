package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/nerutalk/nerutalk/internal/apperr"
)

// Problem is an RFC 9457 problem document with NeruTalk's stable machine-readable code.
type Problem struct {
	Type       string              `json:"type,omitempty" doc:"A URI reference that identifies the problem type"`
	Title      string              `json:"title" doc:"Short summary of the problem type"`
	Status     int                 `json:"status" doc:"HTTP status code"`
	Detail     string              `json:"detail,omitempty" doc:"Explanation specific to this occurrence"`
	Instance   string              `json:"instance,omitempty" doc:"The request path"`
	Code       string              `json:"code" doc:"Stable machine-readable error code, e.g. validation_failed, invalid_credentials, not_found"`
	RequestID  string              `json:"request_id,omitempty" doc:"The request id, also in the X-Request-ID header"`
	Errors     []apperr.FieldError `json:"errors,omitempty" doc:"The offending fields, for validation failures"`
	ExistingID string              `json:"existing_id,omitempty" doc:"409: the id of the existing resource the request ran into (POST /calls: the chat's live call, to join instead)"`

	retryAfter time.Duration
}

func (p *Problem) Error() string  { return p.Detail }
func (p *Problem) GetStatus() int { return p.Status }

// ContentType makes huma send problems as application/problem+json.
func (p *Problem) ContentType(string) string { return "application/problem+json" }

var kindStatus = map[apperr.Kind]int{
	apperr.KindInternal:        http.StatusInternalServerError,
	apperr.KindInvalid:         http.StatusUnprocessableEntity,
	apperr.KindBadRequest:      http.StatusBadRequest,
	apperr.KindUnauthenticated: http.StatusUnauthorized,
	apperr.KindForbidden:       http.StatusForbidden,
	apperr.KindNotFound:        http.StatusNotFound,
	apperr.KindConflict:        http.StatusConflict,
	apperr.KindTooLarge:        http.StatusRequestEntityTooLarge,
	apperr.KindUnsupportedType: http.StatusUnsupportedMediaType,
	apperr.KindRateLimited:     http.StatusTooManyRequests,
	apperr.KindUpstream:        http.StatusBadGateway,
	apperr.KindUnavailable:     http.StatusServiceUnavailable,
}

var statusCode = map[int]string{
	http.StatusBadRequest:                   "bad_request",
	http.StatusUnauthorized:                 "unauthenticated",
	http.StatusForbidden:                    "forbidden",
	http.StatusNotFound:                     "not_found",
	http.StatusMethodNotAllowed:             "method_not_allowed",
	http.StatusNotAcceptable:                "not_acceptable",
	http.StatusConflict:                     "conflict",
	http.StatusPreconditionFailed:           "precondition_failed",
	http.StatusRequestEntityTooLarge:        "too_large",
	http.StatusUnsupportedMediaType:         "unsupported_media_type",
	http.StatusRequestedRangeNotSatisfiable: "range_not_satisfiable",
	http.StatusUnprocessableEntity:          "validation_failed",
	http.StatusTooManyRequests:              "rate_limited",
	http.StatusInternalServerError:          "internal",
	http.StatusBadGateway:                   "upstream_failed",
	http.StatusServiceUnavailable:           "unavailable",
	http.StatusGatewayTimeout:               "upstream_timeout",
}

// ProblemFor turns any error into a problem document. This is the one place where failures become
// HTTP statuses: classified errors (apperr) keep their code; anything else is a 500 whose cause is
// logged, never shown.
func ProblemFor(ctx context.Context, status int, msg string, errs ...error) *Problem {
	for _, err := range errs {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return finish(ctx, &Problem{Status: http.StatusRequestEntityTooLarge, Code: statusCode[http.StatusRequestEntityTooLarge],
				Detail: fmt.Sprintf("request body is larger than %d bytes", tooLarge.Limit)})
		}
		if ae, ok := apperr.As(err); ok {
			p := &Problem{Status: kindStatus[ae.Kind], Code: ae.Code, Detail: ae.Detail, Errors: ae.Fields, retryAfter: ae.RetryAfter,
				ExistingID: ae.ExistingID}
			if p.Status == http.StatusInternalServerError {
				logInternal(ctx, err)
				p.Detail = "internal error"
			}
			return finish(ctx, p)
		}
		var p *Problem
		if errors.As(err, &p) {
			return p
		}
	}
	if status == 0 { // huma asks for an example to build the schema
		return &Problem{}
	}
	p := &Problem{Status: status, Code: statusCode[status], Detail: msg}
	if p.Code == "" {
		p.Code = "error"
	}
	for _, err := range errs {
		var d huma.ErrorDetailer
		if errors.As(err, &d) {
			ed := d.ErrorDetail()
			p.Errors = append(p.Errors, apperr.FieldError{Location: ed.Location, Message: ed.Message})
		} else if err != nil && status < 500 {
			p.Errors = append(p.Errors, apperr.FieldError{Message: err.Error()})
		}
	}
	switch {
	case status == http.StatusUnprocessableEntity && len(p.Errors) > 0:
		p.Detail = "validation failed: " + p.Errors[0].Location + ": " + p.Errors[0].Message
	case status == http.StatusBadRequest && len(p.Errors) > 0:
		p.Detail = "malformed request: " + p.Errors[0].Message // e.g. JSON that does not parse
	}
	if status >= 500 {
		logInternal(ctx, errors.Join(append([]error{errors.New(msg)}, errs...)...))
		if status == http.StatusInternalServerError {
			p.Detail = "internal error"
		}
	}
	return finish(ctx, p)
}

func finish(ctx context.Context, p *Problem) *Problem {
	p.Title = http.StatusText(p.Status)
	if ctx != nil {
		p.RequestID = RequestID(ctx)
	}
	return p
}

func logInternal(ctx context.Context, err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	Logger(ctx).ErrorContext(ctx, "internal error", slog.Any("err", err))
}

// installHumaErrors makes huma produce Problem documents for every error it writes.
func installHumaErrors() {
	huma.NewErrorWithContext = func(hctx huma.Context, status int, msg string, errs ...error) huma.StatusError {
		var ctx context.Context
		if hctx != nil {
			ctx = hctx.Context()
		}
		p := ProblemFor(ctx, status, msg, errs...)
		if hctx != nil {
			if status == http.StatusUnsupportedMediaType && p.Code == statusCode[status] {
				p.Detail = unsupportedTypeDetail(hctx)
			}
			p.Instance = hctx.URL().Path
			if p.retryAfter > 0 {
				hctx.SetHeader("Retry-After", retryAfterSeconds(p.retryAfter))
			}
		}
		return p
	}
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		return ProblemFor(nil, status, msg, errs...)
	}
}

// unsupportedTypeDetail says which content types the operation takes and which one it got, for
// the 415 huma answers when it cannot decode a request body.
func unsupportedTypeDetail(hctx huma.Context) string {
	var want []string
	if op := hctx.Operation(); op != nil && op.RequestBody != nil {
		for ct := range op.RequestBody.Content {
			want = append(want, ct)
		}
	}
	if len(want) == 0 {
		want = []string{"application/json"}
	}
	sort.Strings(want)
	got := hctx.Header("Content-Type")
	if got == "" {
		got = "none"
	} else {
		got = strconv.Quote(got)
	}
	return "the request body must be " + strings.Join(want, " or ") + "; its Content-Type is " + got
}

func retryAfterSeconds(d time.Duration) string {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s)
}

// WriteError writes err as a problem document, for handlers outside huma (WebSocket upgrade, file
// downloads, 404s of the router).
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	for k, vs := range errorHeaders(err) {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	p := ProblemFor(r.Context(), http.StatusInternalServerError, "internal error", err)
	WriteProblem(w, r, p)
}

// WriteProblem writes p.
func WriteProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	p.Instance = r.URL.Path
	if p.retryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(p.retryAfter))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
