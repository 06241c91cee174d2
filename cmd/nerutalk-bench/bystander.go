package main

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nerutalk/nerutalk/internal/cpuprio"
)

// The bystander scenario (issue 16, "abuse does not hurt bystanders"): a bystander pair exchanges
// messages at a steady rate over their WebSockets while phases run one abuse each for a fixed
// window (-warmup + -window). Per phase it reports the bystander's send→ack and send→delivery
// p50/p99, their ratio to the quiet phase's p99 (the goal is at most 2×), and what the server
// answered the abuse: statuses and close codes, so that a refusal (429, 422, 4029...) is counted.
//
// Run it against a server with its default limits ON (bench/run.sh -scenarios bystander does);
// with NERUTALK_RATE_LIMITS=off the rate-based refusals cannot happen. The setup registers
// 2 + -abusers accounts from one address: the per-address sign-in limit (10 a minute by default)
// allows up to 8, once a minute.

// bystanderPhases in the order they run (-abuses keeps quiet, the chosen ones and quiet_end).
var bystanderPhases = []string{"quiet", "nul_bytes", "ws_fragments", "ping_flood", "image_uploads",
	"conn_flood", "refresh_loop", "rest_send_flood", "group_flood", "quiet_end"}

type abuseCounts struct {
	mu       sync.Mutex
	Attempts uint64            `json:"attempts"`
	Statuses map[string]uint64 `json:"statuses"` // HTTP status (or "error") -> count
	Closes   map[string]uint64 `json:"close_codes"`
}

func (a *abuseCounts) status(s string) {
	a.mu.Lock()
	a.Attempts++
	if a.Statuses == nil {
		a.Statuses = map[string]uint64{}
	}
	a.Statuses[s]++
	a.mu.Unlock()
}

func (a *abuseCounts) attempt() {
	a.mu.Lock()
	a.Attempts++
	a.mu.Unlock()
}

func (a *abuseCounts) closed(code string) {
	a.mu.Lock()
	if a.Closes == nil {
		a.Closes = map[string]uint64{}
	}
	a.Closes[code]++
	a.mu.Unlock()
}

// refused counts the answers that refuse the abuse: 4xx statuses and 4029/1008/1009 closes.
func (a *abuseCounts) refused() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var n uint64
	for s, c := range a.Statuses {
		if len(s) == 3 && s[0] == '4' {
			n += c
		}
	}
	for s, c := range a.Closes {
		if s == "4029" || s == "1008" || s == "1009" {
			n += c
		}
	}
	return n
}

type bystanderPhase struct {
	Name       string         `json:"name"`
	Ack        latencySummary `json:"ack"`
	Delivery   latencySummary `json:"delivery"`
	AckRatio   float64        `json:"ack_p99_vs_quiet"`
	DelivRatio float64        `json:"delivery_p99_vs_quiet"`
	// Against the lower p99 of quiet and quiet_end: what the target is checked against.
	AckVsQuietest   float64      `json:"ack_p99_vs_quietest"`
	DelivVsQuietest float64      `json:"delivery_p99_vs_quietest"`
	Lost            uint64       `json:"bystander_unanswered"` // sent in the window, not acked by the phase's end + drain
	Abuse           *abuseCounts `json:"abuse"`
	Refused         uint64       `json:"abuse_refused"`
	ServerCores     float64      `json:"server_cores"`
}

type bystanderResults struct {
	RatePerS  float64          `json:"bystander_rate_per_s"`
	Isolation string           `json:"bystander_isolation"` // -bystander-isolation
	Abusers   int              `json:"abusers"`
	Phases    []bystanderPhase `json:"phases"`
}

// phaseClock maps a send time to the phase whose measured window holds it.
type phaseClock struct {
	mu      sync.Mutex
	windows [][2]time.Time
}

func (p *phaseClock) set(i int, from, to time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.windows) <= i {
		p.windows = append(p.windows, [2]time.Time{})
	}
	p.windows[i] = [2]time.Time{from, to}
}

func (p *phaseClock) of(t time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, w := range p.windows {
		if !t.Before(w[0]) && t.Before(w[1]) {
			return i
		}
	}
	return -1
}

