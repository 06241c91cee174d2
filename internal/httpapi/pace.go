package httpapi

import (
	"io"
	"net/http"
	"time"
)

// Large request bodies (uploads of files and avatars) are read at a pace that leaves the node's
// network to everyone else: paceBodies wraps every body that may be longer than uploadPaceBytes
// (a declared length above it, or none), whatever route reads it.
//
// Reading an upload is bulk CPU work on the request's goroutine: copying from the socket,
// finding the multipart boundary, hashing. From a fast client the data is always there, so the
// goroutine never blocks, and a few concurrent uploads keep the node's cores busy without a
// pause. Go's scheduler only looks for sockets that became readable when a core runs out of
// runnable goroutines (or from its monitor thread, every 10 ms), so on a busy core every message
// of every other user waited up to 10 ms per hop: on a one-core server, large uploads took a
// bystander's message p99 from 3 ms to 14–25 ms (docs/BENCHMARKS.md, "Abuse and bystanders").
// A pacedReader sleeps after every uploadPaceBytes it reads, for as long as those bytes took
// (at least uploadPauseMin, at most uploadPauseMax): each upload then leaves its core idle about
// half the time it works, and the sleeping is what lets the scheduler poll the network. The
// sleep grows with contention (a chunk takes longer when several uploads share the core) and is
// bounded, so a client on a slow link, whose chunks take long because its bytes arrive slowly,
// loses at most uploadPauseMax per chunk. The cost to a fast client: about 8 ms per MiB (a 50 MiB
// upload over loopback: 230 MB/s without pacing, 80 MB/s with; docs/media.md). Bodies of at
// most uploadPaceBytes, every ordinary JSON request, are neither paced nor wrapped.
const (
	uploadPaceBytes = 128 << 10
	uploadPauseMin  = 500 * time.Microsecond
	uploadPauseMax  = 2 * time.Millisecond
)

// pacedReader reads r, pausing after every uploadPaceBytes (see above).
type pacedReader struct {
	r     io.Reader
	n     int       // bytes of the current chunk read so far
	start time.Time // when the current chunk started
	sleep func(time.Duration)
}

func newPacedReader(r io.Reader) *pacedReader {
	return &pacedReader{r: r, sleep: time.Sleep}
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.start.IsZero() {
		p.start = time.Now()
	}
	full := p.n >= uploadPaceBytes
	room := uploadPaceBytes - p.n
	if full {
		room = uploadPaceBytes
	}
	if len(b) > room {
		b = b[:room]
	}
	n, err := p.r.Read(b)
	if full && n > 0 {
		// More bytes after a whole chunk: pause for that chunk before going on (none after the
		// last bytes of the body).
		p.sleep(min(max(time.Since(p.start), uploadPauseMin), uploadPauseMax))
		p.n, p.start = 0, time.Now()
	}
	p.n += n
	return n, err
}

// paceBodies reads every request body that may exceed uploadPaceBytes through a pacedReader.
func paceBodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && (r.ContentLength < 0 || r.ContentLength > uploadPaceBytes) {
			r.Body = pacedBody{newPacedReader(r.Body), r.Body}
		}
		next.ServeHTTP(w, r)
	})
}

// pacedBody is a request body read at a pace, closed as the original.
type pacedBody struct {
	*pacedReader
	io.Closer
}
