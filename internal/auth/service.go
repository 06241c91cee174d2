package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/identity"
	"github.com/nerutalk/nerutalk/internal/ratelimit"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/usertext"
)

// AvatarStore keeps avatar images. The media package implements it (*media.Avatars).
type AvatarStore interface {
	// SaveAvatar validates, re-encodes and stores the image read from r and returns its public
	// URL. Its errors are *apperr.Error for bad input (415, 422, 413).
	SaveAvatar(ctx context.Context, userID string, r io.Reader) (avatarURL string, err error)
	// DeleteAvatar removes an image that SaveAvatar stored.
	DeleteAvatar(ctx context.Context, avatarURL string) error
	// BeginAvatarUpload admits an upload of userID before its body is read, or refuses it with
	// an *apperr.Error (429: the user's uploads in progress or per minute). release is called
	// once the upload has ended, however it ended.
	BeginAvatarUpload(ctx context.Context, userID string) (release func(), err error)
}

// Options configures a Service.
type Options struct {
	SigningKey      []byte        // HMAC key of access tokens, at least 32 bytes
	AccessTokenTTL  time.Duration // lifetime of access tokens
	RefreshTokenTTL time.Duration // lifetime of a refresh token (renewed by every rotation)
	// MaxSessionsPerUser caps a user's live sessions: signing in beyond it revokes the least
	// recently used ones, so that the cap never locks the user out. 0 means
	// DefaultMaxSessionsPerUser.
	MaxSessionsPerUser int
	Argon2             Argon2Params // cost of new password hashes
	// HashConcurrency bounds the password hashes computed at once (each takes Argon2.MemoryKiB);
	// 0 means GOMAXPROCS.
	HashConcurrency int
	// IPLimiter counts attempts to register, log in or change a password per client address
	// (IPv6 per /64). Nil means no limit.
	IPLimiter ratelimit.Limiter
	// PairLimiter counts failed sign-ins (and wrong current passwords) per account and address;
	// AccountLimiter counts failed sign-ins per account from every address, the limit against
	// distributed guessing (and registrations per username). See loginLimits in limits.go and
	// SECURITY.md. Nil means no limit.
	PairLimiter, AccountLimiter ratelimit.Counter
	// RefreshLimiter counts token refreshes per session (NERUTALK_REFRESHES_PER_MINUTE), checked
	// before the refresh's write transaction; nil means unlimited.
	RefreshLimiter ratelimit.Limiter
	// Avatars stores avatar images; nil answers the avatar endpoints with 503 avatars_unavailable.
	Avatars        AvatarStore
	AvatarMaxBytes int64
	// SessionCacheTTL is how long the Authenticator trusts what it read about a session: the bound
	// on how long a session revoked by another node (or an admin role changed from the command
	// line) still passes here. 0 means DefaultSessionCacheTTL; negative disables the cache.
	SessionCacheTTL time.Duration
	// Signals, when not nil (the realtime hub), makes revocations take effect on every node at
	// once, instead of within SessionCacheTTL: each node stops trusting the sessions and closes
	// their WebSockets.
	Signals Signals
	Now     func() time.Time // the clock; nil means time.Now
	// OnSessionsRevoked, when set, is called on the node that revoked sessions of userID (sign-out,
	// DELETE /auth/sessions/{id}, refresh-token reuse, a password change), after the revocation is
	// stored: push removes the devices those sessions registered.
	OnSessionsRevoked func(ctx context.Context, userID string, sessionIDs []string)
}

// DefaultMaxSessionsPerUser is the default of Options.MaxSessionsPerUser.
const DefaultMaxSessionsPerUser = 50

// DefaultSessionCacheTTL is the default of Options.SessionCacheTTL.
const DefaultSessionCacheTTL = 5 * time.Second

// AttemptsPerMinute is the default rate of sign-in attempts per address.
const AttemptsPerMinute = 10

// The default limits of failed sign-ins (see limits.go): per account and address, and per
// account from every address (against distributed guessing). A correct password is refused only
// for its own address's failures, or while the account is over AccountFailures from an address
// that never signed into it.
var (
	PairFailures    = ratelimit.Rate{Events: 10, Per: 15 * time.Minute}
	AccountFailures = ratelimit.Rate{Events: 100, Per: 15 * time.Minute}
)

const sessionCacheMax = 100_000

