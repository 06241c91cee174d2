package chat

import (
	"context"
	"net/http"
	"reflect"

	"github.com/danielgtaylor/huma/v2"

	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/identity"
	"github.com/nerutalk/nerutalk/internal/ratelimit"
)

// The route table of the chat (all authenticated, under /api/v1):
//
//	POST   /chats                                 createChat
//	GET    /chats                                 listChats
//	GET    /chats/{id}                            getChat
//	PATCH  /chats/{id}                            updateChat
//	DELETE /chats/{id}                            leaveChat
//	GET    /chats/{id}/members                    listMembers
//	POST   /chats/{id}/members                    addMembers
//	DELETE /chats/{id}/members/{user_id}          removeMember
//	PATCH  /chats/{id}/members/{user_id}          setMemberRole
//	POST   /chats/{id}/messages                   sendMessage
//	GET    /chats/{id}/messages                   listMessages
//	PATCH  /chats/{id}/messages/{msg_id}          editMessage
//	DELETE /chats/{id}/messages/{msg_id}          deleteMessage
//	POST   /chats/{id}/read                       markRead
//	POST   /chats/{id}/delivered                  markDelivered
//	GET    /chats/{id}/receipts                   listReceipts
//	GET    /invitations                           listInvitations
//	POST   /invitations/{id}/accept               acceptInvitation
//	POST   /invitations/{id}/decline              declineInvitation
//	POST   /users/{id}/block                      blockUser
//	DELETE /users/{id}/block                      unblockUser
//	GET    /users/me/blocks                       listBlocks
//
// Mount registers them. A chat the caller is not a member of is 404 everywhere. The writes
// (limitWrites) share one budget per user, at the WebSocket's frame rate.
func (s *Service) Mount(api *httpapi.API) {
	tags := []string{"Chats"}
	a := api.Authed
	nf := http.StatusNotFound
	bad := []int{http.StatusBadRequest, http.StatusUnprocessableEntity}
	errs := func(extra ...int) []int { return append(append([]int{}, bad...), extra...) }

	huma.Register(a, huma.Operation{
		OperationID: "createChat", Method: http.MethodPost, Path: "/chats", Tags: tags,
		Summary: "Create a direct or group chat",
		Description: "The caller joins as owner. A direct chat is unique per pair: creating it again answers 200 with the " +
			"existing chat (and brings back a member who had left it). Every member receives chat_updated. " +
			"A group's member_ids whose group_adds setting does not allow the caller to add them are invited instead " +
			"(invited_user_ids; they receive group_invitation). A direct chat with a user who blocked the caller, or " +
			"whom the caller blocked, is 403 blocked. A user creates at most " +
			"NERUTALK_GROUPS_PER_MINUTE groups a minute (429 rate_limited with Retry-After).",
		DefaultStatus: http.StatusCreated,
		Responses: map[string]*huma.Response{
			"200": httpapi.JSONResponse[ChatWithInvites](a, "The direct chat with this user existed already: it is answered unchanged (a member who had left it is back)"),
		},
		Errors: errs(http.StatusForbidden, http.StatusTooManyRequests),
	}, s.handleCreate)
	huma.Register(a, huma.Operation{
		OperationID: "listChats", Method: http.MethodGet, Path: "/chats", Tags: tags,
		Summary: "The caller's chats, most recent activity first",
		Description: "Each chat carries last_seq, the caller's read_seq and delivered_seq, unread_count and last_message: " +
			"a client that was offline compares them with what it has and fetches the rest with " +
			"GET /chats/{id}/messages?after_seq= (or the sync command). Each chat also carries what a chat list shows: " +
			"its members with their username, display_name and avatar_url, member_count, and for a direct chat peer " +
			"(the other user's profile). A chat of more than 100 members lists 100 of them, owner and admins first, with " +
			"members_truncated: true; GET /chats/{id}/members pages through all of them.",
		Errors: errs(),
	}, s.handleList)
	huma.Register(a, huma.Operation{
		OperationID: "getChat", Method: http.MethodGet, Path: "/chats/{id}", Tags: tags,
		Summary:     "One chat",
		Description: "Like an item of GET /chats, with every member listed (members_truncated is false).",
		Errors:      errs(nf),
	}, s.handleGet)
	huma.Register(a, huma.Operation{
		OperationID: "listMembers", Method: http.MethodGet, Path: "/chats/{id}/members", Tags: tags,
		Summary: "A chat's members with their profiles, a page at a time",
		Description: "Oldest member first, as in GET /chats/{id}; each with role, joined_at, username, display_name and " +
			"avatar_url. The way to show every member of a big group.",
		Errors: errs(nf),
	}, s.handleMembers)
	huma.Register(a, huma.Operation{
		OperationID: "updateChat", Method: http.MethodPatch, Path: "/chats/{id}", Tags: tags,
		Summary:     "Rename a group (owner or admin)",
		Description: "Direct chats have no title (409 not_a_group). Members receive chat_updated.",
		Errors:      errs(http.StatusForbidden, nf, http.StatusConflict, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleUpdate))
	huma.Register(a, huma.Operation{
		OperationID: "leaveChat", Method: http.MethodDelete, Path: "/chats/{id}", Tags: tags,
		Summary: "Leave a chat",
		Description: "An owner who leaves hands ownership to the longest-standing admin, else the longest-standing member; " +
			"the last member leaving deletes the chat. The leaver receives a last chat_updated without themselves in it.",
		DefaultStatus: http.StatusNoContent,
		Errors:        errs(nf, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleLeave))
	huma.Register(a, huma.Operation{
		OperationID: "addMembers", Method: http.MethodPost, Path: "/chats/{id}/members", Tags: tags,
		Summary: "Add members to a group (owner or admin)",
		Description: "Users who are members already are skipped. The answer is the chat. Users whose group_adds setting " +
			"does not allow the caller to add them are invited instead: they are listed in invited_user_ids and receive " +
			"group_invitation.",
		Errors: errs(http.StatusForbidden, nf, http.StatusConflict, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleAddMembers))
	huma.Register(a, huma.Operation{
		OperationID: "removeMember", Method: http.MethodDelete, Path: "/chats/{id}/members/{user_id}", Tags: tags,
		Summary: "Remove a member from a group",
		Description: "The owner removes anyone, an admin removes members; removing yourself is leaving. The removed " +
			"member stops receiving the chat's events at once and can no longer send.",
		DefaultStatus: http.StatusNoContent,
		Errors:        errs(http.StatusForbidden, nf, http.StatusConflict, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleRemoveMember))
	huma.Register(a, huma.Operation{
		OperationID: "setMemberRole", Method: http.MethodPatch, Path: "/chats/{id}/members/{user_id}", Tags: tags,
		Summary: "Change a member's role (owner only)",
		Description: "Making a member the owner hands the ownership over; the previous owner becomes an admin. The owner " +
			"cannot demote themselves (409 owner_required).",
		Errors: errs(http.StatusForbidden, nf, http.StatusConflict, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleSetRole))
	huma.Register(a, huma.Operation{
		OperationID: "sendMessage", Method: http.MethodPost, Path: "/chats/{id}/messages", Tags: tags,
		Summary: "Send a message",
		Description: "201 with the stored message (with its seq) once it is committed. The same client_id from the same " +
			"sender again answers 200 with the original message and stores nothing; a client_id already used in " +
			"another chat is 409 client_id_reused. attachment_ids are files of the sender's from POST /files (at most 10, " +
			"no repeats; otherwise 422 invalid_attachment); the message carries their metadata and URLs, and the chat's " +
			"members may download them. Every member receives message_new on every connection. In a direct chat with a " +
			"block between the two users (either way) it is 403 blocked. A user makes at most " +
			"NERUTALK_WS_FRAMES_PER_SECOND chat writes a second over REST (sends, edits, deletes, read and delivered marks, " +
			"chat and member changes, invitations and blocks together; bursts of twice that), like a WebSocket connection's frames: over it, " +
			"429 rate_limited with Retry-After.",
		DefaultStatus: http.StatusCreated,
		Responses: map[string]*huma.Response{
			"200": httpapi.JSONResponse[Message](a, "This client_id was sent before by the caller in this chat: the original message, nothing stored"),
		},
		Errors: errs(http.StatusForbidden, nf, http.StatusConflict, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleSend))
	huma.Register(a, huma.Operation{
		OperationID: "listMessages", Method: http.MethodGet, Path: "/chats/{id}/messages", Tags: tags,
		Summary: "History",
		Description: "The limit messages nearest the bound, in ascending seq: after_seq reads forward from it (nearest " +
			"after_seq when before_seq is given too), before_seq reads backward, no bound gives the latest. Deleted " +
			"messages appear as tombstones. next_cursor continues in the same direction.",
		Errors: errs(nf),
	}, s.handleHistory)
	huma.Register(a, huma.Operation{
		OperationID: "editMessage", Method: http.MethodPatch, Path: "/chats/{id}/messages/{msg_id}", Tags: tags,
		Summary: "Edit a message (its sender only)", Description: "Sets edited_at; members receive message_updated. " +
			"Attachments stay; the caption of a file message may become empty. In a direct chat with a block between " +
			"the two users (either way) it is 403 blocked (deleting one's own messages stays allowed).",
		Errors: errs(http.StatusForbidden, nf, http.StatusConflict, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleEdit))
	huma.Register(a, huma.Operation{
		OperationID: "deleteMessage", Method: http.MethodDelete, Path: "/chats/{id}/messages/{msg_id}", Tags: tags,
		Summary: "Delete a message for everyone (its sender, or a group's owner or admin)",
		Description: "Text and attachments are removed (the files are released: a file no message carries any more is " +
			"deleted); the message stays as a tombstone (deleted: true) so seq keeps no gap. Members receive message_deleted. Deleting a tombstone again changes nothing.",
		DefaultStatus: http.StatusNoContent,
		Errors:        errs(http.StatusForbidden, nf, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleDelete))
	huma.Register(a, huma.Operation{
		OperationID: "markRead", Method: http.MethodPost, Path: "/chats/{id}/read", Tags: tags,
		Summary: "Mark the chat read up to seq",
		Description: "read_seq never moves backwards (a lower seq changes nothing); reading implies delivery. When it " +
			"moves, members receive message_read. A seq beyond the last message is 422 seq_out_of_range. In a direct " +
			"chat with a block between the two users (either way) it is 403 blocked.",
		DefaultStatus: http.StatusNoContent,
		Errors:        errs(http.StatusForbidden, nf, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleMarkRead))
	huma.Register(a, huma.Operation{
		OperationID: "markDelivered", Method: http.MethodPost, Path: "/chats/{id}/delivered", Tags: tags,
		Summary: "Mark the chat delivered up to seq (the REST twin of message_delivered)",
		Description: "delivered_seq never moves backwards. When it moves, members receive message_delivered. A seq " +
			"beyond the last message is 422 seq_out_of_range. In a direct chat with a block between the two users " +
			"(either way) it is 403 blocked.",
		DefaultStatus: http.StatusNoContent,
		Errors:        errs(http.StatusForbidden, nf, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleMarkDelivered))
	huma.Register(a, huma.Operation{
		OperationID: "listReceipts", Method: http.MethodGet, Path: "/chats/{id}/receipts", Tags: tags,
		Summary: "Every member's read_seq and delivered_seq", Errors: errs(nf),
	}, s.handleReceipts)
	s.mountBlocks(api)
}

// mountBlocks registers the invitation and blocking routes.
func (s *Service) mountBlocks(api *httpapi.API) {
	a := api.Authed
	nf := http.StatusNotFound
	bad := []int{http.StatusBadRequest, http.StatusUnprocessableEntity}
	inv := []string{"Invitations"}
	blk := []string{"Blocking"}
	huma.Register(a, huma.Operation{
		OperationID: "listInvitations", Method: http.MethodGet, Path: "/invitations", Tags: inv,
		Summary: "The caller's pending invitations to groups, oldest first",
		Description: "An add that the caller's group_adds setting (PATCH /users/me) did not allow. An invitation expires " +
			"14 days after it was made; a user holds at most 100 (further ones are not stored).",
		Errors: bad,
	}, s.handleInvitations)
	huma.Register(a, huma.Operation{
		OperationID: "acceptInvitation", Method: http.MethodPost, Path: "/invitations/{id}/accept", Tags: inv,
		Summary:     "Join the group of an invitation",
		Description: "The answer is the chat; every member receives chat_updated as for an add. Someone else's, expired or unknown invitations are 404.",
		Errors:      append(bad, nf, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleAcceptInvitation))
	huma.Register(a, huma.Operation{
		OperationID: "declineInvitation", Method: http.MethodPost, Path: "/invitations/{id}/decline", Tags: inv,
		Summary: "Decline an invitation (it is deleted; the inviter is not told)", DefaultStatus: http.StatusNoContent,
		Errors: append(bad, nf, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleDeclineInvitation))
	huma.Register(a, huma.Operation{
		OperationID: "blockUser", Method: http.MethodPost, Path: "/users/{id}/block", Tags: blk,
		Summary: "Block a user",
		Description: "Idempotent. While it stands, neither can create or write in their direct chat or call there (403 blocked), " +
			"the blocked user's adds of the caller to groups are swallowed, the blocked user no longer sees the caller's " +
			"presence and the two never see each other's location. Messages in groups both are in still reach both. " +
			"The blocked user's pending invitations to the caller are deleted. Blocking yourself is 400.",
		DefaultStatus: http.StatusNoContent,
		Errors:        append(bad, nf, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleBlock))
	huma.Register(a, huma.Operation{
		OperationID: "unblockUser", Method: http.MethodDelete, Path: "/users/{id}/block", Tags: blk,
		Summary: "Lift a block (idempotent)", DefaultStatus: http.StatusNoContent,
		Errors: append(bad, nf, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleUnblock))
	huma.Register(a, huma.Operation{
		OperationID: "listBlocks", Method: http.MethodGet, Path: "/users/me/blocks", Tags: blk,
		Summary: "The users the caller blocked, by user id",
		Errors:  bad,
	}, s.handleBlocks)
}

func (s *Service) handleInvitations(ctx context.Context, in *httpapi.PageParams) (*httpapi.PageOutput[Invitation], error) {
	items, next, err := s.Invitations(ctx, identity.UserID(ctx), in.Limit, in.Cursor)
	if err != nil {
		return nil, err
	}
	out := &httpapi.PageOutput[Invitation]{}
	out.Body.Items, out.Body.NextCursor = items, next
	return out, nil
}

type invitationPath struct {
	ID string `path:"id" maxLength:"64" format:"uuid" doc:"Invitation id"`
}

func (s *Service) handleAcceptInvitation(ctx context.Context, in *invitationPath) (*chatOutput, error) {
	v, err := s.AcceptInvitation(ctx, identity.UserID(ctx), in.ID)
	if err != nil {
		return nil, err
	}
	return &chatOutput{Status: http.StatusOK, Body: v}, nil
}

func (s *Service) handleDeclineInvitation(ctx context.Context, in *invitationPath) (*struct{}, error) {
	return nil, s.DeclineInvitation(ctx, identity.UserID(ctx), in.ID)
}

type userPath struct {
	ID string `path:"id" maxLength:"64" format:"uuid" doc:"User id"`
}

func (s *Service) handleBlock(ctx context.Context, in *userPath) (*struct{}, error) {
	return nil, s.Block(ctx, identity.UserID(ctx), in.ID)
}

func (s *Service) handleUnblock(ctx context.Context, in *userPath) (*struct{}, error) {
	return nil, s.Unblock(ctx, identity.UserID(ctx), in.ID)
}

func (s *Service) handleBlocks(ctx context.Context, in *httpapi.PageParams) (*httpapi.PageOutput[BlockedUser], error) {
	items, next, err := s.Blocks(ctx, identity.UserID(ctx), in.Limit, in.Cursor)
	if err != nil {
		return nil, err
	}
	out := &httpapi.PageOutput[BlockedUser]{}
	out.Body.Items, out.Body.NextCursor = items, next
	return out, nil
}

type chatPath struct {
	ID string `path:"id" maxLength:"64" format:"uuid" doc:"Chat id"`
}

type memberPath struct {
	ID     string `path:"id" maxLength:"64" format:"uuid" doc:"Chat id"`
	UserID string `path:"user_id" maxLength:"64" format:"uuid" doc:"The member's user id"`
}

type messagePath struct {
	ID    string `path:"id" maxLength:"64" format:"uuid" doc:"Chat id"`
	MsgID string `path:"msg_id" maxLength:"64" format:"uuid" doc:"Message id"`
}

type chatOutput struct {
	Status int
	Body   ChatView
}

type createInput struct {
	Body CreateInput
}

type invitesOutput struct {
	Status int
	Body   ChatWithInvites
}

func (s *Service) handleCreate(ctx context.Context, in *createInput) (*invitesOutput, error) {
	if in.Body.Type == Group {
		if err := ratelimit.Enforce(ctx, s.opts.GroupLimiter, "chat-group:"+identity.UserID(ctx), s.log); err != nil {
			return nil, err
		}
	}
	v, created, err := s.CreateChat(ctx, identity.UserID(ctx), in.Body)
	if err != nil {
		return nil, err
	}
	out := &invitesOutput{Status: http.StatusOK, Body: v}
	if created {
		out.Status = http.StatusCreated
	}
	return out, nil
}

func (s *Service) handleList(ctx context.Context, in *httpapi.PageParams) (*httpapi.PageOutput[ChatView], error) {
	items, next, err := s.List(ctx, identity.UserID(ctx), in.Limit, in.Cursor)
	if err != nil {
		return nil, err
	}
	out := &httpapi.PageOutput[ChatView]{}
	out.Body.Items, out.Body.NextCursor = items, next
	return out, nil
}

func (s *Service) handleGet(ctx context.Context, in *chatPath) (*chatOutput, error) {
	v, err := s.Get(ctx, identity.UserID(ctx), in.ID)
	if err != nil {
		return nil, err
	}
	return &chatOutput{Status: http.StatusOK, Body: v}, nil
}

type membersInput struct {
	ID string `path:"id" maxLength:"64" format:"uuid" doc:"Chat id"`
	httpapi.PageParams
}

func (s *Service) handleMembers(ctx context.Context, in *membersInput) (*httpapi.PageOutput[MemberInfo], error) {
	items, next, err := s.Members(ctx, identity.UserID(ctx), in.ID, in.Limit, in.Cursor)
	if err != nil {
		return nil, err
	}
	out := &httpapi.PageOutput[MemberInfo]{}
	out.Body.Items, out.Body.NextCursor = items, next
	return out, nil
}

type updateInput struct {
	ID   string `path:"id" maxLength:"64" format:"uuid" doc:"Chat id"`
	Body UpdateInput
}

func (s *Service) handleUpdate(ctx context.Context, in *updateInput) (*chatOutput, error) {
	v, err := s.Update(ctx, identity.UserID(ctx), in.ID, in.Body)
	if err != nil {
		return nil, err
	}
	return &chatOutput{Status: http.StatusOK, Body: v}, nil
}

func (s *Service) handleLeave(ctx context.Context, in *chatPath) (*struct{}, error) {
	return nil, s.Leave(ctx, identity.UserID(ctx), in.ID)
}

type addMembersInput struct {
	ID   string `path:"id" maxLength:"64" format:"uuid" doc:"Chat id"`
	Body AddMembersInput
}

func (s *Service) handleAddMembers(ctx context.Context, in *addMembersInput) (*invitesOutput, error) {
	v, err := s.AddMembersInvite(ctx, identity.UserID(ctx), in.ID, in.Body)
	if err != nil {
		return nil, err
	}
	return &invitesOutput{Status: http.StatusOK, Body: v}, nil
}

func (s *Service) handleRemoveMember(ctx context.Context, in *memberPath) (*struct{}, error) {
	return nil, s.RemoveMember(ctx, identity.UserID(ctx), in.ID, in.UserID)
}

type roleInput struct {
	ID     string `path:"id" maxLength:"64" format:"uuid" doc:"Chat id"`
	UserID string `path:"user_id" maxLength:"64" format:"uuid" doc:"The member's user id"`
	Body   RoleInput
}

func (s *Service) handleSetRole(ctx context.Context, in *roleInput) (*chatOutput, error) {
	v, err := s.SetRole(ctx, identity.UserID(ctx), in.ID, in.UserID, in.Body)
	if err != nil {
		return nil, err
	}
	return &chatOutput{Status: http.StatusOK, Body: v}, nil
}

type sendInput struct {
	ID   string `path:"id" maxLength:"64" format:"uuid" doc:"Chat id"`
	Body SendInput
}

type messageOutput struct {
	Status int
	Body   Message
}

func (s *Service) handleSend(ctx context.Context, in *sendInput) (*messageOutput, error) {
	m, existed, err := s.Send(ctx, identity.UserID(ctx), in.ID, in.Body)
	if err != nil {
		return nil, err
	}
	out := &messageOutput{Status: http.StatusCreated, Body: m}
	if existed {
		out.Status = http.StatusOK
	}
	return out, nil
}

// optionalSeq is a query parameter that may be absent (after_seq=0 is a bound, no after_seq is none).
type optionalSeq struct {
	Value int64
	IsSet bool
}

func (o optionalSeq) Schema(r huma.Registry) *huma.Schema {
	sc := huma.SchemaFromType(r, reflect.TypeFor[int64]())
	zero := 0.0
	sc.Minimum = &zero
	return sc
}

func (o *optionalSeq) Receiver() reflect.Value { return reflect.ValueOf(o).Elem().Field(0) }

func (o *optionalSeq) OnParamSet(isSet bool, _ any) { o.IsSet = isSet }

type historyInput struct {
	ID        string      `path:"id" maxLength:"64" format:"uuid" doc:"Chat id"`
	AfterSeq  optionalSeq `query:"after_seq" doc:"Read forward from this seq (exclusive); 0 reads from the first message"`
	BeforeSeq optionalSeq `query:"before_seq" doc:"Read backward from this seq (exclusive)"`
	Limit     int         `query:"limit" minimum:"1" maximum:"200" default:"50" doc:"Page size"`
	Cursor    string      `query:"cursor" maxLength:"256" doc:"next_cursor of the previous page (replaces the bounds)"`
}

type historyOutput struct {
	Body Page
}

func (s *Service) handleHistory(ctx context.Context, in *historyInput) (*historyOutput, error) {
	q := HistoryQuery{After: -1, Limit: in.Limit, Cursor: in.Cursor}
	if in.AfterSeq.IsSet {
		q.After = in.AfterSeq.Value
	}
	if in.BeforeSeq.IsSet {
		if in.BeforeSeq.Value < 1 {
			return nil, huma.Error422UnprocessableEntity("validation failed", &huma.ErrorDetail{
				Location: "query.before_seq", Message: "must be at least 1", Value: in.BeforeSeq.Value})
		}
		q.Before = in.BeforeSeq.Value
	}
	if q.After < -1 {
		return nil, huma.Error422UnprocessableEntity("validation failed", &huma.ErrorDetail{
			Location: "query.after_seq", Message: "must be at least 0", Value: in.AfterSeq.Value})
	}
	p, err := s.History(ctx, identity.UserID(ctx), in.ID, q)
	if err != nil {
		return nil, err
	}
	return &historyOutput{Body: p}, nil
}

type editInput struct {
	ID    string `path:"id" maxLength:"64" format:"uuid" doc:"Chat id"`
	MsgID string `path:"msg_id" maxLength:"64" format:"uuid" doc:"Message id"`
	Body  EditInput
}

func (s *Service) handleEdit(ctx context.Context, in *editInput) (*messageOutput, error) {
	m, err := s.Edit(ctx, identity.UserID(ctx), in.ID, in.MsgID, in.Body)
	if err != nil {
		return nil, err
	}
	return &messageOutput{Status: http.StatusOK, Body: m}, nil
}

func (s *Service) handleDelete(ctx context.Context, in *messagePath) (*struct{}, error) {
	return nil, s.Delete(ctx, identity.UserID(ctx), in.ID, in.MsgID)
}

type markInput struct {
	ID   string `path:"id" maxLength:"64" format:"uuid" doc:"Chat id"`
	Body MarkInput
}

func (s *Service) handleMarkRead(ctx context.Context, in *markInput) (*struct{}, error) {
	return nil, s.Mark(ctx, identity.UserID(ctx), in.ID, in.Body.Seq, true)
}

func (s *Service) handleMarkDelivered(ctx context.Context, in *markInput) (*struct{}, error) {
	return nil, s.Mark(ctx, identity.UserID(ctx), in.ID, in.Body.Seq, false)
}

// handleReceipts answers every member in one page (next_cursor "").
func (s *Service) handleReceipts(ctx context.Context, in *chatPath) (*httpapi.PageOutput[Receipt], error) {
	items, err := s.Receipts(ctx, identity.UserID(ctx), in.ID)
	if err != nil {
		return nil, err
	}
	return &httpapi.PageOutput[Receipt]{Body: httpapi.Page[Receipt]{Items: items}}, nil
}

// limitWrites wraps the handler of a chat write: each counts against the caller's WriteLimiter
// before anything else (429 rate_limited with Retry-After over it).
func limitWrites[I, O any](s *Service, h func(context.Context, *I) (*O, error)) func(context.Context, *I) (*O, error) {
	return ratelimit.PerUser(s.opts.WriteLimiter, "chat-write:", s.log, h)
}
