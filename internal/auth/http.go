package auth

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/identity"
	"github.com/nerutalk/nerutalk/internal/usertext"
)

// The route table of the accounts capability (all under /api/v1):
//
//	public  POST   /auth/register            register
//	public  POST   /auth/login               login
//	public  POST   /auth/refresh             refresh
//	public  POST   /auth/logout              logout
//	authed  GET    /auth/sessions            listSessions
//	authed  DELETE /auth/sessions/{id}       revokeSession
//	authed  GET    /users/me                 getMe
//	authed  PATCH  /users/me                 updateMe
//	authed  PUT    /users/me/password        changePassword
//	authed  PUT    /users/me/avatar          putAvatar
//	authed  DELETE /users/me/avatar          deleteAvatar
//	authed  GET    /users/{id}               getUser
//	authed  GET    /users?q=                 searchUsers
//	admin   GET    /admin/users              adminListUsers
//
// Mount registers them.
func (s *Service) Mount(api *httpapi.API) {
	tags := []string{"Accounts"}
	pub, authed, admin := api.Public, api.Authed, api.Admin

	huma.Register(pub, huma.Operation{
		OperationID: "register", Method: http.MethodPost, Path: "/auth/register", Tags: tags,
		Summary:       "Create an account and sign in",
		Description:   "Creates the account and its first session. Rate limited per client address and per username.",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity, http.StatusTooManyRequests},
	}, s.handleRegister)
	huma.Register(pub, huma.Operation{
		OperationID: "login", Method: http.MethodPost, Path: "/auth/login", Tags: tags,
		Summary: "Sign in with username or email and password",
		Description: "Starts a new session. An unknown login and a wrong password get the same 401 `invalid_credentials`. " +
			"Rate limited per client address and per account.",
		Errors: []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusUnprocessableEntity, http.StatusTooManyRequests},
	}, s.handleLogin)
	huma.Register(pub, huma.Operation{
		OperationID: "refresh", Method: http.MethodPost, Path: "/auth/refresh", Tags: tags,
		Summary: "Exchange a refresh token for a new token pair",
		Description: "The refresh token is single use: the answer carries its replacement. Presenting a token that was " +
			"already exchanged revokes the whole session (401 `refresh_token_reused`), so a client must never refresh " +
			"twice in parallel with the same token. Unknown, expired or revoked tokens get 401 `invalid_token`. " +
			"Rate limited per session (NERUTALK_REFRESHES_PER_MINUTE): 429 `rate_limited` with Retry-After.",
		Errors: []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusUnprocessableEntity, http.StatusTooManyRequests},
	}, s.handleRefresh)
	huma.Register(pub, huma.Operation{
		OperationID: "logout", Method: http.MethodPost, Path: "/auth/logout", Tags: tags,
		Summary:       "Sign out: revoke the session of a refresh token",
		Description:   "Always 204 for a well-formed request, whether or not the token was still valid.",
		DefaultStatus: http.StatusNoContent,
		Errors:        []int{http.StatusBadRequest, http.StatusUnprocessableEntity},
	}, s.handleLogout)

	huma.Register(authed, huma.Operation{
		OperationID: "listSessions", Method: http.MethodGet, Path: "/auth/sessions", Tags: tags,
		Summary: "List the caller's signed-in sessions, newest first",
		Errors:  []int{http.StatusUnprocessableEntity},
	}, s.handleListSessions)
	huma.Register(authed, huma.Operation{
		OperationID: "revokeSession", Method: http.MethodDelete, Path: "/auth/sessions/{id}", Tags: tags,
		Summary:       "Revoke one of the caller's sessions",
		Description:   "Its refresh token stops working at once and its access tokens within seconds. Another user's session is 404.",
		DefaultStatus: http.StatusNoContent,
		Errors:        []int{http.StatusNotFound, http.StatusUnprocessableEntity},
	}, s.handleRevokeSession)

	huma.Register(authed, huma.Operation{
		OperationID: "getMe", Method: http.MethodGet, Path: "/users/me", Tags: tags,
		Summary: "The caller's profile (with email)",
	}, s.handleGetMe)
	huma.Register(authed, huma.Operation{
		OperationID: "updateMe", Method: http.MethodPatch, Path: "/users/me", Tags: tags,
		Summary: "Change the caller's display name or bio",
		Errors:  []int{http.StatusBadRequest, http.StatusUnprocessableEntity},
	}, s.handleUpdateMe)
	huma.Register(authed, huma.Operation{
		OperationID: "changePassword", Method: http.MethodPut, Path: "/users/me/password", Tags: tags,
		Summary:       "Change the caller's password",
		Description:   "Every other session of the caller is revoked. A wrong current password is 403 `invalid_credentials`.",
		DefaultStatus: http.StatusNoContent,
		Errors:        []int{http.StatusBadRequest, http.StatusForbidden, http.StatusUnprocessableEntity, http.StatusTooManyRequests},
	}, s.handleChangePassword)
	huma.Register(authed, huma.Operation{
		OperationID: "putAvatar", Method: http.MethodPut, Path: "/users/me/avatar", Tags: tags,
		Summary: "Upload the caller's avatar",
		Description: "A multipart/form-data body with the image in the field `file` (JPEG, PNG, GIF or WebP). " +
			"The image is re-encoded; the answer is the profile with its new `avatar_url`.",
		MaxBodyBytes: s.o.AvatarMaxBytes + multipartOverhead,
		// Admitted (uploads in progress and per minute, shared with file uploads) before huma
		// reads the body.
		Middlewares: huma.Middlewares{s.admitAvatarUpload},
		// The documented multipart schema below would make huma parse the body as that type;
		// avatarPart reads it instead.
		SkipValidateBody: true,
		RequestBody: &huma.RequestBody{
			Required: true,
			Content: map[string]*huma.MediaType{"multipart/form-data": {
				Schema: &huma.Schema{
					Type:       huma.TypeObject,
					Required:   []string{"file"},
					Properties: map[string]*huma.Schema{"file": {Type: huma.TypeString, Format: "binary", Description: "The image"}},
				},
				Encoding: map[string]*huma.Encoding{"file": {ContentType: "image/jpeg, image/png, image/gif, image/webp"}},
			}},
		},
		Errors: []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType,
			http.StatusUnprocessableEntity, http.StatusTooManyRequests, http.StatusServiceUnavailable},
	}, s.handlePutAvatar)
	huma.Register(authed, huma.Operation{
		OperationID: "deleteAvatar", Method: http.MethodDelete, Path: "/users/me/avatar", Tags: tags,
		Summary: "Remove the caller's avatar",
		Errors:  []int{http.StatusServiceUnavailable},
	}, s.handleDeleteAvatar)
	huma.Register(authed, huma.Operation{
		OperationID: "getUser", Method: http.MethodGet, Path: "/users/{id}", Tags: tags,
		Summary: "A user's public profile (never the email)",
		Errors:  []int{http.StatusNotFound, http.StatusUnprocessableEntity},
	}, s.handleGetUser)
	huma.Register(authed, huma.Operation{
		OperationID: "searchUsers", Method: http.MethodGet, Path: "/users", Tags: tags,
		Summary:     "Search users by username or display name prefix",
		Description: "Case-insensitive prefix match on username and display name, in username order. Public profiles only.",
		Errors:      []int{http.StatusUnprocessableEntity},
	}, s.handleSearchUsers)
	huma.Register(admin, huma.Operation{
		OperationID: "adminListUsers", Method: http.MethodGet, Path: "/admin/users", Tags: tags,
		Summary: "List every account with its email and role, oldest first",
		Errors:  []int{http.StatusUnprocessableEntity},
	}, s.handleAdminListUsers)
}

