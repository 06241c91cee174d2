//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// Crash durability (issue 16): clients stream messages into shared chats while the server is
// killed with SIGKILL at random moments and restarted on the same data. Every ack a client got is
// a promise: the message is stored, once, under the acked seq. Clients behave as apps do: on a
// reconnect they resend every message not yet acknowledged with the same client_id, and the
// server must deduplicate it.
//
// The moments are drawn from NERUTALK_CRASH_SEED (printed by every run; a random seed without
// it): NERUTALK_CRASH_SEED=42 go test -run TestCrashDurability ./cmd/nerutalk reruns one.

const (
	crashClients  = 4  // users, each with one WebSocket, each a member of every chat
	crashChats    = 2  // group chats shared by every client
	crashInflight = 16 // unacknowledged sends per client at most (pipelined, as apps may)
	crashKills    = 3  // SIGKILLs per run
)

// crashSeed returns the run's seed: NERUTALK_CRASH_SEED, or a fresh one, logged either way.
func crashSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("NERUTALK_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("NERUTALK_CRASH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("NERUTALK_CRASH_SEED=%d (set it to replay these kill moments)", seed)
	return seed
}

// crashNode is one server of the deployment: a fixed address and environment, restarted on the
// same data after every kill.
type crashNode struct {
	name string
	addr string
	env  []string
	proc *served
	logs []string // the stderr of every earlier process, for a failure's report
}

func (n *crashNode) start(t *testing.T) {
	t.Helper()
	n.proc = serve(t, n.addr, n.env...)
}

// kill sends SIGKILL and waits for the process to be gone: no shutdown code runs. A process that
// exited on its own just before (termThenKill's drain ending between its SIGTERM and this
// SIGKILL) is gone already: os.ErrProcessDone is success.
func (n *crashNode) kill(t *testing.T) {
	t.Helper()
	if err := n.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("kill %s: %v", n.name, err)
	}
	select {
	case <-n.proc.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not die within 10s of SIGKILL", n.name)
	}
	n.logs = append(n.logs, n.proc.stderr.String())
}

// termThenKill starts a graceful shutdown (SIGTERM) and cuts it short with SIGKILL after delay,
// as an orchestrator does when the grace period ends: what was acked during the drain must be
// durable too.
func (n *crashNode) termThenKill(t *testing.T, delay time.Duration) {
	t.Helper()
	if err := n.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", n.name, err)
	}
	select {
	case <-n.proc.exited: // it finished draining first
		n.logs = append(n.logs, n.proc.stderr.String())
		return
	case <-time.After(delay):
	}
	n.kill(t)
}

func (n *crashNode) dumpLogs(t *testing.T) {
	t.Helper()
	all := append(append([]string(nil), n.logs...), n.proc.stderr.String())
	for i, l := range all {
		if len(l) > 4000 {
			l = "..." + l[len(l)-4000:]
		}
		t.Logf("%s, process %d, stderr:\n%s", n.name, i+1, l)
	}
}

// crashAPI is a small REST client for the setup and the final check (test goroutine only).
type crashAPI struct {
	t    *testing.T
	http *http.Client
}

func (a crashAPI) call(addr, method, path, token string, body any, want int, out any) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, "http://"+addr+"/api/v1"+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		a.t.Fatalf("%s %s: status %d %s, want %d", method, path, resp.StatusCode, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			a.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

type crashMessage struct {
	ID       string `json:"id"`
	ChatID   string `json:"chat_id"`
	Seq      int64  `json:"seq"`
	SenderID string `json:"sender_id"`
	ClientID string `json:"client_id"`
	Text     string `json:"text"`
}

// crashClient is one user's app: it sends a stream of messages over one WebSocket, reconnects
// (to any node) when the socket fails, resends what was not acked, and records every ack.
type crashClient struct {
	idx    int
	userID string
	token  string
	addrs  []string // the nodes, its own first
	chats  []string

	mu         sync.Mutex
	next       int                     // number of the next new message
	pending    map[string]string       // client_id -> chat id, sent (maybe) but not acked
	acked      map[string]crashMessage // client_id -> the acked message
	problems   []string                // acks that contradict an earlier ack, unexpected errors
	errCodes   map[string]int          // error codes answered to sends
	resent     int                     // sends of a client_id that had been sent before
	restResent int                     // of which through REST, answered
	connects   int
	wake       chan struct{} // an ack or an error arrived
	ackedHook  func()        // called (without mu) after each new ack
}

func newCrashClient(idx int, userID, token string, addrs, chats []string) *crashClient {
	return &crashClient{idx: idx, userID: userID, token: token, addrs: addrs, chats: chats,
		pending: map[string]string{}, acked: map[string]crashMessage{}, errCodes: map[string]int{},
		wake: make(chan struct{}, 1)}
}

// transientSendErrors are the answers a send may get around a crash or a restart; the client
// resends later. Any other error code is a failure of the test.
var transientSendErrors = map[string]bool{"internal": true, "unavailable": true, "shutting_down": true, "rate_limited": true}

// run streams until stop is closed and then until every message it sent is acked (or ctx ends).
func (c *crashClient) run(ctx context.Context, stop <-chan struct{}) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		addr := c.addrs[attempt%len(c.addrs)]
		if c.session(ctx, addr, stop) {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(30 * time.Millisecond):
		}
	}
}

