package push

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/identity"
)

// The route table of push (under /api/v1):
//
//	authed  POST   /devices                                   registerDevice
//	authed  GET    /devices                                   listDevices
//	authed  DELETE /devices/{id}                              deleteDevice
//	public  GET    /push/webpush-key                          webPushKey
//	authed  GET    /chats/{id}/notifications                  getChatNotifications
//	authed  PUT    /chats/{id}/notifications                  setChatNotifications
//	authed  GET    /notifications/settings                    getNotificationSettings
//	authed  PUT    /notifications/settings                    setNotificationSettings
//	authed  GET    /notifications                             listNotifications
//	admin   POST   /notifications/send                        sendNotification
//	admin   POST   /notifications/broadcast                   broadcastNotification
//	admin   GET    /notifications/stats                       notificationStats
//	admin   GET    /notifications/templates                   listTemplates
//	admin   POST   /notifications/templates                   createTemplate
//	admin   GET    /notifications/templates/{id}              getTemplate
//	admin   PUT    /notifications/templates/{id}              putTemplate
//	admin   DELETE /notifications/templates/{id}              deleteTemplate
//
// Mount registers them.
func (s *Service) Mount(api *httpapi.API) {
	tags := []string{"Push"}
	bad := []int{http.StatusBadRequest, http.StatusUnprocessableEntity}
	errs := func(extra ...int) []int { return append(append([]int{}, bad...), extra...) }
	nf := http.StatusNotFound

	huma.Register(api.Authed, huma.Operation{
		OperationID: "registerDevice", Method: http.MethodPost, Path: "/devices", Tags: tags,
		Summary: "Register a push endpoint for this session",
		Description: "platform android, ios or web; provider defaults to fcm, apns and webpush respectively (ios may use fcm, " +
			"web may use fcm). Web Push sends the browser's subscription (endpoint and keys). Registering the same token " +
			"again updates that device (also when another account had it: it moves to the caller), and a session that " +
			"registers a new token for the same provider and app replaces its previous one: no duplicates. The answer " +
			"is 201 with the device either way. Signing the session out (logout, revocation, refresh-token reuse, a " +
			"password change) removes the devices it registered. A user has at most 20 devices (push.MaxDevices): one " +
			"more is 409 too_many_devices.",
		DefaultStatus: http.StatusCreated,
		Errors:        errs(http.StatusConflict),
	}, s.handleRegister)
	huma.Register(api.Authed, huma.Operation{
		OperationID: "listDevices", Method: http.MethodGet, Path: "/devices", Tags: tags,
		Summary: "The caller's devices", Errors: errs(),
	}, s.handleListDevices)
	huma.Register(api.Authed, huma.Operation{
		OperationID: "deleteDevice", Method: http.MethodDelete, Path: "/devices/{id}", Tags: tags,
		Summary: "Remove a device", Description: "Another user's device is 404.",
		DefaultStatus: http.StatusNoContent, Errors: errs(nf),
	}, s.handleDeleteDevice)
	huma.Register(api.Public, huma.Operation{
		OperationID: "webPushKey", Method: http.MethodGet, Path: "/push/webpush-key", Tags: tags,
		Summary:     "The VAPID public key browsers subscribe with",
		Description: "Pass it as applicationServerKey to PushManager.subscribe. 404 webpush_unavailable when Web Push is not set up.",
		Errors:      []int{nf},
	}, s.handleWebPushKey)
	huma.Register(api.Authed, huma.Operation{
		OperationID: "getChatNotifications", Method: http.MethodGet, Path: "/chats/{id}/notifications", Tags: tags,
		Summary: "The caller's notification setting for a chat", Description: "Members only (404 otherwise).",
		Errors: errs(nf),
	}, s.handleGetChatPref)
	huma.Register(api.Authed, huma.Operation{
		OperationID: "setChatNotifications", Method: http.MethodPut, Path: "/chats/{id}/notifications", Tags: tags,
		Summary: "Set the caller's notification setting for a chat",
		Description: "mode all (default), mentions (only messages naming you as @username) or none; muted_until silences the " +
			"chat until then. Members only (404 otherwise).",
		Errors: errs(nf),
	}, s.handleSetChatPref)
	huma.Register(api.Authed, huma.Operation{
		OperationID: "getNotificationSettings", Method: http.MethodGet, Path: "/notifications/settings", Tags: tags,
		Summary: "The caller's global notification settings", Errors: errs(),
	}, s.handleGetSettings)
	huma.Register(api.Authed, huma.Operation{
		OperationID: "setNotificationSettings", Method: http.MethodPut, Path: "/notifications/settings", Tags: tags,
		Summary: "Replace the caller's global notification settings",
		Description: "previews false: pushes carry no message text. dnd: a daily window (start and end as HH:MM in timezone) " +
			"in which no push is sent (except the one that stops a ringing call).",
		Errors: errs(),
	}, s.handleSetSettings)
	huma.Register(api.Authed, huma.Operation{
		OperationID: "listNotifications", Method: http.MethodGet, Path: "/notifications", Tags: tags,
		Summary:     "The caller's notification history, newest first",
		Description: "Every notification addressed to the caller, sent or not (status, and reason when skipped).",
		Errors:      errs(),
	}, s.handleHistory)

	huma.Register(api.Admin, huma.Operation{
		OperationID: "sendNotification", Method: http.MethodPost, Path: "/notifications/send", Tags: tags,
		Summary:       "Send a notification to given users (admin)",
		Description:   "Queued in the outbox (202); each user's devices get it. Rate limited per admin (429).",
		DefaultStatus: http.StatusAccepted,
		Errors:        errs(http.StatusForbidden, http.StatusTooManyRequests),
	}, s.handleSend)
	huma.Register(api.Admin, huma.Operation{
		OperationID: "broadcastNotification", Method: http.MethodPost, Path: "/notifications/broadcast", Tags: tags,
		Summary: "Send a notification to every user, or a segment (admin)",
		Description: "Every user with a device, or only devices of a platform and/or a locale. Queued in the outbox (202). " +
			"Rate limited per admin (429).",
		DefaultStatus: http.StatusAccepted,
		Errors:        errs(http.StatusForbidden, http.StatusTooManyRequests),
	}, s.handleBroadcast)
	huma.Register(api.Admin, huma.Operation{
		OperationID: "notificationStats", Method: http.MethodGet, Path: "/notifications/stats", Tags: tags,
		Summary:     "Notification counts over a period (admin)",
		Description: "Rows created in [since, until) (default: the last 24 hours), by outcome, provider and type.",
		Errors:      errs(http.StatusForbidden),
	}, s.handleStats)
	huma.Register(api.Admin, huma.Operation{
		OperationID: "listTemplates", Method: http.MethodGet, Path: "/notifications/templates", Tags: tags,
		Summary: "Notification templates (admin)", Description: "Stored templates and the built-in English defaults.",
		Errors: errs(http.StatusForbidden),
	}, s.handleListTemplates)
	huma.Register(api.Admin, huma.Operation{
		OperationID: "createTemplate", Method: http.MethodPost, Path: "/notifications/templates", Tags: tags,
		Summary:       "Create a template (admin)",
		Description:   "Its id is <type>:<locale>. A stored template of the same type and locale is 409 (PUT replaces it). Placeholders as for PUT.",
		DefaultStatus: http.StatusCreated, Errors: errs(http.StatusForbidden, http.StatusConflict),
	}, s.handleCreateTemplate)
	huma.Register(api.Admin, huma.Operation{
		OperationID: "getTemplate", Method: http.MethodGet, Path: "/notifications/templates/{id}", Tags: tags,
		Summary: "One template (admin)", Errors: errs(http.StatusForbidden, nf),
	}, s.handleGetTemplate)
	huma.Register(api.Admin, huma.Operation{
		OperationID: "putTemplate", Method: http.MethodPut, Path: "/notifications/templates/{id}", Tags: tags,
		Summary: "Create or replace a template (admin)",
		Description: "Placeholders {{sender}}, {{chat}}, {{preview}} and {{count}} are replaced by plain substitution: " +
			"what users write is never read as template syntax. Any other {{...}} is 422. A device whose locale has no " +
			"template gets its language's, then the fallback locale's (NERUTALK_PUSH_FALLBACK_LOCALE), then the built-in one.",
		Errors: errs(http.StatusForbidden),
	}, s.handlePutTemplate)
	huma.Register(api.Admin, huma.Operation{
		OperationID: "deleteTemplate", Method: http.MethodDelete, Path: "/notifications/templates/{id}", Tags: tags,
		Summary: "Remove a template (admin)", DefaultStatus: http.StatusNoContent, Errors: errs(http.StatusForbidden, nf),
	}, s.handleDeleteTemplate)
}

