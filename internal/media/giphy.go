package media

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
)

// Giphy searches GIFs and stickers with the Giphy API (/v1/{gifs,stickers}/{search,trending}).
// The API key stays on the server: clients see only the normalized results, whose media URLs
// point at Giphy's CDN.
type Giphy struct {
	key, base string
	client    *http.Client
	rating    string
}

// giphyTimeout bounds one call to Giphy, so a slow upstream never holds a request for long.
const giphyTimeout = 5 * time.Second

// NewGiphy returns a client for the API at base (https://api.giphy.com) with key.
func NewGiphy(base, key string) *Giphy {
	return &Giphy{key: key, base: base, rating: "pg-13", client: &http.Client{Timeout: giphyTimeout}}
}

// errUpstream is what clients see when Giphy fails; the cause is logged, never shown.
var errUpstream = apperr.New(apperr.KindUpstream, "upstream_failed", "the GIF provider is not answering; try again later")

func upstream(cause error) error {
	e := *errUpstream
	e.Err = cause
	return &e
}

// giphyImage is one rendition in Giphy's "images" object (numbers are strings there).
type giphyImage struct {
	URL    string `json:"url"`
	Width  string `json:"width"`
	Height string `json:"height"`
}

type giphyResponse struct {
	Data []struct {
		ID     string `json:"id"`
		Title  string `json:"title"`
		Images struct {
			FixedWidth giphyImage `json:"fixed_width"`
			Original   giphyImage `json:"original"`
		} `json:"images"`
	} `json:"data"`
	Pagination struct {
		TotalCount int `json:"total_count"`
		Count      int `json:"count"`
		Offset     int `json:"offset"`
	} `json:"pagination"`
	Meta struct {
		Status int    `json:"status"`
		Msg    string `json:"msg"`
	} `json:"meta"`
}

// Search calls search (with q) or trending (without).
func (g *Giphy) Search(ctx context.Context, q SearchQuery) (SearchPage, error) {
	endpoint := "trending"
	params := url.Values{"api_key": {g.key}, "limit": {strconv.Itoa(q.Limit)}, "offset": {strconv.Itoa(q.Offset)},
		"rating": {g.rating}, "bundle": {"messaging_non_clips"}}
	if q.Q != "" {
		endpoint = "search"
		params.Set("q", q.Q)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.base+"/v1/"+q.Kind+"/"+endpoint+"?"+params.Encode(), nil)
	if err != nil {
		return SearchPage{}, upstream(fmt.Errorf("giphy: request: %w", err))
	}
	resp, err := g.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL carries the API key: keep it out of logs
		}
		return SearchPage{}, upstream(fmt.Errorf("giphy: %s: %w", endpoint, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return SearchPage{}, upstream(fmt.Errorf("giphy: %s: status %d", endpoint, resp.StatusCode))
	}
	var out giphyResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&out); err != nil {
		return SearchPage{}, upstream(fmt.Errorf("giphy: %s: decode: %w", endpoint, err))
	}
	page := SearchPage{Items: make([]SearchItem, 0, len(out.Data))}
	for _, d := range out.Data {
		full, preview := rendition(d.Images.Original), rendition(d.Images.FixedWidth)
		if full.URL == "" {
			continue
		}
		if preview.URL == "" {
			preview = full
		}
		page.Items = append(page.Items, SearchItem{ID: "giphy-" + d.ID, Title: d.Title, Preview: preview, Full: full})
	}
	p := out.Pagination
	if next := p.Offset + p.Count; p.Count > 0 && next < p.TotalCount {
		page.Next = next
	}
	return page, nil
}

// rendition converts a Giphy rendition; a URL that is not http(s) is dropped.
func rendition(i giphyImage) Rendition {
	if u, err := url.Parse(i.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Rendition{}
	}
	w, _ := strconv.Atoi(i.Width)
	h, _ := strconv.Atoi(i.Height)
	return Rendition{URL: i.URL, Width: w, Height: h}
}
