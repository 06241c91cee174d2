package server

import (
	"log/slog"
	"testing"

	"github.com/nerutalk/nerutalk/internal/httpapi"
)

// Slow clients cannot hold a connection open forever: headers, bodies and idle keep-alives are
// bounded. Writes are not (WebSockets and downloads take as long as they take).
func TestHTTPServerTimeouts(t *testing.T) {
	t.Parallel()
	s := &Server{log: slog.New(slog.DiscardHandler), API: httpapi.New(httpapi.Options{})}
	hs := s.httpServer()
	for name, d := range map[string]int64{
		"ReadHeaderTimeout": int64(hs.ReadHeaderTimeout),
		"ReadTimeout":       int64(hs.ReadTimeout),
		"IdleTimeout":       int64(hs.IdleTimeout),
		"MaxHeaderBytes":    int64(hs.MaxHeaderBytes),
	} {
		if d <= 0 {
			t.Errorf("%s is not set", name)
		}
	}
	if hs.ReadHeaderTimeout > hs.ReadTimeout {
		t.Errorf("ReadHeaderTimeout %v exceeds ReadTimeout %v", hs.ReadHeaderTimeout, hs.ReadTimeout)
	}
	if hs.WriteTimeout != 0 {
		t.Errorf("WriteTimeout %v would cut WebSockets and long downloads", hs.WriteTimeout)
	}
	if hs.ErrorLog == nil || hs.BaseContext == nil {
		t.Error("the http.Server logs through log/slog and carries the logger in its base context")
	}
}