// multipartOverhead is what the multipart envelope may add to an avatar's bytes.
const multipartOverhead = 64 << 10

// ClientInfo is embedded in the inputs of sign-in operations and filled from the request: the
// User-Agent header and the peer address (X-Forwarded-For is not trusted). It is exported only
// because huma reads the fields of embedded structs of exported types.
type ClientInfo struct {
	UserAgent string `header:"User-Agent" hidden:"true"`
	ip        string
}

// Resolve implements huma.Resolver.
func (c *ClientInfo) Resolve(ctx huma.Context) []error {
	c.ip = remoteIP(ctx.RemoteAddr())
	return nil
}

type tokenOutput struct {
	Body *TokenPair
}

type registerInput struct {
	ClientInfo
	Body struct {
		Username    string `json:"username" minLength:"3" maxLength:"32" pattern:"^[A-Za-z0-9_.]+$" doc:"3 to 32 characters: letters, digits, '_' and '.'; stored lower-case" example:"ana.silva"`
		Email       string `json:"email" minLength:"1" maxLength:"254" doc:"Email address; stored lower-case" example:"ana@example.com"`
		Password    string `json:"password" minLength:"8" maxLength:"128" doc:"8 to 128 characters"`
		DisplayName string `json:"display_name,omitempty" maxLength:"64" doc:"1 to 64 characters; defaults to the username"`
		DeviceName  string `json:"device_name,omitempty" maxLength:"64" doc:"Name of this device in the session list; defaults to one derived from the User-Agent"`
	}
}