type registerInput struct{ Body DeviceInput }
type deviceOutput struct {
	Status int
	Body   Device
}

func (s *Service) handleRegister(ctx context.Context, in *registerInput) (*deviceOutput, error) {
	p, _ := identity.From(ctx)
	d, _, err := s.RegisterDevice(ctx, p.UserID, p.SessionID, in.Body)
	if err != nil {
		return nil, err
	}
	return &deviceOutput{Status: http.StatusCreated, Body: d}, nil
}

type listOutput[T any] struct{ Body httpapi.Page[T] }

func (s *Service) handleListDevices(ctx context.Context, _ *struct{}) (*listOutput[Device], error) {
	ds, err := s.Devices(ctx, identity.UserID(ctx))
	if err != nil {
		return nil, err
	}
	return &listOutput[Device]{Body: httpapi.Page[Device]{Items: ds}}, nil
}

type idPath struct {
	ID string `path:"id" maxLength:"64" format:"uuid"`
}

func (s *Service) handleDeleteDevice(ctx context.Context, in *idPath) (*struct{}, error) {
	return nil, s.DeleteDevice(ctx, identity.UserID(ctx), in.ID)
}

// WebPushKey is the answer of GET /push/webpush-key.
type WebPushKey struct {
	PublicKey string `json:"public_key" doc:"base64url of the uncompressed P-256 public key"`
}

