package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/httpapi"
)

// download describes a blob to send to a client.
type download struct {
	key          string
	size         int64
	modTime      time.Time
	contentType  string
	etag         string // quoted
	cacheControl string
	disposition  string // empty = none
}

// seekOpener is implemented by stores that can hand out a seekable file (DiskStore): it lets
// net/http use sendfile.
type seekOpener interface {
	Open(ctx context.Context, key string) (ReadSeekCloser, error)
}

// serveBlob streams a blob with http.ServeContent, which answers HEAD, Range (206, and 416
// for a range beyond the end), If-None-Match (304) and If-Range. The blob is read lazily: a 304 or
// a HEAD costs no read of the object.
func serveBlob(w http.ResponseWriter, r *http.Request, st BlobStore, d download) {
	var content ReadSeekCloser
	if so, ok := st.(seekOpener); ok {
		f, err := so.Open(r.Context(), d.key)
		if errors.Is(err, ErrBlobNotFound) { // deleted since the row was read
			httpapi.WriteError(w, r, apperr.NotFound("file"))
			return
		}
		if err != nil {
			httpapi.WriteError(w, r, fmt.Errorf("media: open %s: %w", d.key, err))
			return
		}
		content = f
	} else {
		content = &blobReader{ctx: r.Context(), st: st, key: d.key, size: d.size, end: singleRangeEnd(r, d.size)}
	}
	defer content.Close()
	h := w.Header()
	h.Set("Content-Type", d.contentType)
	h.Set("ETag", d.etag)
	h.Set("Cache-Control", d.cacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	// Nothing served here is a page: even if a browser opened it, it could run nothing.
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if d.disposition != "" {
		h.Set("Content-Disposition", d.disposition)
	}
	http.ServeContent(&problemWriter{ResponseWriter: w, r: r}, r, "", d.modTime, content)
}

// blobReader reads a blob through ranged GETs and seeks without I/O: ServeContent seeks to the
// start of the requested range, then reads it.
type blobReader struct {
	ctx  context.Context
	st   BlobStore
	key  string
	size int64
	off  int64
	end  int64 // when > 0, the first GET asks only for [off, end) (the single range requested)
	rc   io.ReadCloser
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.off >= b.size {
		return 0, io.EOF
	}
	if b.rc == nil {
		n := int64(-1)
		if b.end > b.off {
			n = b.end - b.off
		}
		b.end = 0 // the hint serves once; reads beyond it fetch the rest
		rc, err := b.st.Get(b.ctx, b.key, b.off, n)
		if err != nil {
			return 0, err
		}
		b.rc = rc
	}
	n, err := b.rc.Read(p)
	b.off += int64(n)
	if errors.Is(err, io.EOF) && b.off < b.size {
		b.rc.Close()
		b.rc = nil
		err = nil
	}
	return n, err
}

func (b *blobReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += b.off
	case io.SeekEnd:
		offset += b.size
	}
	if offset < 0 {
		return 0, errors.New("media: seek before the start")
	}
	if offset != b.off && b.rc != nil {
		b.rc.Close()
		b.rc = nil
	}
	b.off = offset
	return offset, nil
}

func (b *blobReader) Close() error {
	if b.rc != nil {
		return b.rc.Close()
	}
	return nil
}

// singleRangeEnd returns the end (exclusive) of a request's only byte range "bytes=a-b", or 0.
// It is only a hint to fetch no more than needed; ServeContent does the real parsing.
func singleRangeEnd(r *http.Request, size int64) int64 {
	v, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes=")
	if !ok || strings.Contains(v, ",") {
		return 0
	}
	first, last, ok := strings.Cut(v, "-")
	if !ok || first == "" {
		return 0
	}
	if _, err := strconv.ParseInt(first, 10, 64); err != nil {
		return 0
	}
	end, err := strconv.ParseInt(last, 10, 64)
	if err != nil || end < 0 || end >= size {
		return 0
	}
	return end + 1
}

// problemWriter turns the plain-text errors of http.ServeContent (416, 412) into problem
// documents.
type problemWriter struct {
	http.ResponseWriter
	r       *http.Request
	swallow bool
}

func (p *problemWriter) WriteHeader(status int) {
	if status >= 400 && !p.swallow {
		p.swallow = true
		h := p.ResponseWriter.Header()
		for _, k := range []string{"Content-Type", "Content-Length", "ETag", "Cache-Control", "Content-Disposition", "Last-Modified"} {
			h.Del(k)
		}
		prob := &httpapi.Problem{Status: status, Title: http.StatusText(status), Code: "bad_request",
			Detail: http.StatusText(status), RequestID: httpapi.RequestID(p.r.Context())}
		switch status {
		case http.StatusRequestedRangeNotSatisfiable:
			prob.Code, prob.Detail = "range_not_satisfiable", "the requested range is beyond the end of the file"
		case http.StatusPreconditionFailed:
			prob.Code, prob.Detail = "precondition_failed", "a precondition of the request failed"
		}
		httpapi.WriteProblem(p.ResponseWriter, p.r, prob)
		return
	}
	p.ResponseWriter.WriteHeader(status)
}

func (p *problemWriter) Write(b []byte) (int, error) {
	if p.swallow {
		return len(b), nil
	}
	return p.ResponseWriter.Write(b)
}

// ReadFrom keeps sendfile working through the wrapper.
func (p *problemWriter) ReadFrom(r io.Reader) (int64, error) {
	if p.swallow {
		return io.Copy(io.Discard, r)
	}
	if rf, ok := p.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(p.ResponseWriter, r)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (p *problemWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }
