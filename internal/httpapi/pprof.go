package httpapi

import (
	"net/http"
	"net/http/pprof"

	"github.com/go-chi/chi/v5"

	"github.com/nerutalk/nerutalk/internal/apperr"
)

// mountPprof serves the runtime profiles at /debug/pprof/ to admins only (an admin's bearer
// token), when NERUTALK_PPROF=on.
func mountPprof(r chi.Router, authenticate Authenticator) {
	r.Route("/debug/pprof", func(r chi.Router) {
		r.Use(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				token := BearerToken(req.Header.Get("Authorization"))
				if token == "" || authenticate == nil {
					w.Header().Set("WWW-Authenticate", BearerChallenge(false))
					WriteError(w, req, errNoToken)
					return
				}
				p, err := authenticate(req.Context(), token)
				if err != nil {
					if apperr.KindOf(err) == apperr.KindUnauthenticated {
						w.Header().Set("WWW-Authenticate", BearerChallenge(true))
					}
					WriteError(w, req, err)
					return
				}
				if !p.Admin {
					WriteError(w, req, apperr.Forbidden("admins only"))
					return
				}
				next.ServeHTTP(w, req)
			})
		})
		r.HandleFunc("/", pprof.Index)
		r.HandleFunc("/cmdline", pprof.Cmdline)
		r.HandleFunc("/profile", pprof.Profile)
		r.HandleFunc("/symbol", pprof.Symbol)
		r.HandleFunc("/trace", pprof.Trace)
		r.HandleFunc("/{name}", pprof.Index)
	})
}
