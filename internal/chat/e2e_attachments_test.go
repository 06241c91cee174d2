package chat_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"sync"
	"testing"

	"github.com/nerutalk/nerutalk/internal/chat"
	"github.com/nerutalk/nerutalk/internal/store"
)

// uploadPNG uploads a w x h PNG as user through POST /files and returns the file's id.
func (e *env) uploadPNG(user, name string, w, h int, shade uint8) string {
	e.t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{R: shade, G: uint8(x), B: uint8(y), A: 255})
		}
	}
	var pic, body bytes.Buffer
	if err := png.Encode(&pic, img); err != nil {
		e.t.Fatal(err)
	}
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("file", name)
	if err != nil {
		e.t.Fatal(err)
	}
	part.Write(pic.Bytes())
	mw.Close()
	status, raw := e.raw(user, http.MethodPost, "/files", mw.FormDataContentType(), &body)
	if status != http.StatusCreated {
		e.t.Fatalf("upload: %d %s", status, raw)
	}
	var f struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		e.t.Fatal(err)
	}
	return f.ID
}

// raw makes a request as user and returns the status and the body.
func (e *env) raw(user, method, path, contentType string, body io.Reader) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.n.URL+"/api/v1"+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+e.users[user].AccessToken)
	resp, err := e.n.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// reads reports the status of GET path (a download) for each user.
func (e *env) reads(t *testing.T, path string, want map[string]int) {
	t.Helper()
	for user, status := range want {
		if got, raw := e.raw(user, http.MethodGet, path, "", nil); got != status {
			t.Errorf("%s GET %s: %d %.200s, want %d", user, path, got, raw, status)
		}
	}
}

