package httpapi

import (
	"bytes"
	"compress/gzip"
	"regexp"
	"strings"
	"sync"
)

// Helpers for serving embedded static files (the /docs page here, the web client in
// internal/webui): gzip made once, conditional requests, content negotiation.

// GzipOnce returns a function that gzips body on its first call and then returns the same
// bytes, or nil when gzip does not save a tenth of the size.
func GzipOnce(body []byte) func() []byte {
	return sync.OnceValue(func() []byte {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(body)
		_ = zw.Close()
		if buf.Len() > len(body)*9/10 {
			return nil
		}
		return buf.Bytes()
	})
}

// ETagMatches reports whether an If-None-Match header names etag (weak or strong) or "*".
func ETagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(t), "W/"))
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// AcceptsGzip reads Accept-Encoding: gzip (or *) listed without q=0.
func AcceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := strings.ReplaceAll(strings.ToLower(params), " ", "")
		return !qZero.MatchString(q)
	}
	return false
}

var qZero = regexp.MustCompile(`(^|;)q=0(\.0{0,3})?$`)
