package media

import (
	"context"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/identity"
)

type searchInput struct {
	Q      string `query:"q" maxLength:"100" doc:"Search words; empty = what is trending"`
	Limit  int    `query:"limit" minimum:"0" maximum:"200" doc:"Results per page: default 25; at most 50 are returned (the provider's limit)"`
	Cursor string `query:"cursor" maxLength:"16" doc:"The next_cursor of the previous page"`
}

type searchOutput struct {
	Body struct {
		Items      []SearchItem `json:"items" nullable:"false"`
		NextCursor string       `json:"next_cursor" doc:"Pass as cursor for the next page; always present, empty (\"\") on the last page"`
	}
}

// Register mounts GET /media/gifs and GET /media/stickers (authenticated, rate limited per
// user) and GET /media/builtin/{name} (the built-in set's images, public).
func (s *Search) Register(api *httpapi.API, builtin *Builtin) {
	for _, kind := range []string{SearchGIFs, SearchStickers} {
		huma.Register(api.Authed, huma.Operation{
			OperationID: "search-" + kind, Method: http.MethodGet, Path: "/media/" + kind, Tags: []string{"Media"},
			Summary: "Search " + kind + " (no q: trending)",
			Description: "Through Giphy when the server has a key, otherwise from a small built-in set. Results are cached " +
				"for 5 minutes; searches are rate limited per user (429 with Retry-After). 502 when the provider fails.",
			Errors: []int{http.StatusTooManyRequests, http.StatusBadGateway},
		}, func(ctx context.Context, in *searchInput) (*searchOutput, error) {
			page, err := s.Find(ctx, identity.UserID(ctx), kind, in.Q, in.Cursor, in.Limit)
			if err != nil {
				return nil, err
			}
			out := &searchOutput{}
			out.Body.Items = page.Items
			if out.Body.Items == nil {
				out.Body.Items = []SearchItem{}
			}
			if page.Next > 0 {
				out.Body.NextCursor = strconv.Itoa(page.Next)
			}
			return out, nil
		})
	}
	huma.Register(api.Public, huma.Operation{
		OperationID: "get-builtin-media", Method: http.MethodGet, Path: "/media/builtin/{name}", Tags: []string{"Media"},
		Summary:   "An image of the built-in sticker and GIF set",
		Responses: binaryResponses("image/png", "image/gif"),
		Errors:    []int{http.StatusNotFound, http.StatusPreconditionFailed, http.StatusRequestedRangeNotSatisfiable},
	}, func(ctx context.Context, in *struct {
		Name string `path:"name" doc:"e.g. heart.png, heartbeat-preview.gif"`
	}) (*blobOutput, error) {
		a, ok := builtin.asset(in.Name)
		if !ok {
			return nil, apperr.NotFound("image")
		}
		return &blobOutput{Body: func(hctx huma.Context) {
			r, w := humachi.Unwrap(hctx)
			h := w.Header()
			h.Set("Content-Type", a.contentType)
			h.Set("ETag", a.etag)
			h.Set("Cache-Control", "public, max-age=86400")
			h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
			http.ServeContent(&problemWriter{ResponseWriter: w, r: r}, r, "", builtinTime, bytesReadSeeker(a.data))
		}}, nil
	})
}