// TestE2EAttachments: a message carries its files' metadata in the event and in history; the
// chat's members download them, strangers and removed members get 404; the sender's own files
// only, no repeats; a retry attaches once; deleting the message releases the files.
func TestE2EAttachments(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "alice", "bob", "carol", "stranger")
		g := e.group("alice", "bob", "carol")
		bob := dial(t, e.n, e.users["bob"], "d")
		pic := e.uploadPNG("alice", "cat.png", 40, 30, 1)
		other := e.uploadPNG("alice", "dog.png", 20, 20, 2)
		bobs := e.uploadPNG("bob", "bob.png", 10, 10, 3)
		path := "/chats/" + g.ID + "/messages"

		// Not attached yet: only the owner reads it.
		e.reads(t, "/files/"+pic, map[string]int{"alice": 200, "bob": 404, "stranger": 404})

		for _, tc := range []struct {
			name string
			body map[string]any
			code string
		}{
			{"someone else's file", map[string]any{"client_id": "x1", "attachment_ids": []string{bobs}}, "invalid_attachment"},
			{"unknown file", map[string]any{"client_id": "x2", "attachment_ids": []string{"0193d0c2-0000-7000-8000-000000000000"}}, "invalid_attachment"},
			{"not an id", map[string]any{"client_id": "x3", "attachment_ids": []string{"../etc"}}, "invalid_attachment"},
			{"repeated", map[string]any{"client_id": "x4", "attachment_ids": []string{pic, pic}}, "invalid_attachment"},
			{"image without file", map[string]any{"client_id": "x5", "kind": "image", "text": "x"}, "validation_failed"},
			{"text with a file", map[string]any{"client_id": "x6", "kind": "text", "text": "x", "attachment_ids": []string{pic}}, "validation_failed"},
			{"sticker with two", map[string]any{"client_id": "x7", "kind": "sticker", "attachment_ids": []string{pic, other}}, "validation_failed"},
			{"eleven", map[string]any{"client_id": "x8", "attachment_ids": make([]string, 11)}, "validation_failed"},
		} {
			if status, code := e.problem("alice", http.MethodPost, path, tc.body); status != http.StatusUnprocessableEntity || code != tc.code {
				t.Errorf("%s: %d %s, want 422 %s", tc.name, status, code, tc.code)
			}
		}
		// A refused send attached nothing: alice may still delete her file.
		if status, raw := e.raw("alice", http.MethodDelete, "/files/"+other, "", nil); status != http.StatusNoContent {
			t.Fatalf("delete unattached file: %d %s", status, raw)
		}

		// The kind is inferred from the first file; the caption is optional.
		body := map[string]any{"client_id": "pic-1", "attachment_ids": []string{pic}, "text": "look"}
		var sent chat.Message
		e.do("alice", http.MethodPost, path, body, &sent, http.StatusCreated)
		check := func(where string, m chat.Message) {
			t.Helper()
			if m.Kind != chat.KindImage || len(m.Attachments) != 1 {
				t.Fatalf("%s: %+v", where, m)
			}
			a := m.Attachments[0]
			if a.ID != pic || a.Kind != "image" || a.MimeType != "image/png" || a.Name != "cat.png" || a.Width != 40 ||
				a.Height != 30 || a.Size <= 0 || a.URL != "/api/v1/files/"+pic || a.ThumbnailURL != a.URL+"/thumbnail" {
				t.Fatalf("%s: attachment %+v", where, a)
			}
		}
		check("answer", sent)
		check("message_new", bob.message(g.ID))
		var page chat.Page
		e.do("carol", http.MethodGet, path, nil, &page, http.StatusOK)
		check("history", page.Items[len(page.Items)-1])
		var views []chat.ChatView
		var list struct {
			Items []chat.ChatView `json:"items"`
		}
		e.do("bob", http.MethodGet, "/chats", nil, &list, http.StatusOK)
		views = list.Items
		if len(views) != 1 || views[0].LastMessage == nil {
			t.Fatalf("chats: %+v", views)
		}
		check("last_message", *views[0].LastMessage)
		var sync chat.Page
		bob.ack(chat.CmdSync, map[string]any{"chat_id": g.ID, "after_seq": 0}, &sync)
		check("sync", sync.Items[len(sync.Items)-1])

		// A retry answers the original with its attachments and attaches nothing more.
		var again chat.Message
		e.do("alice", http.MethodPost, path, body, &again, http.StatusOK)
		if again.ID != sent.ID {
			t.Fatalf("retry answered %s, want %s", again.ID, sent.ID)
		}
		check("retry", again)

		// Members read the file and its thumbnail; strangers get 404; the owner cannot delete it.
		e.reads(t, "/files/"+pic, map[string]int{"alice": 200, "bob": 200, "carol": 200, "stranger": 404})
		e.reads(t, "/files/"+pic+"/thumbnail", map[string]int{"bob": 200, "stranger": 404})
		e.reads(t, "/files/"+pic+"/info", map[string]int{"carol": 200, "stranger": 404})
		if status, _ := e.raw("alice", http.MethodDelete, "/files/"+pic, "", nil); status != http.StatusConflict {
			t.Fatalf("delete attached file: %d, want 409", status)
		}
		if status, _ := e.raw("bob", http.MethodDelete, "/files/"+pic, "", nil); status != http.StatusForbidden {
			t.Fatalf("a reader deletes: %d, want 403", status)
		}

		// A removed member no longer reads it.
		e.do("alice", http.MethodDelete, "/chats/"+g.ID+"/members/"+e.id("carol"), nil, nil, http.StatusNoContent)
		e.reads(t, "/files/"+pic, map[string]int{"carol": 404, "bob": 200})

		// An edit keeps the attachments, and the caption may go.
		var edited chat.Message
		e.do("alice", http.MethodPatch, path+"/"+sent.ID, map[string]any{"text": ""}, &edited, http.StatusOK)
		check("edit", edited)

		// Deleting the message for everyone releases the file: it was attached once, so it is gone.
		e.do("alice", http.MethodDelete, path+"/"+sent.ID, nil, nil, http.StatusNoContent)
		e.do("bob", http.MethodGet, path, nil, &page, http.StatusOK)
		if last := page.Items[len(page.Items)-1]; !last.Deleted || len(last.Attachments) != 0 {
			t.Fatalf("history after delete: %+v", last)
		}
		e.reads(t, "/files/"+pic, map[string]int{"alice": 404, "bob": 404})
	})
}

