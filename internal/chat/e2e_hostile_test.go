package chat_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nerutalk/nerutalk/internal/chat"
	"github.com/nerutalk/nerutalk/internal/store"
)

// TestE2EHostileInput: NUL bytes, control characters and malformed ids in paths, queries, bodies
// and WebSocket commands are refused at the edge with a 4xx validation failure naming the field,
// the same on SQLite (which would store them) and PostgreSQL (which fails on NUL: a 500 before).
func TestE2EHostileInput(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "owner", "member")
		g := e.group("owner", "member")
		var m chat.Message
		e.do("owner", http.MethodPost, "/chats/"+g.ID+"/messages", map[string]any{"client_id": "ok", "text": "x"}, &m, http.StatusCreated)
		base := "/chats/" + g.ID
		nul := url.PathEscape("\x00")
		badCursor := base64.RawURLEncoding.EncodeToString([]byte("c1:0:\x00"))
		for _, tc := range []struct {
			method, path string
			body         any
			code, field  string
		}{
			{http.MethodGet, "/chats/" + nul, nil, "validation_failed", "path.id"},
			{http.MethodGet, "/chats/not-an-id", nil, "validation_failed", "path.id"},
			{http.MethodGet, "/chats/" + strings.ToUpper(g.ID) + "x", nil, "validation_failed", "path.id"},
			{http.MethodPatch, "/chats/" + nul, map[string]any{"title": "t"}, "validation_failed", "path.id"},
			{http.MethodGet, "/chats/" + nul + "/messages", nil, "validation_failed", "path.id"},
			{http.MethodPost, "/chats/" + nul + "/messages", map[string]any{"client_id": "n1", "text": "x"}, "validation_failed", "path.id"},
			{http.MethodPatch, base + "/messages/" + nul, map[string]any{"text": "x"}, "validation_failed", "path.msg_id"},
			{http.MethodDelete, base + "/messages/" + nul, nil, "validation_failed", "path.msg_id"},
			{http.MethodDelete, base + "/members/" + nul, nil, "validation_failed", "path.user_id"},
			{http.MethodPatch, base + "/members/" + nul, map[string]any{"role": "admin"}, "validation_failed", "path.user_id"},
			{http.MethodGet, "/chats?cursor=" + badCursor, nil, "validation_failed", "query.cursor"},
			{http.MethodPost, "/chats", map[string]any{"type": "group", "member_ids": []string{"\x00"}, "title": "t"}, "validation_failed", "body.member_ids"},
			{http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{"a\x00"}}, "validation_failed", "body.member_ids"},
			{http.MethodPost, "/chats", map[string]any{"type": "group", "member_ids": []string{e.id("member")}, "title": "a\x00b"}, "validation_failed", "body.title"},
			{http.MethodPost, base + "/members", map[string]any{"user_ids": []string{"\x00"}}, "validation_failed", "body.user_ids"},
			{http.MethodPatch, base, map[string]any{"title": "\x00"}, "validation_failed", "body.title"},
			{http.MethodPatch, base, map[string]any{"title": "a\u202Eb"}, "validation_failed", "body.title"},
			{http.MethodPost, base + "/messages", map[string]any{"client_id": "n2", "text": "a\x00b"}, "validation_failed", "body.text"},
			{http.MethodPost, base + "/messages", map[string]any{"client_id": "n3", "text": "\x1b[2J"}, "validation_failed", "body.text"},
			{http.MethodPost, base + "/messages", map[string]any{"client_id": "n4", "text": "x", "reply_to": "\x00"}, "validation_failed", "body.reply_to"},
			{http.MethodPost, base + "/messages", map[string]any{"client_id": "\x00", "text": "x"}, "validation_failed", "body.client_id"},
			{http.MethodPost, base + "/messages", map[string]any{"client_id": "n5", "kind": "file", "attachment_ids": []string{"\x00"}}, "invalid_attachment", "body.attachment_ids[0]"},
			{http.MethodPatch, base + "/messages/" + m.ID, map[string]any{"text": "\x00"}, "validation_failed", "body.text"},
		} {
			var p struct {
				Code   string `json:"code"`
				Errors []struct {
					Location string `json:"location"`
				} `json:"errors"`
			}
			resp := e.n.Do(t, tc.method, "/api/v1"+tc.path, e.users["owner"].AccessToken, tc.body, &p)
			if resp.StatusCode < 400 || resp.StatusCode >= 500 || p.Code != tc.code {
				t.Errorf("%s %s %v: %d %s, want 4xx %s", tc.method, tc.path, tc.body, resp.StatusCode, p.Code, tc.code)
				continue
			}
			if len(p.Errors) == 0 || p.Errors[0].Location != tc.field {
				t.Errorf("%s %s %v: errors %+v, want the field %s named", tc.method, tc.path, tc.body, p.Errors, tc.field)
			}
		}

		// The WebSocket commands refuse the same, with an error frame; the connection stays usable.
		c := dial(t, e.n, e.users["owner"], "ws")
		for _, bad := range []string{"\x00", "not-an-id", g.ID + "\x00"} {
			for _, cmd := range []struct {
				typ  string
				data map[string]any
			}{
				{chat.CmdSendMessage, map[string]any{"client_id": "w1", "text": "x"}},
				{chat.CmdJoinChat, map[string]any{}},
				{chat.CmdLeaveChat, map[string]any{}},
				{chat.CmdTyping, map[string]any{"typing": true}},
				{chat.CmdMessageRead, map[string]any{"seq": 1}},
				{chat.CmdMessageDelivered, map[string]any{"seq": 1}},
				{chat.CmdSync, map[string]any{"after_seq": 0}},
			} {
				cmd.data["chat_id"] = bad
				if code := c.refused(cmd.typ, cmd.data); code != "validation_failed" {
					t.Errorf("%s with chat_id %q: %s, want validation_failed", cmd.typ, bad, code)
				}
			}
		}
		for _, data := range []map[string]any{
			{"chat_id": g.ID, "client_id": "w2", "text": "a\x00b"},
			{"chat_id": g.ID, "client_id": "w3", "text": "x", "reply_to": "\x00"},
			{"chat_id": g.ID, "client_id": "\x00", "text": "x"},
		} {
			if code := c.refused(chat.CmdSendMessage, data); code != "validation_failed" {
				t.Errorf("send_message %v: %s, want validation_failed", data, code)
			}
		}
		c.ack(chat.CmdSendMessage, map[string]any{"chat_id": g.ID, "client_id": "w4", "text": "still fine"}, nil)
	})
}