// session runs one connection; it reports whether the client is done.
func (c *crashClient) session(ctx context.Context, addr string, stop <-chan struct{}) bool {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	ws, _, err := websocket.Dial(dctx, "ws://"+addr+"/api/v1/ws?token="+c.token, nil)
	cancel()
	if err != nil {
		return false
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	c.mu.Lock()
	c.connects++
	c.mu.Unlock()

	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	dead := make(chan struct{})
	go func() { // reader
		defer close(dead)
		defer scancel()
		for {
			_, raw, err := ws.Read(sctx)
			if err != nil {
				return
			}
			c.frame(raw)
		}
	}()

	send := func(clientID, chatID string) error {
		frame, _ := json.Marshal(map[string]any{"type": "send_message", "id": clientID,
			"data": map[string]string{"chat_id": chatID, "client_id": clientID, "text": "crash " + clientID}})
		wctx, wcancel := context.WithTimeout(sctx, 2*time.Second)
		defer wcancel()
		return ws.Write(wctx, websocket.MessageText, frame)
	}
	// An app resends what it never saw acked, with the same client_id, as soon as it is back.
	c.mu.Lock()
	resend := make([][2]string, 0, len(c.pending))
	for id, chat := range c.pending {
		resend = append(resend, [2]string{id, chat})
	}
	c.resent += len(resend)
	c.mu.Unlock()
	sort.Slice(resend, func(i, j int) bool { return resend[i][0] < resend[j][0] })
	for _, r := range resend {
		if c.idx%2 == 1 { // half the clients resend through REST, the others on the socket
			if !c.resendREST(ctx, addr, r[0], r[1]) {
				return false
			}
			continue
		}
		if send(r[0], r[1]) != nil {
			return false
		}
	}
	retry := time.NewTicker(500 * time.Millisecond)
	defer retry.Stop()
	for {
		stopped := false
		select {
		case <-stop:
			stopped = true
		default:
		}
		c.mu.Lock()
		if stopped && len(c.pending) == 0 {
			c.mu.Unlock()
			ws.Close(websocket.StatusNormalClosure, "")
			return true
		}
		var id, chat string
		if !stopped && len(c.pending) < crashInflight {
			id = fmt.Sprintf("u%d-m%d", c.idx, c.next)
			chat = c.chats[c.next%len(c.chats)]
			c.next++
			c.pending[id] = chat
		}
		c.mu.Unlock()
		if id != "" {
			if send(id, chat) != nil {
				return false
			}
			continue
		}
		select {
		case <-dead:
			return false
		case <-ctx.Done():
			return false
		case <-c.wake:
		case <-retry.C:
			// An error answer (a transient one) leaves the message pending: resend the pending
			// ones now and then on a live connection too; the server answers a duplicate with
			// the original message.
			c.mu.Lock()
			again := make([][2]string, 0, len(c.pending))
			if len(c.errCodes) > 0 {
				for id, chat := range c.pending {
					again = append(again, [2]string{id, chat})
				}
			}
			c.resent += len(again)
			c.mu.Unlock()
			for _, r := range again {
				if send(r[0], r[1]) != nil {
					return false
				}
			}
		case <-stop:
		}
	}
}

// resendREST resends one message with POST /chats/{id}/messages: 201 when it was not stored yet,
// 200 with the original when it was. It reports whether the server answered.
func (c *crashClient) resendREST(ctx context.Context, addr, clientID, chatID string) bool {
	raw, _ := json.Marshal(map[string]string{"client_id": clientID, "text": "crash " + clientID})
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodPost, "http://"+addr+"/api/v1/chats/"+chatID+"/messages", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return false
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated:
		frame, _ := json.Marshal(map[string]any{"type": "ack", "id": clientID, "data": json.RawMessage(body)})
		c.frame(frame)
		c.mu.Lock()
		c.restResent++
		c.mu.Unlock()
		return true
	case http.StatusServiceUnavailable, http.StatusInternalServerError:
		return false
	default:
		c.problem("REST resend of %s: %d %s", clientID, resp.StatusCode, body)
		return true
	}
}