// Resolve adds to huma's schema checks the ones a schema cannot express (a plain email address,
// the characters of the names), so that a registration's 422 lists every offending field at
// once. A field whose length the schema already refuses is not checked again.
func (in *registerInput) Resolve(ctx huma.Context) []error {
	errs := in.ClientInfo.Resolve(ctx)
	b := in.Body
	add := func(err error) {
		if ae, ok := apperr.As(err); ok {
			for _, f := range ae.Fields {
				errs = append(errs, &huma.ErrorDetail{Location: f.Location, Message: f.Message})
			}
		}
	}
	if n := utf8.RuneCountInString(b.Email); n >= 1 && n <= emailMax {
		_, err := normalizeEmail("body.email", b.Email)
		add(err)
	}
	if n := utf8.RuneCountInString(b.DisplayName); n >= 1 && n <= displayNameMax {
		_, err := normalizeDisplayName("body.display_name", b.DisplayName)
		add(err)
	}
	if utf8.RuneCountInString(b.DeviceName) <= deviceNameMax {
		_, err := cleanDeviceName("body.device_name", b.DeviceName)
		add(err)
	}
	return errs
}

func (s *Service) handleRegister(ctx context.Context, in *registerInput) (*tokenOutput, error) {
	b := in.Body
	p, err := s.register(ctx, registerRequest{Username: b.Username, Email: b.Email, Password: b.Password, DisplayName: b.DisplayName, DeviceName: b.DeviceName},
		client{ip: in.ip, userAgent: in.UserAgent})
	if err != nil {
		return nil, err
	}
	return &tokenOutput{Body: p}, nil
}

type loginInput struct {
	ClientInfo
	Body struct {
		Login      string `json:"login" minLength:"1" maxLength:"254" doc:"Username or email" example:"ana.silva"`
		Password   string `json:"password" minLength:"1" maxLength:"128"`
		DeviceName string `json:"device_name,omitempty" maxLength:"64" doc:"Name of this device in the session list"`
	}
}

func (s *Service) handleLogin(ctx context.Context, in *loginInput) (*tokenOutput, error) {
	p, err := s.login(ctx, loginRequest{Login: in.Body.Login, Password: in.Body.Password, DeviceName: in.Body.DeviceName},
		client{ip: in.ip, userAgent: in.UserAgent})
	if err != nil {
		return nil, err
	}
	return &tokenOutput{Body: p}, nil
}

type refreshTokenInput struct {
	Body struct {
		RefreshToken string `json:"refresh_token" minLength:"1" maxLength:"256" doc:"The refresh token from the last sign-in or refresh"`
	}
}

func (s *Service) handleRefresh(ctx context.Context, in *refreshTokenInput) (*tokenOutput, error) {
	p, err := s.refresh(ctx, in.Body.RefreshToken)
	if err != nil {
		return nil, err
	}
	return &tokenOutput{Body: p}, nil
}

func (s *Service) handleLogout(ctx context.Context, in *refreshTokenInput) (*struct{}, error) {
	return nil, s.logout(ctx, in.Body.RefreshToken)
}

