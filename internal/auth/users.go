package auth

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/usertext"
)

// Roles of a user.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// PublicUser is what every signed-in user may see of an account. It never carries the email.
type PublicUser struct {
	ID          string    `json:"id" doc:"User id" example:"01938f4e-7c1a-7d2b-9c3e-2a1b0c9d8e7f"`
	Username    string    `json:"username" doc:"Unique, lower-case" example:"ana.silva"`
	DisplayName string    `json:"display_name" doc:"Shown name" example:"Ana Silva"`
	Bio         string    `json:"bio" doc:"Free text, empty when not set"`
	AvatarURL   string    `json:"avatar_url" doc:"Avatar image URL, empty when not set"`
	CreatedAt   time.Time `json:"created_at" doc:"When the account was created"`
}

// Profile is the caller's own account: the public fields and the email.
type Profile struct {
	PublicUser
	Email string `json:"email" doc:"Lower-case email address (only ever shown to its owner and to admins)" example:"ana@example.com"`
	// GroupAdds is who may add the user to a group directly (only ever shown to its owner and to
	// admins); anyone else's add becomes an invitation (GET /invitations).
	GroupAdds string `json:"group_adds" enum:"everyone,contacts,nobody" doc:"Who may add you to groups directly: everyone, contacts (users who share a chat with you already) or nobody; anyone else's add becomes an invitation you accept or decline" example:"contacts"`
}

// Group-add settings (users.group_adds).
const (
	GroupAddsEveryone = "everyone"
	GroupAddsContacts = "contacts"
	GroupAddsNobody   = "nobody"
)

// AdminUser is an account as admins see it.
type AdminUser struct {
	Profile
	Role      string    `json:"role" enum:"user,admin" doc:"Role"`
	UpdatedAt time.Time `json:"updated_at" doc:"Last change of the profile"`
}

// account is a users row.
type account struct {
	Profile
	Role         string
	PasswordHash string
	UpdatedAt    time.Time
}

var (
	errUsernameTaken = apperr.New(apperr.KindConflict, "username_taken", "that username is taken")
	errEmailTaken    = apperr.New(apperr.KindConflict, "email_taken", "an account with that email exists already")
	errUserNotFound  = apperr.NotFound("user")
)

// searchKey is how a name is indexed for prefix search (see migration 00002): the hex encoding of
// its lower-case bytes, whose order is bytewise under every collation.
func searchKey(s string) string { return hex.EncodeToString([]byte(strings.ToLower(s))) }

// users is the SQL of the users table.
type users struct{ db *store.DB }

const userColumns = `id, username, email, display_name, bio, avatar_url, created_at, role, password_hash, updated_at, group_adds`

// scanAccount reads the userColumns of one row, then extra.
func scanAccount(row interface{ Scan(...any) error }, extra ...any) (*account, error) {
	var a account
	var created, updated int64
	dest := append([]any{&a.ID, &a.Username, &a.Email, &a.DisplayName, &a.Bio, &a.AvatarURL, &created, &a.Role, &a.PasswordHash, &updated, &a.GroupAdds}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	a.CreatedAt, a.UpdatedAt = store.Time(created), store.Time(updated)
	return &a, nil
}

// create inserts a new account; it reports a taken username or email as a 409.
func (u users) create(ctx context.Context, a *account) error {
	_, err := u.db.W.ExecContext(ctx, `INSERT INTO users (`+userColumns+`, username_key, display_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		a.ID, a.Username, a.Email, a.DisplayName, a.Bio, a.AvatarURL, store.Millis(a.CreatedAt), a.Role, a.PasswordHash,
		store.Millis(a.UpdatedAt), groupAddsOr(a.GroupAdds), searchKey(a.Username), searchKey(a.DisplayName))
	if store.IsUniqueViolation(err) {
		// Which one? Ask, on the writer so that a row committed a moment ago is seen.
		var n int
		if qerr := u.db.W.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE username = $1`, a.Username).Scan(&n); qerr != nil {
			return fmt.Errorf("auth: create user: %w", qerr)
		}
		if n > 0 {
			return errUsernameTaken
		}
		return errEmailTaken
	}
	if err != nil {
		return fmt.Errorf("auth: create user: %w", err)
	}
	return nil
}

