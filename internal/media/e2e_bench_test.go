package media_test

import (
	"encoding/binary"
	"io"
	"mime/multipart"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/media"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
)

// videoStream yields size bytes that start like an MP4 (so the upload is a video, streamed
// without decoding) followed by pseudo-random data, different for every seed, without holding
// them in memory.
type videoStream struct {
	left int64
	x    uint64
	head []byte
}

func newVideoStream(size int64, seed uint64) *videoStream {
	return &videoStream{left: size, x: seed*0x9E3779B97F4A7C15 + 1, head: []byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")}
}

func (v *videoStream) Read(p []byte) (int, error) {
	if v.left <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), v.left)]
	n := copy(p, v.head)
	v.head = v.head[n:]
	for ; n+8 <= len(p); n += 8 {
		v.x ^= v.x << 13
		v.x ^= v.x >> 7
		v.x ^= v.x << 17
		binary.LittleEndian.PutUint64(p[n:], v.x)
	}
	for ; n < len(p); n++ {
		p[n] = byte(n)
	}
	v.left -= int64(n)
	return n, nil
}

// peakHeap samples the Go heap every millisecond until stop is called and returns the largest
// HeapInuse seen.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// BenchmarkUpload50MiB streams a 50 MiB video through POST /api/v1/files of a whole node
// (SQLite; media on local disk, or on the S3 test server) and reports the throughput and the peak
// Go heap during the uploads (client and server share the process; the client holds no copy of
// the file).
func BenchmarkUpload50MiB(b *testing.B) {
	b.Run("disk", func(b *testing.B) { benchUpload(b, nil) })
	b.Run("s3", func(b *testing.B) { benchUpload(b, media.S3TestSettings(b)) })
}

func benchUpload(b *testing.B, mutate func(*config.Config)) {
	const size = 50 << 20
	n := servertest.New(b, store.SQLite, func(c *config.Config) {
		c.RateLimits = false
		if mutate != nil {
			mutate(c)
		}
	})
	u := n.Register(b, "bench")
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := peakHeap()
	seed := uint64(0)
	b.SetBytes(size)
	for b.Loop() {
		seed++
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		go func() {
			part, err := mw.CreateFormFile("file", "clip.mp4")
			if err == nil {
				_, err = io.Copy(part, newVideoStream(size, seed))
			}
			if err == nil {
				err = mw.Close()
			}
			pw.CloseWithError(err)
		}()
		req, _ := http.NewRequest(http.MethodPost, n.URL+"/api/v1/files", pr)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+u.AccessToken)
		resp, err := n.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b.Fatalf("upload: %d %s", resp.StatusCode, body)
		}
	}
	peak := stop()
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(peak-min(peak, base.HeapInuse))/(1<<20), "heap-growth-MiB")
}