// caller returns the authenticated caller; the Authed group guarantees there is one.
func caller(ctx context.Context) (identity.Principal, error) {
	p, ok := identity.From(ctx)
	if !ok {
		return p, httpapi.ErrNoToken
	}
	return p, nil
}

func (s *Service) handleListSessions(ctx context.Context, in *httpapi.PageParams) (*httpapi.PageOutput[Session], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	before, err := decodeCursor("s", in.Cursor)
	if err != nil {
		return nil, err
	}
	list, err := s.sessions.list(ctx, p.UserID, before, in.Limit+1, s.now())
	if err != nil {
		return nil, err
	}
	out := &httpapi.PageOutput[Session]{}
	if len(list) > in.Limit {
		list = list[:in.Limit]
		out.Body.NextCursor = encodeCursor("s", list[len(list)-1].ID)
	}
	for i := range list {
		list[i].Current = list[i].ID == p.SessionID
	}
	out.Body.Items = list
	return out, nil
}

type idInput struct {
	ID string `path:"id" maxLength:"64" format:"uuid" doc:"Id"`
}

func (s *Service) handleRevokeSession(ctx context.Context, in *idInput) (*struct{}, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	return nil, s.revokeSession(ctx, p, in.ID)
}

type profileOutput struct {
	Body *Profile
}

func (s *Service) handleGetMe(ctx context.Context, _ *struct{}) (*profileOutput, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.users.byID(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	return &profileOutput{Body: &a.Profile}, nil
}

type updateMeInput struct {
	Body struct {
		DisplayName *string `json:"display_name,omitempty" maxLength:"64" doc:"1 to 64 characters"`
		Bio         *string `json:"bio,omitempty" maxLength:"500" doc:"At most 500 characters; empty clears it"`
		GroupAdds   *string `json:"group_adds,omitempty" enum:"everyone,contacts,nobody" doc:"Who may add you to groups directly (see GET /users/me)" example:"contacts"`
	}
}

func (s *Service) handleUpdateMe(ctx context.Context, in *updateMeInput) (*profileOutput, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	prof, err := s.updateProfile(ctx, p, profilePatch{DisplayName: in.Body.DisplayName, Bio: in.Body.Bio, GroupAdds: in.Body.GroupAdds})
	if err != nil {
		return nil, err
	}
	return &profileOutput{Body: prof}, nil
}

type changePasswordInput struct {
	ClientInfo
	Body struct {
		CurrentPassword string `json:"current_password" minLength:"1" maxLength:"128"`
		NewPassword     string `json:"new_password" minLength:"8" maxLength:"128" doc:"8 to 128 characters"`
	}
}

func (s *Service) handleChangePassword(ctx context.Context, in *changePasswordInput) (*struct{}, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	return nil, s.changePassword(ctx, p, in.ip, in.Body.CurrentPassword, in.Body.NewPassword)
}

// avatarInput takes the raw multipart body: huma reads at most the operation's MaxBodyBytes and
// answers 413 beyond, where its multipart decoding has no size limit (large parts would spill
// to temporary files) and reports failures as 422.
type avatarInput struct {
	ContentType string `header:"Content-Type" hidden:"true"`
	RawBody     []byte `contentType:"multipart/form-data"`
}

var (
	errNotMultipart = apperr.New(apperr.KindUnsupportedType, "unsupported_media_type", "send the avatar as multipart/form-data with the image in the field \"file\"")
	errBadMultipart = apperr.New(apperr.KindBadRequest, "bad_request", "the multipart body cannot be read")
)

func (s *Service) handlePutAvatar(ctx context.Context, in *avatarInput) (*profileOutput, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if s.avatars == nil {
		return nil, errAvatarsUnavailable
	}
	img, err := avatarPart(in.ContentType, in.RawBody, s.o.AvatarMaxBytes)
	if err != nil {
		return nil, err
	}
	prof, err := s.setAvatar(ctx, p, bytes.NewReader(img))
	if err != nil {
		return nil, err
	}
	return &profileOutput{Body: prof}, nil
}

// admitAvatarUpload is the middleware of PUT /users/me/avatar: it runs after authentication and
// before huma reads the body, and holds the upload's slot until the handler returns.
func (s *Service) admitAvatarUpload(hctx huma.Context, next func(huma.Context)) {
	p, err := caller(hctx.Context())
	if err != nil || s.avatars == nil { // the handler answers both
		next(hctx)
		return
	}
	release, err := s.avatars.BeginAvatarUpload(hctx.Context(), p.UserID)
	if err != nil {
		r, w := humachi.Unwrap(hctx)
		httpapi.WriteError(w, r, err)
		return
	}
	defer release()
	next(hctx)
}

// avatarPart extracts the field "file" of a multipart/form-data body, at most maxBytes long.
func avatarPart(contentType string, body []byte, maxBytes int64) ([]byte, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, errNotMultipart
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var img []byte
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, errBadMultipart
		}
		if part.FormName() != "file" {
			continue
		}
		if img != nil {
			return nil, apperr.Invalid("body.file", "send exactly one file")
		}
		data, err := io.ReadAll(io.LimitReader(part, maxBytes+1))
		if err != nil {
			return nil, errBadMultipart
		}
		if int64(len(data)) > maxBytes {
			return nil, apperr.New(apperr.KindTooLarge, "too_large", "the avatar is larger than the limit")
		}
		if len(data) == 0 {
			return nil, apperr.Invalid("body.file", "the file is empty")
		}
		img = data
	}
	if img == nil {
		return nil, apperr.Invalid("body.file", "required: the image in the multipart field \"file\"")
	}
	return img, nil
}

