package chat

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// With several writer lanes (PostgreSQL), concurrent sends into many chats still get gapless
// seqs per chat, each chat's message_new events go out in seq order, and a client_id sent into
// two chats of different lanes at once is stored once (the other send is refused as reused).
func TestWriterLanes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		s, pub := newTestService(t, db, func(o *Options) { o.WriterLanes = 4; o.MaxBatch = 8 })
		wantLanes := 4
		if db.Dialect != store.Postgres {
			wantLanes = 1 // one write connection
		}
		if got := len(s.writer.lanes); got != wantLanes {
			t.Fatalf("lanes = %d, want %d", got, wantLanes)
		}
		ctx := context.Background()
		u := addUsers(t, db, "ann", "bob", "cid")
		chats := make([]string, 8)
		for i := range chats {
			chats[i] = mustGroup(t, s, u[0], u[1], u[2]).ID
		}
		const perWorker = 15
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for n := range perWorker {
					chatID := chats[(w+n)%len(chats)]
					if _, _, err := s.Send(ctx, u[w%3], chatID, SendInput{ClientID: fmt.Sprintf("w%d-%d", w, n), Text: "t"}); err != nil {
						t.Errorf("send: %v", err)
					}
				}
			})
		}
		// The same client_id into two chats of different lanes (when there are several), at once.
		a, b := chats[0], chats[1]
		for _, c := range chats[1:] {
			if s.writer.laneOf(&op{send: &sendOp{msg: Message{ChatID: c}}}) != s.writer.laneOf(&op{send: &sendOp{msg: Message{ChatID: a}}}) {
				b = c
				break
			}
		}
		errs := make([]error, 2)
		for i, c := range []string{a, b} {
			wg.Go(func() {
				_, _, errs[i] = s.Send(ctx, u[0], c, SendInput{ClientID: "twice", Text: "t"})
			})
		}
		wg.Wait()
		reused := 0
		for _, err := range errs {
			if ae, ok := apperr.As(err); ok && ae.Code == "client_id_reused" {
				reused++
			} else if err != nil {
				t.Errorf("send twice: %v", err)
			}
		}
		if reused != 1 {
			t.Errorf("client_id sent into two chats: %d refusals (%v), want 1", reused, errs)
		}

		// Events are published after the answers: Close drains them before they are counted.
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		total := 8*perWorker + 1
		last := map[string]int64{}
		n := 0
		for _, e := range pub.ofType(EventMessageNew) {
			m := e.data.(Message)
			if m.Seq != last[m.ChatID]+1 {
				t.Errorf("chat %s: message_new seq %d after %d", m.ChatID, m.Seq, last[m.ChatID])
			}
			last[m.ChatID] = m.Seq
			n++
		}
		if n != total {
			t.Errorf("%d message_new events, want %d", n, total)
		}
		var stored int64
		for _, c := range chats {
			var count, maxSeq int64
			if err := db.R.QueryRowContext(ctx, `SELECT count(*), coalesce(max(seq), 0) FROM messages WHERE chat_id = $1`, c).Scan(&count, &maxSeq); err != nil {
				t.Fatal(err)
			}
			stored += count
			if last[c] != maxSeq {
				t.Errorf("chat %s: last event seq %d, last stored seq %d", c, last[c], maxSeq)
			}
		}
		if stored != int64(total) {
			t.Errorf("%d messages stored, want %d", stored, total)
		}
	})
}
