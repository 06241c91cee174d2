package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestCFTokenIsAValidHS256JWT(t *testing.T) {
	t.Parallel()
	exp := time.Unix(2000000000, 0)
	tok := cfToken("s3cret", "u7", exp)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q: want three parts", tok)
	}
	m := hmac.New(sha256.New, []byte("s3cret"))
	m.Write([]byte(parts[0] + "." + parts[1]))
	if want := base64.RawURLEncoding.EncodeToString(m.Sum(nil)); parts[2] != want {
		t.Errorf("signature %q, want %q", parts[2], want)
	}
	var head, claims map[string]any
	for i, dst := range []*map[string]any{&head, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, dst) != nil {
			t.Fatalf("part %d %q does not decode: %v", i, parts[i], err)
		}
	}
	if head["alg"] != "HS256" || claims["sub"] != "u7" || claims["exp"] != float64(exp.Unix()) {
		t.Errorf("header %v, claims %v", head, claims)
	}
}

func TestScanHelpers(t *testing.T) {
	t.Parallel()
	line := []byte(`{"push":{"channel":"chat:x","pub":{"data":{"text":"nb1 5 6 xx"},"offset":42}}}`)
	if s, ok := scanString(line, cfTextKey); !ok || s != "nb1 5 6 xx" {
		t.Errorf("scanString = %q, %v", s, ok)
	}
	if v, ok := scanUint(line, cfOffsetKey); !ok || v != 42 {
		t.Errorf("scanUint(offset) = %d, %v", v, ok)
	}
	for _, bad := range []string{`{"id":}`, `{"x":1}`, `{"id":"7"}`} {
		if v, ok := scanUint([]byte(bad), cfIDKey); ok {
			t.Errorf("scanUint(%s) = %d, want not found", bad, v)
		}
	}
	if _, ok := scanString([]byte(`{"text":"unterminated`), cfTextKey); ok {
		t.Error("scanString of an unterminated string: want not found")
	}
}

// TestCFHandleCountsPublicationsAndReplies feeds a connection the protocol messages of one
// publish: the reply, the publication, a repeat of it and a ping.
func TestCFHandleCountsPublicationsAndReplies(t *testing.T) {
	t.Parallel()
	st := &cfState{members: 3, errCodes: map[string]int{}}
	now := time.Now()
	step := &trafficStep{windowStart: now.Add(-time.Minute).UnixNano(), windowEnd: now.Add(time.Minute).UnixNano()}
	st.cur.Store(step)
	c := &cfConn{}
	st.sentAt.Store(uint32(1001), now)
	c.inflight.Add(1)
	st.inflight.Add(1)
	pub := `{"push":{"channel":"chat:x","pub":{"data":{"text":"` + makePayload(now, 1, 60) + `"},"offset":1}}}`
	c.handle(st, now.Add(time.Millisecond), []byte(`{"id":1001,"publish":{}}`))
	c.handle(st, now.Add(2*time.Millisecond), []byte(pub))
	c.handle(st, now.Add(3*time.Millisecond), []byte(pub)) // the same offset again
	c.handle(st, now, []byte(`{"push":{"channel":"chat:x","pub":{"data":{"text":"not ours"},"offset":2}}}`))
	c.handle(st, now, []byte(`{"id":999,"publish":{}}`)) // not a publish of ours: ignored
	if st.acked.Load() != 1 || st.expected.Load() != 3 || st.inflight.Load() != 0 || c.inflight.Load() != 0 {
		t.Errorf("acked %d expected %d inflight %d/%d; want 1, 3, 0, 0", st.acked.Load(), st.expected.Load(), st.inflight.Load(), c.inflight.Load())
	}
	if st.unique.Load() != 1 || st.dups.Load() != 1 || st.foreign.Load() != 1 {
		t.Errorf("unique %d dups %d foreign %d; want 1, 1, 1", st.unique.Load(), st.dups.Load(), st.foreign.Load())
	}
	if step.acks.Load() != 1 || step.deliveries.Load() != 1 {
		t.Errorf("step acks %d deliveries %d; want 1, 1", step.acks.Load(), step.deliveries.Load())
	}
	st.sentAt.Store(uint32(1002), now)
	st.inflight.Add(1)
	c.handle(st, now, []byte(`{"id":1002,"error":{"code":103,"message":"permission denied"}}`))
	if st.errCodes["centrifugo_103"] != 1 || step.errs.Load() != 1 || st.acked.Load() != 1 {
		t.Errorf("after an error reply: codes %v, step errors %d, acked %d", st.errCodes, step.errs.Load(), st.acked.Load())
	}
}
