package chat

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
)

// clientKey identifies a send for idempotency: a sender's client_id.
type clientKey struct{ senderID, clientID string }

// memberKey identifies a membership: a user in a chat.
type memberKey struct{ chatID, userID string }

func (k clientKey) parts() (string, string) { return k.senderID, k.clientID }
func (k memberKey) parts() (string, string) { return k.chatID, k.userID }

// pair is a key of two strings, ordered by the first and then the second.
type pair interface {
	comparable
	parts() (string, string)
}

func comparePairs[K pair](x, y K) int {
	xa, xb := x.parts()
	ya, yb := y.parts()
	if c := strings.Compare(xa, ya); c != 0 {
		return c
	}
	return strings.Compare(xb, yb)
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sortedPairs returns the keys of m in order.
func sortedPairs[K pair, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, comparePairs[K])
	return out
}

// splitPairs returns the first and the second strings of keys: the arrays of an unnest
// (PostgreSQL).
func splitPairs[K pair](keys []K) (as, bs []string) {
	as, bs = make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		as[i], bs[i] = k.parts()
	}
	return as, bs
}

// pairsJSON encodes keys as [["a","b"],...] for json_each (SQLite).
func pairsJSON[K pair](keys []K) string {
	rows := make([][2]string, len(keys))
	for i, k := range keys {
		rows[i][0], rows[i][1] = k.parts()
	}
	b, _ := json.Marshal(rows) // strings only: cannot fail
	return string(b)
}