// frame records an ack or an error of a send.
func (c *crashClient) frame(raw []byte) {
	var f struct {
		Type string          `json:"type"`
		ID   string          `json:"id"`
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(raw, &f) != nil || f.ID == "" {
		return
	}
	switch f.Type {
	case "ack":
		var m crashMessage
		if err := json.Unmarshal(f.Data, &m); err != nil {
			c.problem("ack %s: %v", f.ID, err)
			return
		}
		c.mu.Lock()
		if m.ClientID != f.ID || m.SenderID != c.userID || m.Seq < 1 {
			c.mu.Unlock()
			c.problem("ack of %s carries client_id %q sender %q seq %d", f.ID, m.ClientID, m.SenderID, m.Seq)
			return
		}
		prev, seen := c.acked[f.ID]
		c.acked[f.ID] = m
		delete(c.pending, f.ID)
		hook := c.ackedHook
		c.mu.Unlock()
		if seen && (prev.Seq != m.Seq || prev.ChatID != m.ChatID || prev.ID != m.ID) {
			c.problem("%s acked twice differently: seq %d id %s, then seq %d id %s", f.ID, prev.Seq, prev.ID, m.Seq, m.ID)
		}
		if !seen && hook != nil {
			hook()
		}
	case "error":
		var e struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
		}
		json.Unmarshal(f.Data, &e)
		c.mu.Lock()
		c.errCodes[e.Code]++
		c.mu.Unlock()
		if !transientSendErrors[e.Code] {
			c.problem("send %s answered %s: %s", f.ID, e.Code, e.Detail)
		}
	default:
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *crashClient) problem(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.problems) < 20 {
		c.problems = append(c.problems, fmt.Sprintf("client %d: ", c.idx)+fmt.Sprintf(format, args...))
	}
}

// crashRig is a deployment under test: its nodes, users, chats and clients.
type crashRig struct {
	t       *testing.T
	api     crashAPI
	nodes   []*crashNode
	clients []*crashClient
	chats   []string

	ackMu sync.Mutex
	acks  int
	acked chan struct{} // ticks on every new ack
}

func newCrashRig(t *testing.T, nodes []*crashNode) *crashRig {
	r := &crashRig{t: t, api: crashAPI{t: t, http: &http.Client{Timeout: 10 * time.Second}}, nodes: nodes,
		acked: make(chan struct{}, 1)}
	for _, n := range nodes {
		n.start(t)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				n.dumpLogs(t)
			}
		}
	})
	addr := nodes[0].addr
	type reg struct {
		User        struct{ ID string } `json:"user"`
		AccessToken string              `json:"access_token"`
	}
	regs := make([]reg, crashClients)
	for i := range regs {
		name := fmt.Sprintf("crash%d", i)
		r.api.call(addr, http.MethodPost, "/auth/register", "", map[string]string{
			"username": name, "email": name + "@example.com", "password": "correct horse battery"}, http.StatusCreated, &regs[i])
	}
	others := make([]string, 0, crashClients-1)
	for _, rg := range regs[1:] {
		others = append(others, rg.User.ID)
	}
	for i := range crashChats {
		var chat struct{ ID string }
		r.api.call(addr, http.MethodPost, "/chats", regs[0].AccessToken, map[string]any{
			"type": "group", "title": fmt.Sprintf("crash %d", i), "member_ids": others}, http.StatusCreated, &chat)
		r.chats = append(r.chats, chat.ID)
	}
	for i, rg := range regs {
		addrs := make([]string, 0, len(nodes))
		for k := range nodes { // its own node first, then the others (failover)
			addrs = append(addrs, nodes[(i+k)%len(nodes)].addr)
		}
		c := newCrashClient(i, rg.User.ID, rg.AccessToken, addrs, r.chats)
		c.ackedHook = r.onAck
		r.clients = append(r.clients, c)
	}
	return r
}

func (r *crashRig) onAck() {
	r.ackMu.Lock()
	r.acks++
	r.ackMu.Unlock()
	select {
	case r.acked <- struct{}{}:
	default:
	}
}

