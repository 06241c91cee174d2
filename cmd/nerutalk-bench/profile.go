package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// profiler fetches the server's runtime profiles from /debug/pprof/ (served to admins when the
// server runs with NERUTALK_PPROF=on) into a folder, for `go tool pprof`.
type profiler struct {
	dir   string
	base  string
	hc    *http.Client
	token string
	wg    sync.WaitGroup
}

// newProfiler logs in as the admin given as "login:password".
func newProfiler(ctx context.Context, api *apiClient, dir, admin string) (*profiler, error) {
	login, password, ok := strings.Cut(admin, ":")
	if !ok {
		return nil, fmt.Errorf("-admin: want login:password")
	}
	a, err := api.login(ctx, login, password)
	if err != nil {
		return nil, fmt.Errorf("-admin: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &profiler{dir: dir, base: api.base, hc: &http.Client{Timeout: 10 * time.Minute}, token: a.AccessToken}, nil
}

// cpu records a CPU profile over the next d, in the background; wait collects it.
func (p *profiler) cpu(ctx context.Context, name string, d time.Duration, logf func(string, ...any)) {
	if p == nil {
		return
	}
	secs := max(1, int(d.Seconds()))
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.fetch(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), name+"-cpu.pprof", logf)
	}()
}

// heap saves a heap profile taken after a garbage collection.
func (p *profiler) heap(ctx context.Context, name string, logf func(string, ...any)) {
	if p == nil {
		return
	}
	p.fetch(ctx, "/debug/pprof/heap?gc=1", name+"-heap.pprof", logf)
}

func (p *profiler) wait() {
	if p != nil {
		p.wg.Wait()
	}
}

func (p *profiler) fetch(ctx context.Context, path, file string, logf func(string, ...any)) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		logf("profile %s: %v", file, err)
		return
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := p.hc.Do(req)
	if err != nil {
		logf("profile %s: %v", file, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		logf("profile %s: status %d: %s (is the server running with NERUTALK_PPROF=on, and -admin an admin?)", file, resp.StatusCode, b)
		return
	}
	out := filepath.Join(p.dir, file)
	f, err := os.Create(out)
	if err != nil {
		logf("profile %s: %v", file, err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		logf("profile %s: %v", file, err)
		return
	}
	logf("saved the server's profile %s", out)
}
