package chat

import (
	"strconv"

	"github.com/google/uuid"

	"github.com/nerutalk/nerutalk/internal/apperr"
)

// validID reports whether id has the form of the ids the server issues: a UUID in its 36-character
// form. Ids are checked before they reach SQL: PostgreSQL fails on a NUL byte (a 500) where
// SQLite would store it, so an id that cannot exist is refused the same way on both databases.
func validID(id string) bool {
	if len(id) != 36 {
		return false
	}
	_, err := uuid.Parse(id)
	return err == nil
}

// checkID refuses an id that is not a UUID: a validation failure naming field.
func checkID(field, id string) error {
	if id == "" {
		return apperr.Invalid(field, "required")
	}
	if !validID(id) {
		return apperr.Invalid(field, "not a valid id")
	}
	return nil
}

// checkIDs is checkID for each of ids; field names the list ("body.member_ids").
func checkIDs(field string, ids []string) error {
	for _, id := range ids {
		if !validID(id) {
			return apperr.Invalid(field, "not a valid id: "+quote(id))
		}
	}
	return nil
}

// quote shows a refused id safely in a message (at most 40 bytes, control characters escaped).
func quote(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strconv.Quote(s)
}
