package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// apiClient speaks NeruTalk's REST API as an app would.
type apiClient struct {
	base string // http://127.0.0.1:8080 (no trailing slash)
	hc   *http.Client
}

func newAPIClient(base string, conns int) *apiClient {
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     30 * time.Second,
	}
	return &apiClient{base: base, hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// apiError is an answer outside 2xx, with the problem document's code when there is one.
type apiError struct {
	Method, Path string
	Status       int
	Code, Detail string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, e.Code, e.Detail)
}

func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// do sends body as JSON (nil for none) and decodes a 2xx answer into out (nil to discard).
func (c *apiClient) do(ctx context.Context, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/api/v1"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var p struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
			Title  string `json:"title"`
		}
		_ = json.Unmarshal(b, &p)
		if p.Detail == "" {
			p.Detail = p.Title
		}
		return &apiError{Method: method, Path: path, Status: resp.StatusCode, Code: p.Code, Detail: p.Detail}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// user is one account the tool registered, with its current tokens.
type user struct {
	idx      int
	id       string
	username string

	mu      sync.Mutex
	access  string
	refresh string
}

func (u *user) token() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.access
}

type authAnswer struct {
	User struct {
		ID       string `json:"id"`
		Username string `json:"username"`
	} `json:"user"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
}

func (c *apiClient) register(ctx context.Context, username, password string) (authAnswer, error) {
	var a authAnswer
	err := c.do(ctx, http.MethodPost, "/auth/register", "", map[string]string{
		"username": username, "email": username + "@bench.nerutalk.test", "password": password,
		"display_name": "Bench " + username,
	}, &a)
	return a, err
}

func (c *apiClient) login(ctx context.Context, login, password string) (authAnswer, error) {
	var a authAnswer
	err := c.do(ctx, http.MethodPost, "/auth/login", "", map[string]string{"login": login, "password": password}, &a)
	return a, err
}

func (c *apiClient) refresh(ctx context.Context, refreshToken string) (authAnswer, error) {
	var a authAnswer
	err := c.do(ctx, http.MethodPost, "/auth/refresh", "", map[string]string{"refresh_token": refreshToken}, &a)
	return a, err
}

// authed calls the API as u, refreshing u's tokens once if the access token has expired.
func (c *apiClient) authed(ctx context.Context, u *user, method, path string, body, out any) error {
	err := c.do(ctx, method, path, u.token(), body, out)
	if statusOf(err) != http.StatusUnauthorized {
		return err
	}
	u.mu.Lock()
	rt := u.refresh
	u.mu.Unlock()
	a, rerr := c.refresh(ctx, rt)
	if rerr != nil {
		return errors.Join(err, rerr)
	}
	u.mu.Lock()
	u.access, u.refresh = a.AccessToken, a.RefreshToken
	u.mu.Unlock()
	return c.do(ctx, method, path, u.token(), body, out)
}

// chatAnswer is the part of a chat the tool reads.
type chatAnswer struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	LastSeq int64  `json:"last_seq"`
	Members []struct {
		UserID string `json:"user_id"`
	} `json:"members"`
}

func (c *apiClient) createChat(ctx context.Context, owner *user, kind, title string, members []string) (chatAnswer, error) {
	body := map[string]any{"type": kind, "member_ids": members}
	if title != "" {
		body["title"] = title
	}
	var ch chatAnswer
	err := c.authed(ctx, owner, http.MethodPost, "/chats", body, &ch)
	return ch, err
}

func (c *apiClient) addMembers(ctx context.Context, owner *user, chatID string, members []string) error {
	return c.authed(ctx, owner, http.MethodPost, "/chats/"+url.PathEscape(chatID)+"/members",
		map[string]any{"user_ids": members}, nil)
}

func (c *apiClient) getChat(ctx context.Context, u *user, chatID string) (chatAnswer, error) {
	var ch chatAnswer
	err := c.authed(ctx, u, http.MethodGet, "/chats/"+url.PathEscape(chatID), nil, &ch)
	return ch, err
}

type messagePage struct {
	Items      []storedMessage `json:"items"`
	NextCursor string          `json:"next_cursor"`
}

// history is GET /chats/{id}/messages?after_seq=&limit=: the limit messages after afterSeq
// (0 reads from the first), or the latest limit when afterSeq is negative (no bound).
func (c *apiClient) history(ctx context.Context, u *user, chatID string, afterSeq int64, limit int) (messagePage, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if afterSeq >= 0 {
		q.Set("after_seq", strconv.FormatInt(afterSeq, 10))
	}
	var p messagePage
	err := c.authed(ctx, u, http.MethodGet, "/chats/"+url.PathEscape(chatID)+"/messages?"+q.Encode(), nil, &p)
	return p, err
}

// allMessages reads a chat's whole history in ascending seq, pages of 200 by after_seq.
func (c *apiClient) allMessages(ctx context.Context, u *user, chatID string) ([]storedMessage, error) {
	var all []storedMessage
	var after int64
	for {
		p, err := c.history(ctx, u, chatID, after, 200)
		if err != nil {
			return all, err
		}
		if len(p.Items) == 0 {
			return all, nil
		}
		all = append(all, p.Items...)
		last := p.Items[len(p.Items)-1].Seq
		if last <= after {
			return all, fmt.Errorf("history of %s does not advance past seq %d", chatID, after)
		}
		after = last
	}
}

// rawGet fetches a server-root path (/healthz, /openapi.json) and returns the body.
func (c *apiClient) rawGet(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
	}
	return b, nil
}

// checkServer makes sure the server is up and serves the paths a scenario needs.
func (c *apiClient) checkServer(ctx context.Context, paths ...string) error {
	if _, err := c.rawGet(ctx, "/healthz"); err != nil {
		return fmt.Errorf("server at %s not answering: %w", c.base, err)
	}
	b, err := c.rawGet(ctx, "/openapi.json")
	if err != nil {
		return err
	}
	var doc struct {
		Paths map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("openapi.json: %w", err)
	}
	var missing []string
	for _, p := range paths {
		if _, ok := doc.Paths["/api/v1"+p]; !ok {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("server at %s does not serve %v yet (see /openapi.json)", c.base, missing)
	}
	return nil
}
