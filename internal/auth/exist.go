package auth

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// Querier runs a query: a transaction, or a connection pool.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// MissingUsers returns the ids among ids that have no account, in their order, reading with q
// (the caller's transaction, so that the answer holds until it commits, or a pool). It is how
// other features check user ids without knowing the users table (chat's member lists).
func MissingUsers(ctx context.Context, q Querier, ids []string) ([]string, error) {
	found, err := lookupUsers(ctx, q, `SELECT id, id FROM users WHERE id IN `, ids)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, id := range ids {
		if _, ok := found[id]; !ok {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// DisplayNames returns the display names of the accounts among ids, by id, reading with q (push
// names senders in notifications this way, without knowing the users table).
func DisplayNames(ctx context.Context, q Querier, ids []string) (map[string]string, error) {
	return lookupUsers(ctx, q, `SELECT id, display_name FROM users WHERE id IN `, ids)
}

// GroupAdds returns the group_adds setting (everyone, contacts, nobody) of the accounts among
// ids, by id, reading with q (chat decides with it whether an add is direct or an invitation).
func GroupAdds(ctx context.Context, q Querier, ids []string) (map[string]string, error) {
	return lookupUsers(ctx, q, `SELECT id, group_adds FROM users WHERE id IN `, ids)
}

// IDsByUsername returns the ids of the accounts named by usernames (lower-case), by username,
// reading with q (push resolves @mentions in chat's send transaction this way).
func IDsByUsername(ctx context.Context, q Querier, usernames []string) (map[string]string, error) {
	return lookupUsers(ctx, q, `SELECT username, id FROM users WHERE username IN `, usernames)
}

// Card is what lists show of an account next to its id: its names and avatar.
type Card struct {
	Username    string
	DisplayName string
	AvatarURL   string // "" when not set
}

// Cards returns the cards of the accounts among ids, by id, reading with q: one query per
// maxLookupIDs ids, however many chats the ids come from (chat fills its member lists this way,
// without knowing the users table). Ids without an account are absent from the map.
func Cards(ctx context.Context, q Querier, ids []string) (map[string]Card, error) {
	out := make(map[string]Card, len(ids))
	err := lookup(ctx, q, `SELECT id, username, display_name, avatar_url FROM users WHERE id IN `, ids, func(rows *sql.Rows) error {
		var id string
		var c Card
		if err := rows.Scan(&id, &c.Username, &c.DisplayName, &c.AvatarURL); err != nil {
			return err
		}
		out[id] = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// maxLookupIDs is the most keys bound in one IN list: well under SQLite's and PostgreSQL's limits
// on bound parameters (32766 and 65535), and short enough for the planner.
const maxLookupIDs = 1000

// lookupUsers runs query (ending in "IN ") over keys and returns its two columns as a map.
func lookupUsers(ctx context.Context, q Querier, query string, keys []string) (map[string]string, error) {
	out := make(map[string]string, len(keys))
	err := lookup(ctx, q, query, keys, func(rows *sql.Rows) error {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		out[k] = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lookup runs query (ending in "IN ") over keys, at most maxLookupIDs at a time, and calls scan
// on each row.
func lookup(ctx context.Context, q Querier, query string, keys []string, scan func(*sql.Rows) error) error {
	for len(keys) > 0 {
		n := min(len(keys), maxLookupIDs)
		if err := lookupChunk(ctx, q, query, keys[:n], scan); err != nil {
			return fmt.Errorf("auth: users: %w", err)
		}
		keys = keys[n:]
	}
	return nil
}

func lookupChunk(ctx context.Context, q Querier, query string, keys []string, scan func(*sql.Rows) error) error {
	args := make([]any, len(keys))
	ph := make([]string, len(keys))
	for i, k := range keys {
		args[i], ph[i] = k, "$"+strconv.Itoa(i+1)
	}
	rows, err := q.QueryContext(ctx, query+`(`+strings.Join(ph, ", ")+`)`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
