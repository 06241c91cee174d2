package media_test

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
)

// TestImageMemoryProbe measures, rather than asserts, what large 16-bit PNGs cost: with
// NERUTALK_IMAGE_MEMPROBE=N it uploads N 6300 x 6300 16-bit truecolor PNGs at once to a node (in
// this process), times a 4 x 4 PNG uploaded meanwhile, and prints the peak RSS above the start and
// the small upload's latency. Skipped without the variable (issue 16, item 3):
//
//	NERUTALK_IMAGE_MEMPROBE=3 go test -count=1 -run TestImageMemoryProbe -v ./internal/media/
func TestImageMemoryProbe(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("NERUTALK_IMAGE_MEMPROBE"))
	if n <= 0 {
		t.Skip("set NERUTALK_IMAGE_MEMPROBE=N to measure N large 16-bit PNG uploads at once")
	}
	node := servertest.New(t, store.SQLite, nil)
	users := make([]servertest.User, n+1)
	for i := range users {
		users[i] = node.Register(t, "probe"+strconv.Itoa(i))
	}
	const side = 6300
	big := make([][]byte, n)
	for i := range big {
		big[i] = png16Gradient(t, side, side, byte(i))
	}
	var small bytes.Buffer
	if err := pngEncode(&small, smallRGBA(4, 4)); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	debug.FreeOSMemory()
	base := rssBytes(t)
	var peak atomic.Int64
	peak.Store(base)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if r := rssBytes(t); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range big {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, raw, _ := upload(t, node, users[i].AccessToken, "big.png", "image/png", big[i]); resp.StatusCode != http.StatusCreated {
				t.Errorf("big upload %d: %d %s", i, resp.StatusCode, raw)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // the large ones are decoding
	t0 := time.Now()
	if resp, raw, _ := upload(t, node, users[n].AccessToken, "small.png", "image/png", small.Bytes()); resp.StatusCode != http.StatusCreated {
		t.Errorf("small upload: %d %s", resp.StatusCode, raw)
	}
	smallLatency := time.Since(t0)
	wg.Wait()
	total := time.Since(start)
	close(stop)
	<-sampled
	t.Logf("memprobe: %d x %dx%d 16-bit PNG (%d bytes each) at once: peak RSS +%d MB (from %d MB), 4x4 upload %v, all done in %v (GOMAXPROCS %d)",
		n, side, side, len(big[0]), (peak.Load()-base)>>20, base>>20, smallLatency.Round(time.Millisecond), total.Round(time.Millisecond), runtime.GOMAXPROCS(0))
}

func smallRGBA(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 37)
	}
	return img
}

// rssBytes reads this process's resident set size.
func rssBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// png16Gradient writes a w x h 16-bit truecolor PNG of smooth gradients (it compresses to a few
// hundred KB, like the file) a row at a time, without the image in memory.
func png16Gradient(t testing.TB, w, h int, seed byte) []byte {
	t.Helper()
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(data)))
		out.Write(n[:])
		out.WriteString(typ)
		out.Write(data)
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		binary.BigEndian.PutUint32(n[:], crc.Sum32())
		out.Write(n[:])
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 16, 2
	chunk("IHDR", ihdr)
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	bw := bufio.NewWriter(zw)
	raw, prev, row := make([]byte, 6*w), make([]byte, 6*w), make([]byte, 1+6*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, b := uint16(x*65535/w), uint16(y*65535/h), uint16(seed)<<8
			binary.BigEndian.PutUint16(raw[6*x:], r)
			binary.BigEndian.PutUint16(raw[6*x+2:], g)
			binary.BigEndian.PutUint16(raw[6*x+4:], b)
		}
		row[0] = 2 // "up": most bytes become 0
		for i := range raw {
			row[1+i] = raw[i] - prev[i]
		}
		raw, prev = prev, raw
		if _, err := bw.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	chunk("IDAT", z.Bytes())
	chunk("IEND", nil)
	return out.Bytes()
}
