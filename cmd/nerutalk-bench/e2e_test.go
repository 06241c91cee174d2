package main

import (
	"strings"
	"testing"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// TestScenariosAgainstRealServer runs every scenario, tiny and short, against the real server
// handler on each engine: the tool's API calls, frames and checks must agree with the server.
// Figures are not asserted (timing belongs in benchmarks); correctness checks are.
func TestScenariosAgainstRealServer(t *testing.T) {
	t.Parallel()
	scenarios := []struct {
		name string
		args []string
	}{
		{"idle", []string{"-idle-conns", "6,12", "-settle", "200ms", "-idle-group-size", "3"}},
		{"fanout", []string{"-fanout-sizes", "4,12", "-fanout-rates", "120,240"}},
		{"chat", []string{"-chat-users", "12", "-chat-groups", "3", "-chat-group-size", "4", "-chat-senders", "6",
			"-chat-rates", "30,60", "-history-rate", "5"}},
		{"auth", []string{"-auth-users", "2", "-auth-workers", "2"}},
	}
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					node := servertest.New(t, d, func(c *config.Config) { c.RateLimits = false })
					args := append([]string{"-scenario", sc.name, "-addr", node.URL, "-keep-going",
						"-slo", "0"}, append(quick, sc.args...)...)
					res, raw, err := runTool(t, args...)
					if err != nil {
						t.Fatalf("nerutalk-bench %s: %v", strings.Join(args, " "), err)
					}
					if !res.OK {
						t.Fatalf("checks failed: %v", res.Checks)
					}
					if res.Results == nil {
						t.Fatal("no results")
					}
					if sc.name == "chat" { // one node delivers each chat's messages in seq order
						d := raw["results"].(map[string]any)["delivery"].(map[string]any)
						if n := d["out_of_order"]; n != 0.0 {
							t.Fatalf("one node: %v deliveries out of seq order, want 0", n)
						}
					}
				})
			}
		})
	}
}

// TestChatScenarioAcrossNodes runs the chat scenario over two nodes of one deployment (one
// PostgreSQL, one Redis): the WebSockets alternate between the nodes, so every group has members
// on both, and the tool's checks (every message delivered to every member, gapless seqs) hold.
func TestChatScenarioAcrossNodes(t *testing.T) {
	t.Parallel()
	redisURL := storetest.RedisURL(t)
	_, prefix := storetest.Redis(t)
	a := servertest.New(t, store.Postgres, func(c *config.Config) {
		c.RateLimits, c.RedisURL, c.RedisPrefix = false, redisURL, prefix
	})
	second := servertest.New(t, store.Postgres, func(c *config.Config) {
		c.RateLimits, c.RedisURL, c.RedisPrefix, c.DatabaseURL = false, redisURL, prefix, a.Config.DatabaseURL
	})
	args := append([]string{"-scenario", "chat", "-addr", a.URL, "-ws-addrs", second.URL, "-keep-going", "-slo", "0",
		"-chat-users", "12", "-chat-groups", "3", "-chat-group-size", "4", "-chat-senders", "6",
		"-chat-rates", "30,60", "-history-rate", "5"}, quick...)
	res, _, err := runTool(t, args...)
	if err != nil {
		t.Fatalf("nerutalk-bench %s: %v", strings.Join(args, " "), err)
	}
	if !res.OK {
		t.Fatalf("checks failed: %v", res.Checks)
	}
}

// TestBystanderScenarioAgainstRealServer runs the bystander scenario, tiny and short, with its
// pair inside the tool and in a process of its own (the tool's test binary started again, see
// TestMain): the pair's sends, acks and deliveries must reach the phases either way. The idle
// mode is not run here: it would move this whole test binary, servers included, to SCHED_IDLE.
func TestBystanderScenarioAgainstRealServer(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		for _, iso := range []string{isolateNone, isolateProcess} {
			t.Run(string(d)+"/"+iso, func(t *testing.T) {
				t.Parallel()
				node := servertest.New(t, d, nil)
				args := append([]string{"-scenario", "bystander", "-addr", node.URL, "-abusers", "1",
					"-abuses", "nul_bytes", "-bystander-rate", "40", "-phase-gap", "100ms", "-bystander-isolation", iso}, quick...)
				res, raw, err := runTool(t, args...)
				if err != nil {
					t.Fatalf("nerutalk-bench %s: %v", strings.Join(args, " "), err)
				}
				if !res.OK {
					t.Fatalf("checks failed: %v", res.Checks)
				}
				out := raw["results"].(map[string]any)
				if out["bystander_isolation"] != iso {
					t.Fatalf("isolation %v, want %s", out["bystander_isolation"], iso)
				}
				phases := out["phases"].([]any)
				if len(phases) != 3 {
					t.Fatalf("%d phases, want quiet, nul_bytes, quiet_end", len(phases))
				}
				for _, p := range phases {
					p := p.(map[string]any)
					ack, dlv := p["ack"].(map[string]any), p["delivery"].(map[string]any)
					if ack["count"] == 0.0 || dlv["count"] == 0.0 {
						t.Fatalf("phase %v: %v acks, %v deliveries measured", p["name"], ack["count"], dlv["count"])
					}
				}
				if n := phases[1].(map[string]any)["abuse_refused"]; n == 0.0 {
					t.Fatal("no NUL-byte message was refused")
				}
			})
		}
	}
}
