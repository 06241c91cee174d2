package server

import (
	"context"
	"log/slog"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/store"

	"github.com/nerutalk/nerutalk/internal/auth"
	"github.com/nerutalk/nerutalk/internal/chat"
	"github.com/nerutalk/nerutalk/internal/media"
)

// What chat needs of the other features, in chat's own types: chat declares the interfaces, and
// the wiring converts, so that neither feature imports the other.

// chatAccounts is auth's accounts as chat.Accounts.
type chatAccounts struct{}

func (chatAccounts) MissingUsers(ctx context.Context, q chat.Querier, ids []string) ([]string, error) {
	return auth.MissingUsers(ctx, q, ids)
}

func (chatAccounts) Profiles(ctx context.Context, q chat.Querier, ids []string) (map[string]chat.UserProfile, error) {
	cards, err := auth.Cards(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]chat.UserProfile, len(cards))
	for id, c := range cards {
		p := chat.UserProfile{UserID: id, Username: c.Username, DisplayName: c.DisplayName}
		if c.AvatarURL != "" { // auth keeps "" for none; the chat API says null
			p.AvatarURL = &c.AvatarURL
		}
		out[id] = p
	}
	return out, nil
}

// chatFiles is media's uploads as chat.Files.
type chatFiles struct{ *media.Files }

func (f chatFiles) Get(ctx context.Context, id string) (chat.FileInfo, error) {
	m, err := f.Files.Get(ctx, id)
	if err != nil {
		return chat.FileInfo{}, err
	}
	return chat.FileInfo{OwnerID: m.OwnerID, Attachment: chatAttachment(m)}, nil
}

func (f chatFiles) FilesOf(ctx context.Context, q chat.Querier, refs string, args ...any) ([]chat.FileRef, error) {
	got, err := f.Files.FilesOf(ctx, q, refs, args...)
	if err != nil {
		return nil, err
	}
	out := make([]chat.FileRef, len(got))
	for i, r := range got {
		out[i] = chat.FileRef{Key: r.Key, Attachment: chatAttachment(r.File)}
	}
	return out, nil
}

// chatAttachment is what a message that carries f shows.
func chatAttachment(f media.File) chat.Attachment {
	a := chat.Attachment{ID: f.ID, Kind: f.Kind, MimeType: f.MIMEType, Size: f.Size, Name: f.Name, URL: f.URL,
		ThumbnailURL: f.ThumbnailURL}
	if f.Width != nil && f.Height != nil {
		a.Width, a.Height = *f.Width, *f.Height
	}
	return a
}

// mediaOptions are media's settings, with chat's query of who may read a file sent in a chat
// (media is built before chat, and the query needs only the database).
func mediaOptions(cfg config.Config, log *slog.Logger, db *store.DB) media.Options {
	o := media.FromConfig(cfg, log)
	o.Access = chat.Queries{DB: db}
	return o
}

func (chatAccounts) GroupAdds(ctx context.Context, q chat.Querier, ids []string) (map[string]string, error) {
	return auth.GroupAdds(ctx, q, ids)
}