// FromConfig returns the Options that the configuration asks for, signing with key. Avatars is left
// nil for the caller to set.
func FromConfig(cfg config.Config, key []byte) Options {
	o := Options{
		SigningKey:         key,
		AccessTokenTTL:     cfg.AccessTokenTTL,
		RefreshTokenTTL:    cfg.RefreshTokenTTL,
		MaxSessionsPerUser: cfg.MaxSessionsPerUser,
		Argon2:             Argon2Params{MemoryKiB: uint32(cfg.Argon2MemoryKiB), Time: uint32(cfg.Argon2Time), Threads: uint8(min(cfg.Argon2Threads, 255))},
		AvatarMaxBytes:     cfg.AvatarMaxBytes,
		SessionCacheTTL:    cfg.SessionCacheTTL,
	}
	if o.SessionCacheTTL == 0 {
		o.SessionCacheTTL = -1 // configured off (Options' zero means the default)
	}
	if cfg.RateLimits {
		o.IPLimiter = ratelimit.NewMemory(ratelimit.PerMinute(AttemptsPerMinute))
		o.PairLimiter = ratelimit.NewMemory(PairFailures)
		o.AccountLimiter = ratelimit.NewMemory(AccountFailures)
		o.RefreshLimiter = ratelimit.NewMemory(ratelimit.PerMinute(max(cfg.RefreshesPerMinute, 1)))
	}
	return o
}

// Service is the accounts capability: sign-up and sign-in, sessions, profiles and the
// Authenticator that every authenticated endpoint relies on.
type Service struct {
	db       *store.DB
	users    users
	sessions sessions
	tokens   *tokens
	hasher   *hasher
	cache    *sessionCache
	ipLimit  ratelimit.Limiter
	acctLim  ratelimit.Counter
	pairLim  ratelimit.Counter
	avatars  AvatarStore
	signals  Signals // nil on a single node
	o        Options
	now      func() time.Time
}

// Signals carries notices to every node of a deployment and closes the WebSockets of revoked
// sessions (the realtime hub satisfies it).
type Signals interface {
	OnSignal(name string, fn func(ctx context.Context, payload []byte))
	PublishSignal(ctx context.Context, name string, payload []byte)
	CloseSessions(userID string, sessionIDs []string)
}

// signalSessionsRevoked tells every node that sessions of a user were revoked.
const signalSessionsRevoked = "auth.sessions_revoked"

type sessionsRevoked struct {
	UserID   string   `json:"user_id"`
	Sessions []string `json:"sessions"`
}

// listen handles the revocations signalled by every node (Options.Signals).
func (s *Service) listen(sig Signals) {
	sig.OnSignal(signalSessionsRevoked, func(_ context.Context, payload []byte) {
		var r sessionsRevoked
		if err := json.Unmarshal(payload, &r); err != nil {
			return // not ours to fail on: a malformed notice changes nothing
		}
		s.cache.kill(s.now(), r.Sessions...)
		sig.CloseSessions(r.UserID, r.Sessions)
	})
	s.signals = sig
}

// revoked drops the sessions of userID from this node's cache and, with signals, from every
// node's, closing their WebSockets.
func (s *Service) revoked(ctx context.Context, now time.Time, userID string, ids ...string) {
	if len(ids) == 0 {
		return
	}
	s.cache.kill(now, ids...)
	if s.o.OnSessionsRevoked != nil {
		s.o.OnSessionsRevoked(ctx, userID, ids)
	}
	if s.signals != nil {
		payload, _ := json.Marshal(sessionsRevoked{UserID: userID, Sessions: ids}) // strings: cannot fail
		s.signals.PublishSignal(ctx, signalSessionsRevoked, payload)
	}
}

