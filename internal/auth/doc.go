// Package auth is NeruTalk's accounts capability: registration and sign-in, sessions with
// rotating refresh tokens, profiles, avatars (through an AvatarStore that the media package
// provides), admin roles, and the Authenticator that every authenticated endpoint and the
// WebSocket rely on. Service.Mount registers its operations (the route table is in http.go).
//
// # Credentials
//
// Passwords are hashed with argon2id (parameters from the configuration, OWASP's minimum by
// default) in the PHC string format, so raising the parameters later is safe: old hashes keep
// verifying and are rehashed at their owner's next successful login. An unknown login is checked
// against a dummy hash, so it costs and answers the same as a wrong password.
//
// Access tokens are HS256 JWTs (sub, sid, iat, exp, jti, iss, aud), valid for AccessTokenTTL;
// nothing but HS256 is accepted. Refresh tokens are 256 random bits, stored only as SHA-256
// hashes, single use: every refresh rotates the token with a conditional UPDATE on the current
// hash, so of several concurrent refreshes with one token exactly one wins. The last 100
// rotated-out hashes of each session are kept (refresh_history; older ones are deleted in the
// rotating transaction, and all of them when their session is pruned); presenting one again — or
// losing the race above — is treated as token theft and revokes the whole session.
//
// # Revocation bound
//
// Authenticate checks the token, then that its session is alive, with the session's state (and
// its user's role) cached in process for SessionCacheTTL (5 s by default). Revocations made on
// this node (logout, DELETE /auth/sessions/{id}, password change, refresh-token reuse) take effect
// at once here; on other nodes, and for role changes made with `nerutalk admin`, within
// SessionCacheTTL. An expired session's access tokens stop at once on every node.
//
// # Concurrency
//
// A Service is safe for concurrent use and starts no goroutines. Password hashing, the only
// expensive step, runs with bounded concurrency (HashConcurrency, GOMAXPROCS by default) because
// each hash allocates Argon2.MemoryKiB: a burst of sign-ins queues (respecting the request's
// context) instead of exhausting memory. The session cache is one mutex-guarded map with a fixed
// maximum size. Rate limits (internal/ratelimit) count sign-in attempts per client address
// (IPv6 per /64) and per account; the database serialises everything else.
package auth
