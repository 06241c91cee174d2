package call

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/identity"
	"github.com/nerutalk/nerutalk/internal/ratelimit"
)

// The route table of calls (all authenticated, under /api/v1):
//
//	POST /calls               startCall
//	GET  /calls               listCalls
//	GET  /calls/stats         callStats
//	GET  /calls/{id}          getCall
//	POST /calls/{id}/answer   answerCall
//	POST /calls/{id}/decline  declineCall
//	POST /calls/{id}/join     joinCall
//	POST /calls/{id}/leave    leaveCall
//	POST /calls/{id}/end      endCall
//	POST /calls/{id}/token    callToken
//
// Mount registers them. A call in a chat the caller is not (or was not, when it rang) a member of
// is 404 everywhere.
func (s *Service) Mount(api *httpapi.API) {
	tags := []string{"Calls"}
	a := api.Authed
	bad := []int{http.StatusBadRequest, http.StatusUnprocessableEntity}
	errs := func(extra ...int) []int { return append(append([]int{}, bad...), extra...) }
	nf, cf := http.StatusNotFound, http.StatusConflict

	huma.Register(a, huma.Operation{
		OperationID: "startCall", Method: http.MethodPost, Path: "/calls", Tags: tags,
		Summary: "Start a call in a chat",
		Description: "The call rings for every other member (call_initiated on every device of every member). A chat " +
			"has one live call at a time: while one rings or is active this is 409 call_in_progress with its id in " +
			"existing_id (join it instead). The answer carries the caller's media credentials. In a direct chat " +
			"with a block between the two users (either way) it is 403 blocked. A user starts at most " +
			"NERUTALK_CALLS_PER_MINUTE calls a minute: over it, 429 rate_limited with Retry-After, before anything rings.",
		DefaultStatus: http.StatusCreated,
		Errors:        errs(http.StatusForbidden, nf, cf, http.StatusTooManyRequests),
	}, s.handleStart)
	huma.Register(a, huma.Operation{
		OperationID: "listCalls", Method: http.MethodGet, Path: "/calls", Tags: tags,
		Summary:     "The caller's call history, newest first",
		Description: "Calls the caller was part of (rang for them included). status=active lists the live call to rejoin after a reconnect.",
		Errors:      errs(),
	}, s.handleList)
	huma.Register(a, huma.Operation{
		OperationID: "callStats", Method: http.MethodGet, Path: "/calls/stats", Tags: tags,
		Summary: "Call counts and durations over a period",
		Description: "Calls created in [from, to) (default: the last 30 days): counts by status, kind and end reason, " +
			"total and average duration of the answered calls. The caller's own calls; an admin's covers every call.",
		Errors: errs(),
	}, s.handleStats)
	huma.Register(a, huma.Operation{
		OperationID: "getCall", Method: http.MethodGet, Path: "/calls/{id}", Tags: tags,
		Summary: "One call", Errors: errs(nf),
	}, s.handleGet)
	huma.Register(a, huma.Operation{
		OperationID: "answerCall", Method: http.MethodPost, Path: "/calls/{id}/answer", Tags: tags,
		Summary: "Answer a call that rings for you",
		Description: "The first answer makes the call active. call_answered tells every member's devices who answered " +
			"and from which session: the caller's other devices stop ringing. 409 not_ringing when it does not ring for " +
			"you, already_in_call when another of your devices answered, call_ended, call_full. The answer carries your credentials.",
		Errors: errs(nf, cf, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleAnswer))
	huma.Register(a, huma.Operation{
		OperationID: "declineCall", Method: http.MethodPost, Path: "/calls/{id}/decline", Tags: tags,
		Summary:     "Decline a call that rings for you",
		Description: "A direct call ends as declined; a group call when every member it rang for declined before anyone answered.",
		Errors:      errs(nf, cf, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleDecline))
	huma.Register(a, huma.Operation{
		OperationID: "joinCall", Method: http.MethodPost, Path: "/calls/{id}/join", Tags: tags,
		Summary: "Join (or rejoin) a live call of one of your chats",
		Description: "Up to NERUTALK_CALL_MAX_PARTICIPANTS at once (409 call_full). Members receive call_participant_joined. " +
			"Answering, declining, joining, leaving and ending share a per-user budget of NERUTALK_WS_FRAMES_PER_SECOND a " +
			"second (bursts of twice that): over it, 429 rate_limited with Retry-After.",
		Errors: errs(nf, cf, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleJoin))
	huma.Register(a, huma.Operation{
		OperationID: "leaveCall", Method: http.MethodPost, Path: "/calls/{id}/leave", Tags: tags,
		Summary:     "Leave a call",
		Description: "The call ends when its last participant leaves (a direct call: when either side leaves after the answer).",
		Errors:      errs(nf, cf, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleLeave))
	huma.Register(a, huma.Operation{
		OperationID: "endCall", Method: http.MethodPost, Path: "/calls/{id}/end", Tags: tags,
		Summary:     "End a call for everyone (its caller; in a group also an owner or admin)",
		Description: "Unanswered it ends as cancelled, else completed. Members receive call_ended.",
		Errors:      errs(http.StatusForbidden, nf, cf, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleEnd))
	huma.Register(a, huma.Operation{
		OperationID: "callToken", Method: http.MethodPost, Path: "/calls/{id}/token", Tags: tags,
		Summary:     "Fresh media credentials for a participant",
		Description: "Only while you are in a ringing or active call: 409 not_in_call after you declined or left, call_ended once it is over.",
		Errors:      errs(nf, cf),
	}, s.handleToken)
}

// limitWrites wraps the handler of a call action: each counts against the caller's WriteLimiter
// first (429 rate_limited with Retry-After over it).
func limitWrites[I, O any](s *Service, h func(context.Context, *I) (*O, error)) func(context.Context, *I) (*O, error) {
	return ratelimit.PerUser(s.opts.WriteLimiter, "call-write:", s.log, h)
}

type callPath struct {
	ID string `path:"id" maxLength:"64" format:"uuid" doc:"Call id"`
}

type callOutput struct {
	Body Call
}

type credOutput struct {
	Status int
	Body   WithCredentials
}

type startInput struct {
	Body StartInput
}

func session(ctx context.Context) (string, string) {
	p, _ := identity.From(ctx)
	return p.UserID, p.SessionID
}

func (s *Service) handleStart(ctx context.Context, in *startInput) (*credOutput, error) {
	u, sess := session(ctx)
	c, err := s.Initiate(ctx, u, sess, in.Body)
	if err != nil {
		return nil, err
	}
	return &credOutput{Status: http.StatusCreated, Body: c}, nil
}

type listInput struct {
	httpapi.PageParams
	ChatID string `query:"chat_id" maxLength:"64" format:"uuid" doc:"Only this chat's calls"`
	Status string `query:"status" enum:"ringing,active,ended,missed,declined" doc:"Only calls in this status"`
}

func (s *Service) handleList(ctx context.Context, in *listInput) (*httpapi.PageOutput[Call], error) {
	items, next, err := s.History(ctx, identity.UserID(ctx), HistoryQuery{ChatID: in.ChatID, Status: in.Status,
		Limit: in.Limit, Cursor: in.Cursor})
	if err != nil {
		return nil, err
	}
	out := &httpapi.PageOutput[Call]{}
	out.Body.Items, out.Body.NextCursor = items, next
	if out.Body.Items == nil {
		out.Body.Items = []Call{}
	}
	return out, nil
}

type statsInput struct {
	From string `query:"from" maxLength:"64" doc:"RFC 3339 start of the period (inclusive); default: 30 days before to"`
	To   string `query:"to" maxLength:"64" doc:"RFC 3339 end of the period (exclusive); default: now"`
}

type statsOutput struct {
	Body Stats
}

func (s *Service) handleStats(ctx context.Context, in *statsInput) (*statsOutput, error) {
	to := s.now().Add(time.Millisecond)
	if in.To != "" {
		t, err := time.Parse(time.RFC3339, in.To)
		if err != nil {
			return nil, apperr.Invalid("query.to", "an RFC 3339 time")
		}
		to = t
	}
	from := to.AddDate(0, 0, -30)
	if in.From != "" {
		t, err := time.Parse(time.RFC3339, in.From)
		if err != nil {
			return nil, apperr.Invalid("query.from", "an RFC 3339 time")
		}
		from = t
	}
	p, _ := identity.From(ctx)
	st, err := s.Stats(ctx, p.UserID, p.Admin, StatsQuery{From: from, To: to})
	if err != nil {
		return nil, err
	}
	return &statsOutput{Body: st}, nil
}

func (s *Service) handleGet(ctx context.Context, in *callPath) (*callOutput, error) {
	c, err := s.Get(ctx, identity.UserID(ctx), in.ID)
	if err != nil {
		return nil, err
	}
	return &callOutput{Body: c}, nil
}

func (s *Service) handleAnswer(ctx context.Context, in *callPath) (*credOutput, error) {
	u, sess := session(ctx)
	c, err := s.Answer(ctx, u, sess, in.ID)
	if err != nil {
		return nil, err
	}
	return &credOutput{Status: http.StatusOK, Body: c}, nil
}

func (s *Service) handleJoin(ctx context.Context, in *callPath) (*credOutput, error) {
	u, sess := session(ctx)
	c, err := s.Join(ctx, u, sess, in.ID)
	if err != nil {
		return nil, err
	}
	return &credOutput{Status: http.StatusOK, Body: c}, nil
}

func (s *Service) handleToken(ctx context.Context, in *callPath) (*credOutput, error) {
	c, err := s.Token(ctx, identity.UserID(ctx), in.ID)
	if err != nil {
		return nil, err
	}
	return &credOutput{Status: http.StatusOK, Body: c}, nil
}

func (s *Service) handleDecline(ctx context.Context, in *callPath) (*callOutput, error) {
	c, err := s.Decline(ctx, identity.UserID(ctx), in.ID)
	if err != nil {
		return nil, err
	}
	return &callOutput{Body: c}, nil
}

func (s *Service) handleLeave(ctx context.Context, in *callPath) (*callOutput, error) {
	c, err := s.Leave(ctx, identity.UserID(ctx), in.ID)
	if err != nil {
		return nil, err
	}
	return &callOutput{Body: c}, nil
}

func (s *Service) handleEnd(ctx context.Context, in *callPath) (*callOutput, error) {
	c, err := s.End(ctx, identity.UserID(ctx), in.ID)
	if err != nil {
		return nil, err
	}
	return &callOutput{Body: c}, nil
}