// New builds the service on db.
func New(db *store.DB, o Options) (*Service, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RefreshTokenTTL <= 0 {
		return nil, errors.New("auth: the refresh token lifetime must be positive")
	}
	if o.MaxSessionsPerUser <= 0 {
		o.MaxSessionsPerUser = DefaultMaxSessionsPerUser
	}
	if o.Argon2.MemoryKiB < 8 || o.Argon2.Time < 1 || o.Argon2.Threads < 1 {
		return nil, fmt.Errorf("auth: invalid argon2 parameters %+v", o.Argon2)
	}
	if o.HashConcurrency <= 0 {
		o.HashConcurrency = runtime.GOMAXPROCS(0)
	}
	if o.IPLimiter == nil {
		o.IPLimiter = ratelimit.Noop{}
	}
	if o.AccountLimiter == nil {
		o.AccountLimiter = ratelimit.Noop{}
	}
	if o.PairLimiter == nil {
		o.PairLimiter = ratelimit.Noop{}
	}
	if o.RefreshLimiter == nil {
		o.RefreshLimiter = ratelimit.Noop{}
	}
	if o.SessionCacheTTL == 0 {
		o.SessionCacheTTL = DefaultSessionCacheTTL
	}
	tk, err := newTokens(o.SigningKey, o.AccessTokenTTL, o.Now)
	if err != nil {
		return nil, err
	}
	h, err := newHasher(o.Argon2, o.HashConcurrency)
	if err != nil {
		return nil, err
	}
	s := &Service{
		db: db, users: users{db}, sessions: sessions{db}, tokens: tk, hasher: h,
		cache:   newSessionCache(o.SessionCacheTTL, sessionCacheMax),
		ipLimit: o.IPLimiter, acctLim: o.AccountLimiter, pairLim: o.PairLimiter, avatars: o.Avatars, o: o, now: o.Now,
	}
	if o.Signals != nil {
		s.listen(o.Signals)
	}
	return s, nil
}

// Authenticate checks an access token and that its session is still alive; it is the server's
// httpapi.Authenticator. Expired tokens answer 401 token_expired, everything else 401
// invalid_token. A session revoked on this node fails at once, one revoked elsewhere at once too
// when the nodes share signals (Options.Signals), else within SessionCacheTTL.
func (s *Service) Authenticate(ctx context.Context, token string) (identity.Principal, error) {
	c, err := s.tokens.verify(token)
	if err != nil {
		return identity.Principal{}, err
	}
	now := s.now()
	st, ok := s.cache.get(c.SessionID, now)
	if !ok {
		if st, err = s.sessions.state(ctx, c.SessionID, now); err != nil {
			// The token may well be good: the client must not be told to sign in again.
			return identity.Principal{}, &apperr.Error{Kind: apperr.KindUnavailable, Code: "unavailable",
				Detail: "the session cannot be checked right now; try again", Err: err}
		}
		s.cache.put(c.SessionID, st, now)
		if st.live && now.Sub(st.lastUsedAt) >= time.Minute {
			if err := s.sessions.touch(ctx, c.SessionID, now); err != nil {
				httpapi.Logger(ctx).WarnContext(ctx, "cannot record session use", "err", err)
			}
		}
	}
	if !st.live || !now.Before(st.expiresAt) || st.userID != c.Subject {
		return identity.Principal{}, errTokenInvalid
	}
	return identity.Principal{UserID: c.Subject, SessionID: c.SessionID, Admin: st.admin, ExpiresAt: c.ExpiresAt.Time}, nil
}

// client describes where a sign-in comes from.
type client struct {
	ip, userAgent, deviceName string
}

// TokenPair is the answer of register, login and refresh.
type TokenPair struct {
	User         Profile `json:"user" doc:"The signed-in account"`
	AccessToken  string  `json:"access_token" doc:"JWT for Authorization: Bearer"`
	RefreshToken string  `json:"refresh_token" doc:"Opaque token for POST /auth/refresh; single use"`
	TokenType    string  `json:"token_type" enum:"Bearer" doc:"Always Bearer"`
	ExpiresIn    int     `json:"expires_in" doc:"Lifetime of the access token in seconds" example:"900"`
}

var (
	errInvalidCredentials = apperr.New(apperr.KindUnauthenticated, "invalid_credentials", "wrong login or password")
	errWrongPassword      = apperr.New(apperr.KindForbidden, "invalid_credentials", "the current password is wrong")
	errAvatarsUnavailable = apperr.New(apperr.KindUnavailable, "avatars_unavailable", "avatars are not available on this server")
)

// limitIP and limitAccount count one attempt of action (register, login) against the limiter of
// the client address and of the account (limitAccount: registrations per username; sign-in
// failures are limits.go's). The address is checked first, so that a client spraying
// account names cannot fill the per-account limiter faster than its own rate.
func (s *Service) limitIP(ctx context.Context, action, ip string) error {
	return s.allow(ctx, s.ipLimit, action+":ip:"+ipKey(ip))
}

func (s *Service) limitAccount(ctx context.Context, action, account string) error {
	return s.allow(ctx, s.acctLim, action+":account:"+account)
}