// TestE2EAttachmentSharedByMessages: a file sent in two chats stays while one message carries it,
// and is readable only where it still is; explicit kinds sticker and file carry a file too.
func TestE2EAttachmentSharedByMessages(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "alice", "bob", "carol")
		g1, g2 := e.group("alice", "bob"), e.group("alice", "carol")
		pic := e.uploadPNG("alice", "s.png", 16, 16, 9)
		var m1, m2 chat.Message
		e.do("alice", http.MethodPost, "/chats/"+g1.ID+"/messages",
			map[string]any{"client_id": "a", "kind": "sticker", "attachment_ids": []string{pic}}, &m1, http.StatusCreated)
		e.do("alice", http.MethodPost, "/chats/"+g2.ID+"/messages",
			map[string]any{"client_id": "b", "kind": "file", "attachment_ids": []string{pic}}, &m2, http.StatusCreated)
		if m1.Kind != chat.KindSticker || len(m1.Attachments) != 1 || m2.Kind != chat.KindFile || len(m2.Attachments) != 1 {
			t.Fatalf("sent %+v and %+v", m1, m2)
		}
		e.reads(t, "/files/"+pic, map[string]int{"bob": 200, "carol": 200})
		e.do("alice", http.MethodDelete, "/chats/"+g1.ID+"/messages/"+m1.ID, nil, nil, http.StatusNoContent)
		e.reads(t, "/files/"+pic, map[string]int{"alice": 200, "bob": 404, "carol": 200})
		if status, _ := e.raw("alice", http.MethodDelete, "/files/"+pic, "", nil); status != http.StatusConflict {
			t.Fatalf("delete file still attached in g2: %d, want 409", status)
		}
		// The last member leaves g2: the chat goes, and with it the last reference to the file.
		e.do("carol", http.MethodDelete, "/chats/"+g2.ID, nil, nil, http.StatusNoContent)
		e.do("alice", http.MethodDelete, "/chats/"+g2.ID, nil, nil, http.StatusNoContent)
		e.reads(t, "/files/"+pic, map[string]int{"alice": 404})
	})
}

// TestE2EConcurrentRetriesAttachOnce: the same send racing with itself (one group-commit batch or
// several) stores one message and attaches its file once: one delete releases it for good.
func TestE2EConcurrentRetriesAttachOnce(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "alice", "bob")
		g := e.group("alice", "bob")
		pic := e.uploadPNG("alice", "p.png", 8, 8, 5)
		body := map[string]any{"client_id": "race", "attachment_ids": []string{pic}}
		const n = 8
		ids := make([]string, n)
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				var m chat.Message
				resp := e.n.Do(t, http.MethodPost, "/api/v1/chats/"+g.ID+"/messages", e.users["alice"].AccessToken, body, &m)
				ids[i], statuses[i] = m.ID, resp.StatusCode
			})
		}
		wg.Wait()
		created := 0
		for i := range n {
			if statuses[i] == http.StatusCreated {
				created++
			}
			if ids[i] != ids[0] || (statuses[i] != http.StatusCreated && statuses[i] != http.StatusOK) {
				t.Fatalf("send %d: %d %s, want the message %s", i, statuses[i], ids[i], ids[0])
			}
		}
		if created != 1 {
			t.Fatalf("%d sends answered 201, want 1", created)
		}
		e.do("alice", http.MethodDelete, "/chats/"+g.ID+"/messages/"+ids[0], nil, nil, http.StatusNoContent)
		e.reads(t, "/files/"+pic, map[string]int{"alice": 404})
	})
}