func (r *crashRig) ackCount() int {
	r.ackMu.Lock()
	defer r.ackMu.Unlock()
	return r.acks
}

// waitAcks waits until at least n more acks than now arrived (the stream is flowing).
func (r *crashRig) waitAcks(n int, within time.Duration) {
	r.t.Helper()
	target := r.ackCount() + n
	deadline := time.After(within)
	for r.ackCount() < target {
		select {
		case <-r.acked:
		case <-deadline:
			r.t.Fatalf("the stream stalled: %d acks, waited for %d", r.ackCount(), target)
		}
	}
}

// stream starts the clients and returns a function that stops new sends, waits until every
// message sent has been acked and returns.
func (r *crashRig) stream(ctx context.Context) (finish func()) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range r.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(ctx, stop)
		}()
	}
	return func() {
		r.t.Helper()
		close(stop)
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			<-done
			for _, c := range r.clients {
				c.mu.Lock()
				r.t.Errorf("client %d: %d messages never acked", c.idx, len(c.pending))
				c.mu.Unlock()
			}
			r.t.Fatal("the clients did not get every message acked in time")
		}
	}
}

// randomPause sleeps a random 50–800 ms, after at least a few acks: a kill lands mid-stream.
func (r *crashRig) randomPause(rng *rand.Rand) {
	r.t.Helper()
	r.waitAcks(5, 20*time.Second)
	time.Sleep(time.Duration(50+rng.IntN(750)) * time.Millisecond)
}

// check reads every chat's history and holds it against every client's acks.
func (r *crashRig) check() {
	t := r.t
	t.Helper()
	token := r.clients[0].token
	addr := r.nodes[0].addr
	type key struct{ sender, clientID string }
	stored := map[key]crashMessage{}
	total := 0
	for _, chat := range r.chats {
		var after int64
		for {
			var page struct {
				Items []crashMessage `json:"items"`
			}
			r.api.call(addr, http.MethodGet, fmt.Sprintf("/chats/%s/messages?after_seq=%d&limit=200", chat, after), token, nil, http.StatusOK, &page)
			if len(page.Items) == 0 {
				break
			}
			for _, m := range page.Items {
				if m.Seq != after+1 {
					t.Errorf("chat %s: seq %d after %d: a gap (or a reordering)", chat, m.Seq, after)
				}
				after = m.Seq
				if m.ClientID == "" { // system messages (none expected, but they have no client_id)
					continue
				}
				k := key{m.SenderID, m.ClientID}
				if prev, dup := stored[k]; dup {
					t.Errorf("client_id %s of %s stored twice: seq %d in %s and seq %d in %s", m.ClientID, m.SenderID, prev.Seq, prev.ChatID, m.Seq, chat)
				}
				stored[k] = m
				total++
			}
		}
		var c struct {
			LastSeq int64 `json:"last_seq"`
		}
		r.api.call(addr, http.MethodGet, "/chats/"+chat, token, nil, http.StatusOK, &c)
		if c.LastSeq != after {
			t.Errorf("chat %s: last_seq %d, history ends at %d", chat, c.LastSeq, after)
		}
	}
	// A sender has read what it wrote: its marks move to its message in the same commit, so they
	// survive the crashes with the messages.
	for _, chat := range r.chats {
		var rc struct {
			Items []struct {
				UserID       string `json:"user_id"`
				ReadSeq      int64  `json:"read_seq"`
				DeliveredSeq int64  `json:"delivered_seq"`
			} `json:"items"`
		}
		r.api.call(addr, http.MethodGet, "/chats/"+chat+"/receipts", token, nil, http.StatusOK, &rc)
		marks := map[string][2]int64{}
		for _, it := range rc.Items {
			marks[it.UserID] = [2]int64{it.ReadSeq, it.DeliveredSeq}
		}
		for _, c := range r.clients {
			var top int64
			c.mu.Lock()
			for _, m := range c.acked {
				if m.ChatID == chat {
					top = max(top, m.Seq)
				}
			}
			c.mu.Unlock()
			if got := marks[c.userID]; got[0] < top || got[1] < top {
				t.Errorf("chat %s: client %d's marks read %d, delivered %d, below its own acked seq %d", chat, c.idx, got[0], got[1], top)
			}
		}
	}
	acked, resent, restResent, connects := 0, 0, 0, 0
	for _, c := range r.clients {
		c.mu.Lock()
		for _, p := range c.problems {
			t.Error(p)
		}
		for id, m := range c.acked {
			acked++
			s, ok := stored[key{c.userID, id}]
			switch {
			case !ok:
				t.Errorf("client %d: %s acked (seq %d in %s) but not stored", c.idx, id, m.Seq, m.ChatID)
			case s.Seq != m.Seq || s.ChatID != m.ChatID || s.ID != m.ID:
				t.Errorf("client %d: %s acked as seq %d id %s in %s, stored as seq %d id %s in %s", c.idx, id, m.Seq, m.ID, m.ChatID, s.Seq, s.ID, s.ChatID)
			}
		}
		if len(c.pending) > 0 {
			t.Errorf("client %d: %d messages never acked", c.idx, len(c.pending))
		}
		resent += c.resent
		restResent += c.restResent
		connects += c.connects
		if len(c.errCodes) > 0 {
			t.Logf("client %d: send errors %v", c.idx, c.errCodes)
		}
		c.mu.Unlock()
	}
	// Every message sent was resent until acked, so what is stored is exactly what was acked.
	if total != acked {
		t.Errorf("%d messages stored, %d acked: the server stored messages nobody sent", total, acked)
	}
	t.Logf("%d messages acked and stored once each in %d chats; %d resends after failures (%d answered through REST), %d connections",
		acked, len(r.chats), resent, restResent, connects)
}