func (s *Service) allow(ctx context.Context, l ratelimit.Limiter, key string) error {
	ok, retry, err := l.Allow(ctx, key)
	if err != nil { // the limiter is down: fail open, sign-in matters more than the limit
		httpapi.Logger(ctx).WarnContext(ctx, "rate limiter failed; allowing", "err", err)
		return nil
	}
	if !ok {
		return apperr.RateLimited(retry)
	}
	return nil
}

// ipKey groups IPv6 clients by /64, the block one subscriber usually controls.
func ipKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// remoteIP is the host part of a RemoteAddr. X-Forwarded-For is not trusted.
func remoteIP(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}

type registerRequest struct {
	Username, Email, Password, DisplayName, DeviceName string
}

func (s *Service) register(ctx context.Context, in registerRequest, cl client) (*TokenPair, error) {
	if err := s.limitIP(ctx, "register", cl.ip); err != nil {
		return nil, err
	}
	a, device, err := validateRegister(in)
	if err != nil {
		return nil, err
	}
	if err := s.limitAccount(ctx, "register", a.Username); err != nil {
		return nil, err
	}
	if _, err := s.users.byUsername(ctx, a.Username); err == nil {
		return nil, errUsernameTaken
	}
	if _, err := s.users.byEmail(ctx, a.Email); err == nil {
		return nil, errEmailTaken
	}
	if a.PasswordHash, err = s.hasher.hash(ctx, in.Password); err != nil {
		return nil, err
	}
	now := store.Time(store.Millis(s.now())) // as stored, so this answer matches later reads
	a.ID = uuid.Must(uuid.NewV7()).String()
	a.Role = RoleUser
	a.GroupAdds = GroupAddsEveryone
	a.CreatedAt, a.UpdatedAt = now, now
	if err := s.users.create(ctx, a); err != nil {
		return nil, err
	}
	cl.deviceName = device
	return s.startSession(ctx, a, cl)
}

// validateRegister checks and normalises a registration; it is what the fuzz target exercises.
// Every offending field is reported, in one error.
func validateRegister(in registerRequest) (*account, string, error) {
	var a account
	var fields []apperr.FieldError
	check := func(err error) {
		if ae, ok := apperr.As(err); ok {
			fields = append(fields, ae.Fields...)
		}
	}
	var err error
	a.Username, err = normalizeUsername("body.username", in.Username)
	check(err)
	a.Email, err = normalizeEmail("body.email", in.Email)
	check(err)
	check(checkPassword("body.password", in.Password))
	a.DisplayName = a.Username
	if in.DisplayName != "" {
		a.DisplayName, err = normalizeDisplayName("body.display_name", in.DisplayName)
		check(err)
	}
	device, err := cleanDeviceName("body.device_name", in.DeviceName)
	check(err)
	if len(fields) > 0 {
		return nil, "", invalidFields(fields)
	}
	return &a, device, nil
}

type loginRequest struct {
	Login, Password, DeviceName string
}

func (s *Service) login(ctx context.Context, in loginRequest, cl client) (*TokenPair, error) {
	if err := s.limitIP(ctx, "login", cl.ip); err != nil {
		return nil, err
	}
	device, err := cleanDeviceName("body.device_name", in.DeviceName)
	if err != nil {
		return nil, err
	}
	login, isEmail := normalizeLogin(in.Login)
	if err := usertext.Name.Check(login); err != nil { // no name or address has these: refused before SQL
		return nil, apperr.Invalid("body.login", err.Error())
	}
	var a *account
	if len(login) <= loginMax {
		if isEmail {
			a, err = s.users.byEmail(ctx, login)
		} else {
			a, err = s.users.byUsername(ctx, login)
		}
		if err != nil && !errors.Is(err, errUserNotFound) {
			return nil, err
		}
	}
	// Failures count against the account, or against the name tried when there is none: the
	// answer (and its cost) must not tell the two apart.
	accountKey, hash := "name:"+login, ""
	if a != nil {
		accountKey, hash = "user:"+a.ID, a.PasswordHash
	}
	if err := s.checkFailures(ctx, accountKey, a, cl.ip); err != nil {
		return nil, err
	}
	ok, rehash, err := s.hasher.verify(ctx, in.Password, hash)
	if err != nil {
		return nil, err
	}
	if !ok || a == nil {
		s.recordFailure(ctx, accountKey, cl.ip)
		return nil, errInvalidCredentials
	}
	if rehash {
		s.upgradeHash(ctx, a.ID, in.Password)
	}
	cl.deviceName = device
	return s.startSession(ctx, a, cl)
}