func (r *runner) bystander(ctx context.Context, res *result) error {
	o := r.opt
	if err := r.api.checkServer(ctx, "/auth/register", "/chats", "/files", "/auth/refresh"); err != nil {
		return err
	}
	if c := res.Server.Config; c != nil && c["rate_limits"] == "off" {
		r.warn("the server runs with rate limits off: rate refusals cannot happen (start it with its default limits)")
	}
	users, err := r.registerUsers(ctx, runPrefix(), 2+o.abusers)
	if err != nil {
		return fmt.Errorf("%w (the per-address sign-in limit allows about 10 registrations a minute)", err)
	}
	a, b, abusers := users[0], users[1], users[2:]
	pair, err := r.api.createChat(ctx, a, "direct", "", []string{b.id})
	if err != nil {
		return err
	}
	// Each abuser owns a group with the next abuser, for its REST sends.
	abuseChats := make([]string, len(abusers))
	for i, u := range abusers {
		ch, err := r.api.createChat(ctx, u, "group", "abuse", []string{abusers[(i+1)%len(abusers)].id})
		if err != nil {
			return err
		}
		abuseChats[i] = ch.ID
	}
	phases := o.phases
	if len(phases) == 0 {
		phases = bystanderPhases
	}
	nPhases := len(phases)
	acks, delivs := make([]histogram, nPhases), make([]histogram, nPhases)
	var clock phaseClock
	var sent, acked [16]atomic.Uint64 // per phase
	ev := func(kind byte, at, recv time.Time) {
		p := clock.of(at)
		if p < 0 {
			return
		}
		switch kind {
		case pairSent:
			sent[p].Add(1)
		case pairAcked:
			acks[p].Record(recv.Sub(at))
			acked[p].Add(1)
		case pairDelivered:
			delivs[p].Record(recv.Sub(at))
		}
	}
	// The bystander pair: in a process of its own unless -bystander-isolation none (pair.go).
	var stop func() error
	if o.isolation == isolateNone {
		stopIn, err := r.startPair(ctx, a, b, pair.ID, ev)
		if err != nil {
			return err
		}
		stop = func() error { stopIn(); return nil }
	} else {
		if stop, err = r.startPairProcess(ctx, a, b, pair.ID, ev); err != nil {
			return err
		}
	}
	stopPair := sync.OnceValue(stop)
	defer stopPair()
	if o.isolation == isolateIdle {
		defer r.abuseAtIdlePriority()()
	}

	var png []byte
	out := &bystanderResults{RatePerS: o.bystanderRate, Isolation: o.isolation, Abusers: len(abusers)}
	for i, name := range phases {
		if name == "image_uploads" && png == nil {
			r.logf("generating a 16-bit PNG of about %d pixels", o.imagePixels)
			png = bigPNG(o.imagePixels)
			r.logf("PNG: %d bytes", len(png))
		}
		counts := &abuseCounts{}
		start := time.Now()
		ws, we := start.Add(o.warmup), start.Add(o.warmup+o.window)
		clock.set(i, ws, we)
		actx, cancel := context.WithDeadline(ctx, we)
		var wg sync.WaitGroup
		var cpu cpuUse
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sleepUntil(actx, ws) {
				r.prof.cpu(ctx, "bystander-"+name, o.window, r.logf)
				m := startCPU(o.serverPIDs(), o.dbMatch)
				<-actx.Done()
				cpu = m.stop()
			}
		}()
		for w := range max(1, len(abusers)) {
			if name == "quiet" || name == "quiet_end" {
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				u := abusers[w]
				r.abuse(actx, name, u, abuseChats[w], abusers[(w+1)%len(abusers)], png, counts)
			}()
		}
		wg.Wait()
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Let the window's bystander messages be answered before the next phase is read.
		drainUntil := time.Now().Add(min(o.drain, 5*time.Second))
		for acked[i].Load() < sent[i].Load() && time.Now().Before(drainUntil) {
			time.Sleep(20 * time.Millisecond)
		}
		// What an abuse leaves running on the server (an image still decoding after its client
		// gave up, say) would be charged to the next phase: pause before it.
		if i < nPhases-1 && !sleepUntil(ctx, time.Now().Add(o.phaseGap)) {
			return ctx.Err()
		}
		ph := bystanderPhase{Name: name, Ack: acks[i].Summary(), Delivery: delivs[i].Summary(), Abuse: counts,
			Refused: counts.refused(), ServerCores: cpu.ServerCores}
		if s, a := sent[i].Load(), acked[i].Load(); s > a {
			ph.Lost = s - a
		}
		if i > 0 {
			q := out.Phases[0]
			if q.Ack.P99MS > 0 {
				ph.AckRatio = round3(ph.Ack.P99MS / q.Ack.P99MS)
			}
			if q.Delivery.P99MS > 0 {
				ph.DelivRatio = round3(ph.Delivery.P99MS / q.Delivery.P99MS)
			}
		} else {
			ph.AckRatio, ph.DelivRatio = 1, 1
		}
		out.Phases = append(out.Phases, ph)
		r.logf("phase %-15s ack p50 %7.2f p99 %7.2f ms (x%.2f)  delivery p50 %7.2f p99 %7.2f ms (x%.2f)  abuse %d attempts, %d refused %v %v",
			name, ph.Ack.P50MS, ph.Ack.P99MS, ph.AckRatio, ph.Delivery.P50MS, ph.Delivery.P99MS, ph.DelivRatio,
			counts.Attempts, ph.Refused, counts.Statuses, counts.Closes)
	}
	if err := stopPair(); err != nil {
		return err
	}
	res.Results = out
	// The target is checked against the lower p99 of the two quiet phases: the first follows the
	// set-up and is sometimes the run's noisiest, which would flatter every ratio.
	refAck := quietest(out.Phases, func(p *bystanderPhase) float64 { return p.Ack.P99MS })
	refDlv := quietest(out.Phases, func(p *bystanderPhase) float64 { return p.Delivery.P99MS })
	for i := range out.Phases {
		p := &out.Phases[i]
		if refAck > 0 && refDlv > 0 {
			p.AckVsQuietest, p.DelivVsQuietest = round3(p.Ack.P99MS/refAck), round3(p.Delivery.P99MS/refDlv)
		}
	}
	res.say("bystander at %.0f msgs/s (isolation: %s), %d abusers; x = p99 against the lower p99 of quiet and quiet_end (goal: at most 2x), xq = against quiet",
		o.bystanderRate, o.isolation, len(abusers))
	res.say("%-15s %9s %9s %6s %6s %9s %9s %6s %9s %9s", "phase", "ack p50", "ack p99", "x", "xq", "dlv p50", "dlv p99", "x", "attempts", "refused")
	for _, p := range out.Phases {
		res.say("%-15s %9.2f %9.2f %6.2f %6.2f %9.2f %9.2f %6.2f %9d %9d", p.Name, p.Ack.P50MS, p.Ack.P99MS, p.AckVsQuietest, p.AckRatio,
			p.Delivery.P50MS, p.Delivery.P99MS, p.DelivVsQuietest, p.Abuse.Attempts, p.Refused)
		measured := p.Ack.Count > 0 && p.Delivery.Count > 0
		res.target("bystander p99 during "+p.Name, "≤ 2x the quieter of quiet, quiet_end",
			fmt.Sprintf("ack x%.2f, delivery x%.2f", p.AckVsQuietest, p.DelivVsQuietest),
			measured && p.AckVsQuietest > 0 && p.AckVsQuietest <= 2 && p.DelivVsQuietest <= 2)
		// A bystander that got no answer is a failure of the run (a dead server, say), not a
		// latency to compare.
		res.check(measured, "bystander: no message acked and delivered during %s", p.Name)
		res.check(p.Lost == 0, "bystander: %d messages sent during %s were never acked", p.Lost, p.Name)
	}
	return nil
}