func crashEnv(extra ...string) []string {
	return append([]string{"NERUTALK_ARGON2_MEMORY_KIB=8", "NERUTALK_ARGON2_TIME=1", "NERUTALK_LOG_LEVEL=warn",
		"NERUTALK_RATE_LIMITS=off", "NERUTALK_SHUTDOWN_TIMEOUT=2s"}, extra...)
}

// One node, SIGKILLed crashKills times mid-stream and restarted on the same data.
func TestCrashDurability(t *testing.T) {
	t.Parallel()
	seed := crashSeed(t)
	engines := []struct {
		name string
		env  func(t *testing.T) []string
	}{
		{"sqlite", func(t *testing.T) []string { return []string{"NERUTALK_DATA_DIR=" + t.TempDir()} }},
		{"postgres", func(t *testing.T) []string {
			return []string{"NERUTALK_DATABASE_URL=" + storetest.PostgresURL(t), "NERUTALK_DATA_DIR=" + t.TempDir()}
		}},
	}
	for i, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			node := &crashNode{name: "node", addr: freeAddr(t), env: crashEnv(e.env(t)...)}
			r := newCrashRig(t, []*crashNode{node})
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // generous: a loaded CI machine
			defer cancel()
			finish := r.stream(ctx)
			for k := range crashKills {
				r.randomPause(rng)
				if k == 1 { // the second one in the middle of a graceful shutdown
					node.termThenKill(t, time.Duration(rng.IntN(300))*time.Millisecond)
				} else {
					node.kill(t)
				}
				t.Logf("kill %d after %d acks", k+1, r.ackCount())
				time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
				node.start(t)
			}
			r.waitAcks(5, 20*time.Second)
			finish()
			r.check()
		})
	}
}

// redisServer is a redis-server of the test's own, so that it can be killed and restarted
// (without persistence: a restart loses every key, the worst case).
type redisServer struct {
	port string
	cmd  *exec.Cmd
	done chan struct{}
	log  *servertest.LogBuffer
}

func startRedis(t *testing.T, port string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed; CI must run the crash test with Redis")
		}
		t.Skip("redis-server not installed: the two-node crash test is skipped")
	}
	s := &redisServer{port: port, done: make(chan struct{}), log: &servertest.LogBuffer{}}
	s.cmd = exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // gone with the test, even on a timeout
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
		if err == nil {
			c.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			c.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := c.Read(buf)
			c.Close()
			if strings.HasPrefix(string(buf[:n]), "+PONG") {
				return s
			}
		}
		select {
		case <-s.done:
			t.Fatalf("redis-server exited:\n%s", s.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer: %v\n%s", port, err, s.log.String())
		}
	}
}