func (u users) get(ctx context.Context, q *sql.DB, where string, arg any) (*account, error) {
	a, err := scanAccount(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE `+where+` = $1`, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errUserNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("auth: get user: %w", err)
	}
	return a, nil
}

func (u users) byID(ctx context.Context, id string) (*account, error) {
	return u.get(ctx, u.db.R, "id", id)
}

// byIDFresh reads from the writer: for answers that must reflect a write just made.
func (u users) byIDFresh(ctx context.Context, id string) (*account, error) {
	return u.get(ctx, u.db.W, "id", id)
}

func (u users) byUsername(ctx context.Context, username string) (*account, error) {
	return u.get(ctx, u.db.R, "username", username)
}

func (u users) byEmail(ctx context.Context, email string) (*account, error) {
	return u.get(ctx, u.db.R, "email", email)
}

func (u users) setPasswordHash(ctx context.Context, id, hash string, now time.Time) error {
	if _, err := u.db.W.ExecContext(ctx, `UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3`, hash, store.Millis(now), id); err != nil {
		return fmt.Errorf("auth: set password: %w", err)
	}
	return nil
}

// groupAddsOr is v, or the default everyone when empty.
func groupAddsOr(v string) string {
	if v == "" {
		return GroupAddsEveryone
	}
	return v
}

// updateProfile sets the non-nil fields.
func (u users) updateProfile(ctx context.Context, id string, displayName, bio, groupAdds *string, now time.Time) error {
	sets := []string{"updated_at = $1"}
	args := []any{store.Millis(now)}
	if displayName != nil {
		args = append(args, *displayName, searchKey(*displayName))
		sets = append(sets, fmt.Sprintf("display_name = $%d, display_key = $%d", len(args)-1, len(args)))
	}
	if bio != nil {
		args = append(args, *bio)
		sets = append(sets, fmt.Sprintf("bio = $%d", len(args)))
	}
	if groupAdds != nil {
		args = append(args, *groupAdds)
		sets = append(sets, fmt.Sprintf("group_adds = $%d", len(args)))
	}
	args = append(args, id)
	res, err := u.db.W.ExecContext(ctx, `UPDATE users SET `+strings.Join(sets, ", ")+fmt.Sprintf(` WHERE id = $%d`, len(args)), args...)
	if err != nil {
		return fmt.Errorf("auth: update profile: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errUserNotFound
	}
	return nil
}

// setAvatar replaces the avatar URL and returns the previous one.
func (u users) setAvatar(ctx context.Context, id, url string, now time.Time) (old string, err error) {
	err = u.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT avatar_url FROM users WHERE id = $1`, id).Scan(&old); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return errUserNotFound
			}
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE users SET avatar_url = $1, updated_at = $2 WHERE id = $3`, url, store.Millis(now), id)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("auth: set avatar: %w", err)
	}
	return old, nil
}

// setRole changes the role of the account with the given username.
func (u users) setRole(ctx context.Context, username, role string, now time.Time) error {
	res, err := u.db.W.ExecContext(ctx, `UPDATE users SET role = $1, updated_at = $2 WHERE username = $3`, role, store.Millis(now), username)
	if err != nil {
		return fmt.Errorf("auth: set role: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("auth: set role: %w", err)
	} else if n == 0 {
		return errUserNotFound
	}
	return nil
}

// search returns up to limit accounts whose username or display name starts with prefix
// (case-insensitively), in username order, after the username key `after`.
func (u users) search(ctx context.Context, prefix, after string, limit int) ([]*account, error) {
	lo := searchKey(prefix)
	hi := lo + "g" // just above every key that starts with lo: 'g' sorts after every hex digit
	rows, err := u.db.R.QueryContext(ctx, `SELECT `+userColumns+` FROM users
		WHERE ((username_key >= $1 AND username_key < $2) OR (display_key >= $1 AND display_key < $2))
		  AND username_key > $3
		ORDER BY username_key LIMIT $4`, lo, hi, after, limit)
	if err != nil {
		return nil, fmt.Errorf("auth: search users: %w", err)
	}
	defer rows.Close()
	var out []*account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("auth: search users: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: search users: %w", err)
	}
	return out, nil
}

// list returns up to limit accounts in id (creation) order, after the id `after`.
func (u users) list(ctx context.Context, after string, limit int) ([]*account, error) {
	rows, err := u.db.R.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("auth: list users: %w", err)
	}
	defer rows.Close()
	var out []*account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("auth: list users: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: list users: %w", err)
	}
	return out, nil
}

// Cursors are opaque to clients: base64url of a tag and the position.
func encodeCursor(tag, pos string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tag + ":" + pos))
}

func decodeCursor(tag, c string) (string, error) {
	if c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", apperr.Invalid("query.cursor", "malformed cursor")
	}
	t, pos, ok := strings.Cut(string(b), ":")
	if !ok || t != tag || pos == "" || usertext.Name.Check(pos) != nil { // the position goes to SQL
		return "", apperr.Invalid("query.cursor", "malformed cursor")
	}
	return pos, nil
}
