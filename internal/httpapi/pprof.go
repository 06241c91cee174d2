package httpapi

import (
	"net/http/pprof"

	"github.com/go-chi/chi/v5"
)

// mountPprof serves the runtime profiles at /debug/pprof/ to admins only (an admin's bearer
// token), when NERUTALK_PPROF=on.
func mountPprof(r chi.Router, authenticate Authenticator) {
	r.Route("/debug/pprof", func(r chi.Router) {
		r.Use(requireAuthHTTP(authenticate, true))
		r.HandleFunc("/", pprof.Index)
		r.HandleFunc("/cmdline", pprof.Cmdline)
		r.HandleFunc("/profile", pprof.Profile)
		r.HandleFunc("/symbol", pprof.Symbol)
		r.HandleFunc("/trace", pprof.Trace)
		r.HandleFunc("/{name}", pprof.Index)
	})
}