func (s *Service) handleWebPushKey(context.Context, *struct{}) (*struct{ Body WebPushKey }, error) {
	if s.o.VAPIDPublicKey == "" {
		return nil, apperr.New(apperr.KindNotFound, "webpush_unavailable", "Web Push is not configured on this server")
	}
	return &struct{ Body WebPushKey }{Body: WebPushKey{PublicKey: s.o.VAPIDPublicKey}}, nil
}

func (s *Service) handleGetChatPref(ctx context.Context, in *idPath) (*struct{ Body ChatNotifications }, error) {
	p, err := s.ChatPref(ctx, identity.UserID(ctx), in.ID)
	if err != nil {
		return nil, err
	}
	return &struct{ Body ChatNotifications }{Body: p}, nil
}

type chatPrefInput struct {
	ID   string `path:"id" maxLength:"64" format:"uuid" doc:"Chat id"`
	Body ChatNotificationsInput
}

func (s *Service) handleSetChatPref(ctx context.Context, in *chatPrefInput) (*struct{ Body ChatNotifications }, error) {
	p, err := s.SetChatPref(ctx, identity.UserID(ctx), in.ID, in.Body)
	if err != nil {
		return nil, err
	}
	return &struct{ Body ChatNotifications }{Body: p}, nil
}

func (s *Service) handleGetSettings(ctx context.Context, _ *struct{}) (*struct{ Body NotificationSettings }, error) {
	st, err := s.Settings(ctx, identity.UserID(ctx))
	if err != nil {
		return nil, err
	}
	return &struct{ Body NotificationSettings }{Body: st}, nil
}

func (s *Service) handleSetSettings(ctx context.Context, in *struct{ Body NotificationSettingsInput }) (*struct{ Body NotificationSettings }, error) {
	st, err := s.SetSettings(ctx, identity.UserID(ctx), in.Body)
	if err != nil {
		return nil, err
	}
	return &struct{ Body NotificationSettings }{Body: st}, nil
}

