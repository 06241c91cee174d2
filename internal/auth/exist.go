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

// IDsByUsername returns the ids of the accounts named by usernames (lower-case), by username,
// reading with q (push resolves @mentions in chat's send transaction this way).
func IDsByUsername(ctx context.Context, q Querier, usernames []string) (map[string]string, error) {
	return lookupUsers(ctx, q, `SELECT username, id FROM users WHERE username IN `, usernames)
}

// lookupUsers runs query (ending in "IN ") over keys and returns its two columns as a map.
func lookupUsers(ctx context.Context, q Querier, query string, keys []string) (map[string]string, error) {
	out := make(map[string]string, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	args := make([]any, len(keys))
	ph := make([]string, len(keys))
	for i, k := range keys {
		args[i], ph[i] = k, "$"+strconv.Itoa(i+1)
	}
	rows, err := q.QueryContext(ctx, query+`(`+strings.Join(ph, ", ")+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("auth: users: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("auth: users: %w", err)
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: users: %w", err)
	}
	return out, nil
}