func (s *Service) handleDeleteAvatar(ctx context.Context, _ *struct{}) (*profileOutput, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	prof, err := s.deleteAvatar(ctx, p)
	if err != nil {
		return nil, err
	}
	return &profileOutput{Body: prof}, nil
}

type publicUserOutput struct {
	Body *PublicUser
}

func (s *Service) handleGetUser(ctx context.Context, in *idInput) (*publicUserOutput, error) {
	a, err := s.users.byID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	return &publicUserOutput{Body: &a.PublicUser}, nil
}

type searchInput struct {
	Q string `query:"q" required:"true" minLength:"1" maxLength:"64" doc:"Prefix of a username or display name (case-insensitive)"`
	httpapi.PageParams
}

func (s *Service) handleSearchUsers(ctx context.Context, in *searchInput) (*httpapi.PageOutput[PublicUser], error) {
	if err := usertext.Name.Check(in.Q); err != nil { // no name has these: refused before SQL
		return nil, apperr.Invalid("query.q", err.Error())
	}
	after, err := decodeCursor("u", in.Cursor)
	if err != nil {
		return nil, err
	}
	list, err := s.users.search(ctx, in.Q, after, in.Limit+1)
	if err != nil {
		return nil, err
	}
	out := &httpapi.PageOutput[PublicUser]{}
	out.Body.Items = []PublicUser{}
	if len(list) > in.Limit {
		list = list[:in.Limit]
		out.Body.NextCursor = encodeCursor("u", searchKey(list[len(list)-1].Username))
	}
	for _, a := range list {
		out.Body.Items = append(out.Body.Items, a.PublicUser)
	}
	return out, nil
}

func (s *Service) handleAdminListUsers(ctx context.Context, in *httpapi.PageParams) (*httpapi.PageOutput[AdminUser], error) {
	after, err := decodeCursor("a", in.Cursor)
	if err != nil {
		return nil, err
	}
	list, err := s.users.list(ctx, after, in.Limit+1)
	if err != nil {
		return nil, err
	}
	out := &httpapi.PageOutput[AdminUser]{}
	out.Body.Items = []AdminUser{}
	if len(list) > in.Limit {
		list = list[:in.Limit]
		out.Body.NextCursor = encodeCursor("a", list[len(list)-1].ID)
	}
	for _, a := range list {
		out.Body.Items = append(out.Body.Items, AdminUser{Profile: a.Profile, Role: a.Role, UpdatedAt: a.UpdatedAt})
	}
	return out, nil
}