// upgradeHash rehashes a password made with older parameters. A failure is logged, not fatal:
// the old hash still works.
func (s *Service) upgradeHash(ctx context.Context, userID, password string) {
	h, err := s.hasher.hash(ctx, password)
	if err == nil {
		err = s.users.setPasswordHash(ctx, userID, h, s.now())
	}
	if err != nil {
		httpapi.Logger(ctx).WarnContext(ctx, "cannot upgrade password hash", "user_id", userID, "err", err)
	}
}

func (s *Service) startSession(ctx context.Context, a *account, cl client) (*TokenPair, error) {
	refresh, hash, err := newRefreshToken()
	if err != nil {
		return nil, err
	}
	ua := truncateText(cl.userAgent, userAgentMax)
	device := cl.deviceName
	if device == "" {
		device = deviceFromUserAgent(ua)
	}
	now := s.now()
	sid, evicted, err := s.sessions.create(ctx, newSession{userID: a.ID, refreshHash: hash, deviceName: device, userAgent: ua, ip: cl.ip},
		now, s.o.RefreshTokenTTL, s.o.MaxSessionsPerUser)
	if err != nil {
		return nil, err
	}
	s.revoked(ctx, now, a.ID, evicted...)
	return s.pair(a, sid, refresh)
}

func (s *Service) pair(a *account, sessionID, refresh string) (*TokenPair, error) {
	access, _, err := s.tokens.issue(a.ID, sessionID)
	if err != nil {
		return nil, err
	}
	return &TokenPair{User: a.Profile, AccessToken: access, RefreshToken: refresh, TokenType: "Bearer",
		ExpiresIn: int(s.o.AccessTokenTTL / time.Second)}, nil
}

func (s *Service) refresh(ctx context.Context, token string) (*TokenPair, error) {
	refresh, newHash, err := newRefreshToken()
	if err != nil {
		return nil, err
	}
	oldHash := hashRefreshToken(token)
	// A plain read finds the session first, so that a refresh loop is refused (per session)
	// before it costs a write transaction, and an unknown token costs none.
	sid, err := s.sessions.idOf(ctx, oldHash)
	if err != nil {
		return nil, err
	}
	if err := s.allow(ctx, s.o.RefreshLimiter, "refresh:session:"+sid); err != nil {
		return nil, err
	}
	now := s.now()
	r, err := s.sessions.rotate(ctx, oldHash, newHash, now, s.o.RefreshTokenTTL)
	if err != nil {
		return nil, err
	}
	if r.reused {
		s.revoked(ctx, now, r.userID, r.sessionID)
		httpapi.Logger(ctx).WarnContext(ctx, "refresh token reuse; session revoked", "session_id", r.sessionID, "user_id", r.userID)
		return nil, errRefreshReused
	}
	a, err := s.users.byIDFresh(ctx, r.userID)
	if err != nil {
		return nil, err
	}
	return s.pair(a, r.sessionID, refresh)
}

func (s *Service) logout(ctx context.Context, token string) error {
	now := s.now()
	id, userID, err := s.sessions.revokeByToken(ctx, hashRefreshToken(token), now)
	if err != nil {
		return err
	}
	if id != "" {
		s.revoked(ctx, now, userID, id)
	}
	return nil
}

func (s *Service) revokeSession(ctx context.Context, p identity.Principal, id string) error {
	now := s.now()
	if err := s.sessions.revoke(ctx, p.UserID, id, now); err != nil {
		return err
	}
	s.revoked(ctx, now, p.UserID, id)
	return nil
}

func (s *Service) changePassword(ctx context.Context, p identity.Principal, ip, current, next string) error {
	if err := checkPassword("body.new_password", next); err != nil {
		return err
	}
	if err := s.limitIP(ctx, "login", ip); err != nil {
		return err
	}
	// The caller holds a session of the account: only its own address's failures count.
	if err := s.checkPairFailures(ctx, "user:"+p.UserID, ip); err != nil {
		return err
	}
	a, err := s.users.byIDFresh(ctx, p.UserID)
	if err != nil {
		return err
	}
	ok, _, err := s.hasher.verify(ctx, current, a.PasswordHash)
	if err != nil {
		return err
	}
	if !ok {
		s.recordFailure(ctx, "user:"+p.UserID, ip)
		return errWrongPassword
	}
	h, err := s.hasher.hash(ctx, next)
	if err != nil {
		return err
	}
	now := s.now()
	if err := s.users.setPasswordHash(ctx, p.UserID, h, now); err != nil {
		return err
	}
	ids, err := s.sessions.revokeOthers(ctx, p.UserID, p.SessionID, now)
	if err != nil {
		return err
	}
	s.revoked(ctx, now, p.UserID, ids...)
	return nil
}