func (s *redisServer) kill(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// Two nodes sharing PostgreSQL and a Redis of the test's own: one node is SIGKILLed and
// restarted (its clients fail over to the other node and back), Redis is killed and restarted
// empty, and the same invariants hold; afterwards a message sent through either node reaches
// the clients of the other.
func TestCrashDurabilityTwoNodesRedis(t *testing.T) {
	t.Parallel()
	seed := crashSeed(t)
	rng := rand.New(rand.NewPCG(seed, 100))
	_, port, _ := net.SplitHostPort(freeAddr(t))
	rds := startRedis(t, port)
	dbURL := storetest.PostgresURL(t)
	env := crashEnv("NERUTALK_DATABASE_URL="+dbURL, "NERUTALK_REDIS_URL=redis://127.0.0.1:"+port+"/0",
		"NERUTALK_REDIS_PREFIX=crash")
	a := &crashNode{name: "node a", addr: freeAddr(t), env: append(env, "NERUTALK_DATA_DIR="+t.TempDir())}
	b := &crashNode{name: "node b", addr: freeAddr(t), env: append(env, "NERUTALK_DATA_DIR="+t.TempDir())}
	r := newCrashRig(t, []*crashNode{a, b})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("redis-server:\n%s", rds.log.String())
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // generous: a loaded CI machine
	defer cancel()
	finish := r.stream(ctx)
	// The two disruptions in a seeded order, each at a random moment.
	steps := []func(){
		func() {
			a.kill(t)
			t.Logf("node a killed after %d acks", r.ackCount())
			r.waitAcks(5, 20*time.Second) // its clients carry on through node b
			a.start(t)
		},
		func() {
			rds.kill(t)
			t.Logf("redis killed after %d acks", r.ackCount())
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
			rds = startRedis(t, port)
		},
	}
	if rng.IntN(2) == 1 {
		steps[0], steps[1] = steps[1], steps[0]
	}
	for _, step := range steps {
		r.randomPause(rng)
		step()
	}
	r.waitAcks(5, 20*time.Second)
	finish()
	r.check()
	r.crossNode(ctx)
}

// crossNode connects client i to node i%2 and has every client send a few messages: every other
// client must receive each one as message_new, across the nodes, through the restarted Redis.
func (r *crashRig) crossNode(ctx context.Context) {
	t := r.t
	t.Helper()
	const each = 3
	type conn struct {
		ws   *websocket.Conn
		mu   sync.Mutex
		got  map[string]bool // sender/client_id of message_new received
		acks map[string]bool
	}
	conns := make([]*conn, len(r.clients))
	for i, c := range r.clients {
		addr := r.nodes[i%len(r.nodes)].addr
		ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/api/v1/ws?token="+c.token, nil)
		if err != nil {
			t.Fatalf("client %d to %s: %v", i, addr, err)
		}
		defer ws.CloseNow()
		cn := &conn{ws: ws, got: map[string]bool{}, acks: map[string]bool{}}
		conns[i] = cn
		// Registered on its node once a ping is answered (frames are answered in order).
		if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"ping","id":"p"}`)); err != nil {
			t.Fatal(err)
		}
		for {
			_, raw, err := ws.Read(ctx)
			if err != nil {
				t.Fatalf("client %d: %v", i, err)
			}
			if bytes.Contains(raw, []byte(`"id":"p"`)) {
				break
			}
		}
	}
	var wg sync.WaitGroup
	for _, cn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, raw, err := cn.ws.Read(ctx)
				if err != nil {
					return
				}
				var f struct {
					Type string
					ID   string
					Data crashMessage
				}
				if json.Unmarshal(raw, &f) != nil {
					continue
				}
				cn.mu.Lock()
				switch f.Type {
				case "message_new":
					cn.got[f.Data.SenderID+"/"+f.Data.ClientID] = true
				case "ack":
					cn.acks[f.ID] = true
				}
				cn.mu.Unlock()
			}
		}()
	}
	want := []string{}
	for i, c := range r.clients {
		for k := range each {
			id := fmt.Sprintf("cross-u%d-%d", i, k)
			want = append(want, c.userID+"/"+id)
			frame, _ := json.Marshal(map[string]any{"type": "send_message", "id": id,
				"data": map[string]string{"chat_id": r.chats[k%len(r.chats)], "client_id": id, "text": "across nodes"}})
			if err := conns[i].ws.Write(ctx, websocket.MessageText, frame); err != nil {
				t.Fatal(err)
			}
		}
	}
	missing := func() []string {
		var out []string
		for i, cn := range conns {
			cn.mu.Lock()
			for _, w := range want {
				if !cn.got[w] {
					out = append(out, fmt.Sprintf("client %d (node %s) lacks %s", i, r.nodes[i%len(r.nodes)].name, w))
				}
			}
			cn.mu.Unlock()
		}
		return out
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if m := missing(); len(m) > 0 {
		t.Errorf("%d deliveries missing after the disruptions, e.g. %v", len(m), m[:min(5, len(m))])
	}
	for _, cn := range conns {
		cn.ws.Close(websocket.StatusNormalClosure, "")
	}
	wg.Wait()
}