func (s *Service) handleHistory(ctx context.Context, in *httpapi.PageParams) (*httpapi.PageOutput[NotificationItem], error) {
	items, next, err := s.History(ctx, identity.UserID(ctx), in.Limit, in.Cursor)
	if err != nil {
		return nil, err
	}
	if items == nil {
		items = []NotificationItem{}
	}
	return &httpapi.PageOutput[NotificationItem]{Body: httpapi.Page[NotificationItem]{Items: items, NextCursor: next}}, nil
}

type queuedOutput struct {
	Status int
	Body   NotificationsQueued
}

func (s *Service) handleSend(ctx context.Context, in *struct{ Body AdminSendInput }) (*queuedOutput, error) {
	q, err := s.Send(ctx, identity.UserID(ctx), in.Body)
	if err != nil {
		return nil, err
	}
	return &queuedOutput{Status: http.StatusAccepted, Body: q}, nil
}

func (s *Service) handleBroadcast(ctx context.Context, in *struct{ Body AdminBroadcastInput }) (*queuedOutput, error) {
	q, err := s.Broadcast(ctx, identity.UserID(ctx), in.Body)
	if err != nil {
		return nil, err
	}
	return &queuedOutput{Status: http.StatusAccepted, Body: q}, nil
}

type statsInput struct {
	Since time.Time `query:"since" doc:"Start (RFC 3339); default 24 hours before until"`
	Until time.Time `query:"until" doc:"End (RFC 3339); default now"`
}

func (s *Service) handleStats(ctx context.Context, in *statsInput) (*struct{ Body NotificationStats }, error) {
	until := in.Until
	if until.IsZero() {
		until = s.o.Now().Add(time.Millisecond)
	}
	since := in.Since
	if since.IsZero() {
		since = until.Add(-24 * time.Hour)
	}
	st, err := s.Stats(ctx, since, until)
	if err != nil {
		return nil, err
	}
	return &struct{ Body NotificationStats }{Body: st}, nil
}

func (s *Service) handleListTemplates(ctx context.Context, _ *struct{}) (*listOutput[NotificationTemplate], error) {
	ts, err := s.Templates(ctx)
	if err != nil {
		return nil, err
	}
	return &listOutput[NotificationTemplate]{Body: httpapi.Page[NotificationTemplate]{Items: ts}}, nil
}

type templatePath struct {
	ID string `path:"id" maxLength:"68" doc:"<type>:<locale>, e.g. message:de"`
}

type templateOutput struct {
	Status int
	Body   NotificationTemplate
}

func (s *Service) handleCreateTemplate(ctx context.Context, in *struct{ Body NewNotificationTemplate }) (*templateOutput, error) {
	t, err := s.CreateTemplate(ctx, in.Body)
	if err != nil {
		return nil, err
	}
	return &templateOutput{Status: http.StatusCreated, Body: t}, nil
}

func (s *Service) handleGetTemplate(ctx context.Context, in *templatePath) (*templateOutput, error) {
	typ, locale, err := parseTemplateID(in.ID)
	if err != nil {
		return nil, err
	}
	t, err := s.Template(ctx, typ, locale)
	if err != nil {
		return nil, err
	}
	return &templateOutput{Status: http.StatusOK, Body: t}, nil
}

type putTemplateInput struct {
	ID   string `path:"id" maxLength:"68" doc:"<type>:<locale>, e.g. message:de"`
	Body NotificationTemplateInput
}

func (s *Service) handlePutTemplate(ctx context.Context, in *putTemplateInput) (*templateOutput, error) {
	typ, locale, err := parseTemplateID(in.ID)
	if err != nil {
		return nil, err
	}
	t, err := s.PutTemplate(ctx, typ, locale, in.Body)
	if err != nil {
		return nil, err
	}
	return &templateOutput{Status: http.StatusOK, Body: t}, nil
}

func (s *Service) handleDeleteTemplate(ctx context.Context, in *templatePath) (*struct{}, error) {
	typ, locale, err := parseTemplateID(in.ID)
	if err != nil {
		return nil, err
	}
	return nil, s.DeleteTemplate(ctx, typ, locale)
}
