package rfc6455

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
	"time"
)

// fragmented returns one text message of n bytes sent as fragments of size bytes each.
func fragmented(n, size int) []byte {
	payload := bytes.Repeat([]byte("a"), n)
	var stream []byte
	for off := 0; off < n; off += size {
		end := min(off+size, n)
		op := OpContinuation
		if off == 0 {
			op = OpText
		}
		stream = append(stream, clientFrame(end == n, op, payload[off:end])...)
	}
	return stream
}

// BenchmarkFragmentedMessage reads a 64 KiB text message sent in 1-byte fragments, the worst
// framing a client can choose; the reported throughput is the message's bytes per second.
func BenchmarkFragmentedMessage(b *testing.B) {
	const n = 64 << 10
	for _, size := range []int{1, 1024, n} {
		stream := fragmented(n, size)
		b.Run(fragName(size), func(b *testing.B) {
			b.SetBytes(n)
			b.ReportAllocs()
			rd := bytes.NewReader(stream)
			rec := &recorder{in: rd}
			for b.Loop() {
				rd.Reset(stream)
				c := &Conn{nc: rec, br: bufio.NewReaderSize(rec, 4096)}
				c.SetReadLimit(n)
				if _, msg, err := c.ReadMessage(); err != nil || len(msg) != n {
					b.Fatalf("%d bytes, %v", len(msg), err)
				}
			}
		})
	}
}

func fragName(size int) string {
	switch size {
	case 1:
		return "fragments=1B"
	case 1024:
		return "fragments=1KiB"
	}
	return "unfragmented"
}

// TestFrameLimit: every frame counts against SetFrameLimit, control frames and empty
// continuations too; past the burst (the clock does not move) ReadMessage fails with ErrFrameRate
// and keeps failing.
func TestFrameLimit(t *testing.T) {
	t.Parallel()
	const burst = 50
	pings := bytes.Repeat(clientFrame(true, OpPing, []byte("p")), burst+10)
	continuations := clientFrame(false, OpText, []byte("a"))
	for range burst + 10 {
		continuations = append(continuations, clientFrame(false, OpContinuation, nil)...)
	}
	pongs := bytes.Repeat(clientFrame(true, OpPong, nil), burst+10)
	for name, stream := range map[string][]byte{"pings": pings, "empty continuations": continuations, "pongs": pongs} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, rec := serverOver(stream, 1<<20)
			frozen := time.Unix(1e9, 0)
			c.now = func() time.Time { return frozen }
			c.SetFrameLimit(10, burst)
			if _, _, err := c.ReadMessage(); !errors.Is(err, ErrFrameRate) {
				t.Fatalf("got %v, want ErrFrameRate", err)
			}
			if _, _, err := c.ReadMessage(); !errors.Is(err, ErrFrameRate) {
				t.Fatalf("second read: %v, want ErrFrameRate again", err)
			}
			if name == "pings" {
				if n := len(serverFrames(t, rec.out.Bytes())); n != burst {
					t.Errorf("answered %d pings, want the burst of %d", n, burst)
				}
			}
		})
	}
	t.Run("refills", func(t *testing.T) {
		t.Parallel()
		c, _ := serverOver(bytes.Repeat(clientFrame(true, OpText, []byte("x")), 30), 1<<20)
		now := time.Unix(1e9, 0)
		c.now = func() time.Time { now = now.Add(100 * time.Millisecond); return now }
		c.SetFrameLimit(10, 1) // one frame per 100 ms, and the clock moves that much per frame
		for i := range 30 {
			if _, _, err := c.ReadMessage(); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
	})
}

// TestPingLimit: pings have a budget of their own within the frame budget; past its burst
// ReadMessage fails with ErrFrameRate without answering, pongs and data do not count, and the
// budget refills with time.
func TestPingLimit(t *testing.T) {
	t.Parallel()
	const burst = 5
	tests := []struct {
		name     string
		stream   []byte
		step     time.Duration // how far the clock moves per read of the clock
		wantErr  bool
		wantPong int
	}{
		{"a ping flood stops at the burst", bytes.Repeat(clientFrame(true, OpPing, []byte("p")), 50), 0, true, burst},
		{"pongs do not count", append(bytes.Repeat(clientFrame(true, OpPong, nil), 50), clientFrame(true, OpText, []byte("x"))...), 0, false, 0},
		{"paced pings are answered", append(bytes.Repeat(clientFrame(true, OpPing, nil), 20), clientFrame(true, OpText, []byte("x"))...), time.Second, false, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, rec := serverOver(tt.stream, 1<<20)
			now := time.Unix(1e9, 0)
			c.now = func() time.Time { now = now.Add(tt.step); return now }
			c.SetFrameLimit(1000, 1000)
			c.SetPingLimit(1, burst)
			_, _, err := c.ReadMessage()
			if tt.wantErr != errors.Is(err, ErrFrameRate) || !tt.wantErr && err != nil {
				t.Fatalf("ReadMessage: %v, want ErrFrameRate: %v", err, tt.wantErr)
			}
			if n := len(serverFrames(t, rec.out.Bytes())); n != tt.wantPong {
				t.Errorf("answered %d pings, want %d", n, tt.wantPong)
			}
		})
	}
}

// FuzzReassembly splits a message into fragments at the fuzzer's cut points, with pings between
// some of them: the reader must return exactly the message, and answer every ping.
func FuzzReassembly(f *testing.F) {
	f.Add([]byte("hello world"), []byte{1, 3, 0, 5})
	f.Add(bytes.Repeat([]byte("x"), 600), []byte{0, 0, 200, 255, 7})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, payload, cuts []byte) {
		const limit = 1 << 12
		if len(payload) > limit {
			payload = payload[:limit]
		}
		var stream []byte
		off, pings := 0, 0
		first := true
		for i := 0; ; i++ {
			size := len(payload) - off
			if i < len(cuts) {
				size = min(int(cuts[i]), size)
			}
			end := off + size
			op := OpContinuation
			if first {
				op, first = OpBinary, false
			}
			stream = append(stream, clientFrame(end == len(payload), op, payload[off:end])...)
			off = end
			if off == len(payload) {
				break
			}
			if i < len(cuts) && cuts[i]%3 == 0 {
				stream = append(stream, clientFrame(true, OpPing, []byte{byte(i)})...)
				pings++
			}
		}
		c, rec := serverOver(stream, limit)
		op, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("ReadMessage: %v", err)
		}
		if op != OpBinary || !bytes.Equal(msg, payload) {
			t.Fatalf("got op %d, %d bytes; want the %d-byte binary message", op, len(msg), len(payload))
		}
		if n := len(serverFrames(t, rec.out.Bytes())); n != pings {
			t.Fatalf("%d pongs for %d pings", n, pings)
		}
	})
}