type profilePatch struct {
	DisplayName, Bio, GroupAdds *string
}

func (s *Service) updateProfile(ctx context.Context, p identity.Principal, in profilePatch) (*Profile, error) {
	var err error
	if in.DisplayName != nil {
		v, err := normalizeDisplayName("body.display_name", *in.DisplayName)
		if err != nil {
			return nil, err
		}
		in.DisplayName = &v
	}
	if in.Bio != nil {
		v, err := normalizeBio("body.bio", *in.Bio)
		if err != nil {
			return nil, err
		}
		in.Bio = &v
	}
	if in.GroupAdds != nil {
		switch *in.GroupAdds {
		case GroupAddsEveryone, GroupAddsContacts, GroupAddsNobody:
		default:
			return nil, apperr.Invalid("body.group_adds", "want everyone, contacts or nobody")
		}
	}
	if in.DisplayName != nil || in.Bio != nil || in.GroupAdds != nil {
		if err = s.users.updateProfile(ctx, p.UserID, in.DisplayName, in.Bio, in.GroupAdds, s.now()); err != nil {
			return nil, err
		}
	}
	a, err := s.users.byIDFresh(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	return &a.Profile, nil
}

// setAvatar stores a new avatar, points the profile at it and deletes the previous image.
func (s *Service) setAvatar(ctx context.Context, p identity.Principal, r io.Reader) (*Profile, error) {
	if s.avatars == nil {
		return nil, errAvatarsUnavailable
	}
	url, err := s.avatars.SaveAvatar(ctx, p.UserID, r)
	if err != nil {
		return nil, err
	}
	old, err := s.users.setAvatar(ctx, p.UserID, url, s.now())
	if err != nil {
		s.dropAvatar(ctx, url)
		return nil, err
	}
	s.dropAvatar(ctx, old)
	a, err := s.users.byIDFresh(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	return &a.Profile, nil
}

func (s *Service) deleteAvatar(ctx context.Context, p identity.Principal) (*Profile, error) {
	if s.avatars == nil {
		return nil, errAvatarsUnavailable
	}
	old, err := s.users.setAvatar(ctx, p.UserID, "", s.now())
	if err != nil {
		return nil, err
	}
	s.dropAvatar(ctx, old)
	a, err := s.users.byIDFresh(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	return &a.Profile, nil
}

// dropAvatar deletes an image no profile points at any more; failure leaves an orphan file, logged.
func (s *Service) dropAvatar(ctx context.Context, url string) {
	if url == "" {
		return
	}
	if err := s.avatars.DeleteAvatar(ctx, url); err != nil {
		httpapi.Logger(ctx).WarnContext(ctx, "cannot delete old avatar", slog.String("url", url), slog.Any("err", err))
	}
}

// SetRole makes the account with the given username an admin (admin=true) or a plain user. It is
// what `nerutalk admin grant|revoke` runs; running sessions see the change within
// DefaultSessionCacheTTL.
func SetRole(ctx context.Context, db *store.DB, username string, admin bool) error {
	u, err := normalizeUsername("username", username)
	if err != nil {
		return fmt.Errorf("auth: %q is not a valid username", username)
	}
	role := RoleUser
	if admin {
		role = RoleAdmin
	}
	if err := (users{db}).setRole(ctx, u, role, time.Now()); err != nil {
		if errors.Is(err, errUserNotFound) {
			return fmt.Errorf("auth: no user named %q", u)
		}
		return err
	}
	return nil
}

// AdminCommand runs `nerutalk admin grant|revoke <username>` against db and returns the one line
// to print.
func AdminCommand(ctx context.Context, db *store.DB, verb, username string) (string, error) {
	var grant bool
	switch verb {
	case "grant":
		grant = true
	case "revoke":
	default:
		return "", fmt.Errorf("unknown admin command %q (want grant or revoke)", verb)
	}
	if err := SetRole(ctx, db, username, grant); err != nil {
		return "", err
	}
	name := strings.ToLower(username)
	if grant {
		return name + " is now an admin", nil
	}
	return name + " is no longer an admin", nil
}