// abuseAtIdlePriority moves this process, which runs the abuse, to SCHED_IDLE once the bystander
// pair runs in a process of its own, and returns what moves it back.
func (r *runner) abuseAtIdlePriority() (restore func()) {
	if err := cpuprio.Idle(); err != nil {
		r.warn("could not move the abuse to SCHED_IDLE: %v", err)
		return func() {}
	}
	r.logf("the bystander pair runs in a process of its own; this process (the abuse) runs under SCHED_IDLE")
	return func() {
		if err := cpuprio.Normal(); err != nil {
			r.warn("could not leave SCHED_IDLE (%v): scenarios after this one in the same run would be measured from an idle-priority generator", err)
		}
	}
}

// quietest returns the lowest positive p99 (of) of the phases without abuse (quiet, quiet_end), 0
// if none was measured.
func quietest(phases []bystanderPhase, of func(*bystanderPhase) float64) float64 {
	var best float64
	for i := range phases {
		p := &phases[i]
		if v := of(p); (p.Name == "quiet" || p.Name == "quiet_end") && v > 0 && (best == 0 || v < best) {
			best = v
		}
	}
	return best
}

// abuse runs one abuser's abuse of the phase until ctx ends.
func (r *runner) abuse(ctx context.Context, phase string, u *user, chatID string, peer *user, png []byte, counts *abuseCounts) {
	statusOfErr := func(err error) string {
		if err == nil {
			return "2xx"
		}
		if s := statusOf(err); s != 0 {
			return strconv.Itoa(s)
		}
		return "error"
	}
	loop := func(op func() error) {
		for ctx.Err() == nil {
			err := op()
			if ctx.Err() != nil && err != nil {
				counts.status("unfinished") // cut by the end of the window (a slow upload, say)
				return
			}
			counts.status(statusOfErr(err))
			if statusOf(err) == http.StatusTooManyRequests || (err != nil && statusOf(err) == 0) {
				time.Sleep(10 * time.Millisecond) // an abuser retries at once; no pure spin on a dead socket
			}
		}
	}
	n := 0
	switch phase {
	case "nul_bytes":
		loop(func() error {
			n++
			return r.api.authed(ctx, u, http.MethodPost, "/chats/"+chatID+"/messages",
				map[string]any{"client_id": fmt.Sprintf("nul-%d-%d", time.Now().UnixNano(), n), "text": "nul\x00byte"}, nil)
		})
	case "rest_send_flood":
		loop(func() error {
			n++
			return r.api.authed(ctx, u, http.MethodPost, "/chats/"+chatID+"/messages",
				map[string]any{"client_id": fmt.Sprintf("flood-%d-%d", time.Now().UnixNano(), n), "text": "flood"}, nil)
		})
	case "group_flood":
		loop(func() error {
			_, err := r.api.createChat(ctx, u, "group", "flood", []string{peer.id})
			return err
		})
	case "refresh_loop":
		u.mu.Lock()
		rt := u.refresh
		u.mu.Unlock()
		loop(func() error {
			a, err := r.api.refresh(ctx, rt)
			if err == nil {
				rt = a.RefreshToken
				u.mu.Lock()
				u.access, u.refresh = a.AccessToken, a.RefreshToken
				u.mu.Unlock()
			}
			return err
		})
	case "image_uploads":
		loop(func() error { return r.api.upload(ctx, u, "big.png", "image/png", png) })
	case "ws_fragments", "ping_flood":
		// One abusive connection at a time, redialled whenever the server closes it.
		msg := append([]byte(`{"type":"ping","id":"frag","data":{"pad":"`), bytes.Repeat([]byte("x"), 64<<10-64)...)
		msg = append(msg, `"}}`...)
		for ctx.Err() == nil {
			c, status, err := rawDial(ctx, r.opt.wsBases[0], u.token())
			if err != nil {
				counts.status(status)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			counts.status("101")
			if phase == "ws_fragments" {
				c.flood(ctx, counts, func(w *bytes.Buffer) bool { return c.fragments(w, msg) })
			} else {
				c.flood(ctx, counts, func(w *bytes.Buffer) bool {
					for range 256 {
						c.frame(w, 0x9, true, nil)
					}
					return true
				})
			}
		}
	case "conn_flood":
		// As many connections on one token as the server takes, each with a partial frame
		// pending, held until the phase ends.
		var held []*rawConn
		defer func() {
			for _, c := range held {
				c.nc.Close()
			}
		}()
		for ctx.Err() == nil {
			c, status, err := rawDial(ctx, r.opt.wsBases[0], u.token())
			counts.status(status)
			if err != nil {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			var w bytes.Buffer
			c.frame(&w, 0x1, true, bytes.Repeat([]byte("x"), 1000))
			_, _ = c.nc.Write(w.Bytes()[:w.Len()/2]) // half a frame, never finished
			held = append(held, c)
			if len(held) >= r.opt.connFlood {
				<-ctx.Done()
			}
		}
	}
}

// upload posts one file as multipart field "file".
func (c *apiClient) upload(ctx context.Context, u *user, name, mime string, data []byte) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name="file"; filename=%q`, name)}
	h["Content-Type"] = []string{mime}
	pw, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	_, _ = pw.Write(data)
	_ = mw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/v1/files", &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+u.token())
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("POST /files: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return &apiError{Method: http.MethodPost, Path: "/files", Status: resp.StatusCode}
	}
	return nil
}

// bigPNG is a 16-bit RGBA PNG of about pixels pixels (square), streamed row by row so that the
// generator never holds the image: mostly one colour, so the file is small and the server's
// decoding cost is what counts.
func bigPNG(pixels int) []byte {
	side := 1
	for (side+1)*(side+1) <= pixels {
		side++
	}
	var out bytes.Buffer
	out.Write([]byte("\x89PNG\r\n\x1a\n"))
	chunk := func(typ string, data []byte) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(data)))
		out.Write(l[:])
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		out.WriteString(typ)
		out.Write(data)
		binary.BigEndian.PutUint32(l[:], crc.Sum32())
		out.Write(l[:])
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(side))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(side))
	ihdr[8], ihdr[9] = 16, 6 // 16 bits, RGBA
	chunk("IHDR", ihdr)
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestSpeed)
	row := make([]byte, 1+side*8)
	for i := 1; i < len(row); i += 8 {
		copy(row[i:], []byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xff, 0xff})
	}
	for y := 0; y < side; y++ {
		row[1+(y%side)*8] ^= 0x01 // a little variation per row
		_, _ = zw.Write(row)
	}
	_ = zw.Close()
	chunk("IDAT", z.Bytes())
	chunk("IEND", nil)
	return out.Bytes()
}

// rawConn is a hand-written client WebSocket, for frames the protocol allows but well-behaved
// clients never send (1-byte fragments, ping floods, half frames).
type rawConn struct {
	nc net.Conn
	br *bufio.Reader
}

// rawDial opens a WebSocket to base (http://host:port) with the token and returns the HTTP
// status of the answer as text ("101" on success).
func rawDial(ctx context.Context, base, token string) (*rawConn, string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, "error", err
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, "error", err
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := "GET /api/v1/ws HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\n" +
		"Authorization: Bearer " + token + "\r\n\r\n"
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, req); err != nil {
		nc.Close()
		return nil, "error", err
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, "error", err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		return nil, strconv.Itoa(resp.StatusCode), fmt.Errorf("upgrade: %s", resp.Status)
	}
	_ = nc.SetDeadline(time.Time{})
	return &rawConn{nc: nc, br: br}, "101", nil
}

// frame appends one masked client frame.
func (c *rawConn) frame(w *bytes.Buffer, op byte, fin bool, payload []byte) {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	w.WriteByte(b0)
	switch n := len(payload); {
	case n < 126:
		w.WriteByte(0x80 | byte(n))
	case n < 1<<16:
		w.WriteByte(0x80 | 126)
		_ = binary.Write(w, binary.BigEndian, uint16(n))
	default:
		w.WriteByte(0x80 | 127)
		_ = binary.Write(w, binary.BigEndian, uint64(n))
	}
	w.Write([]byte{1, 2, 3, 4})
	for i, p := range payload {
		w.WriteByte(p ^ byte(i%4+1))
	}
}

// fragments appends msg as a text message in 1-byte fragments.
func (c *rawConn) fragments(w *bytes.Buffer, msg []byte) bool {
	for i := range msg {
		op := byte(0x0)
		if i == 0 {
			op = 0x1
		}
		c.frame(w, op, i == len(msg)-1, msg[i:i+1])
	}
	return true
}

// flood writes what fill produces, again and again, until the server closes the connection
// (its close code is counted) or ctx ends. A reader discards the server's frames meanwhile.
func (c *rawConn) flood(ctx context.Context, counts *abuseCounts, fill func(w *bytes.Buffer) bool) {
	closed := make(chan string, 1)
	go func() { closed <- c.readClose() }()
	stop := context.AfterFunc(ctx, func() { c.nc.Close() })
	defer stop()
	defer c.nc.Close()
	var w bytes.Buffer
	for ctx.Err() == nil {
		w.Reset()
		fill(&w)
		for p := w.Bytes(); len(p) > 0 && ctx.Err() == nil; {
			k := min(len(p), 16<<10)
			_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.nc.Write(p[:k]); err != nil {
				code := <-closed
				if ctx.Err() == nil {
					counts.closed(code)
				}
				return
			}
			counts.attempt()
			p = p[k:]
		}
	}
}

// readClose reads frames until a close frame (its code) or an error ("eof").
func (c *rawConn) readClose() string {
	var hdr [2]byte
	for {
		if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
			return "eof"
		}
		n := uint64(hdr[1] & 0x7f)
		switch n {
		case 126:
			var l [2]byte
			if _, err := io.ReadFull(c.br, l[:]); err != nil {
				return "eof"
			}
			n = uint64(binary.BigEndian.Uint16(l[:]))
		case 127:
			var l [8]byte
			if _, err := io.ReadFull(c.br, l[:]); err != nil {
				return "eof"
			}
			n = binary.BigEndian.Uint64(l[:])
		}
		p := make([]byte, min(n, 1<<20))
		if _, err := io.ReadFull(c.br, p); err != nil {
			return "eof"
		}
		if hdr[0]&0x0f == 0x8 {
			if len(p) >= 2 {
				return strconv.Itoa(int(binary.BigEndian.Uint16(p)))
			}
			return "close"
		}
	}
}
