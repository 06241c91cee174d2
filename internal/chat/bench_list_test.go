package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// BenchmarkListChats measures Service.List (GET /chats) on SQLite for a user whose page holds 25
// groups of size members and min(25, size-1) direct chats (every listed member carries a profile;
// a group of more than MaxListedMembers lists that many), and the JSON encoding of the page.
//
//	go test -run '^$' -bench BenchmarkListChats -benchtime 300x -count 3 ./internal/chat/
func BenchmarkListChats(b *testing.B) {
	for _, size := range []int{10, 1000} {
		b.Run(fmt.Sprintf("groups-of-%d", size), func(b *testing.B) {
			db := storetest.Open(b, store.SQLite)
			s, _ := newTestService(b, db, func(o *Options) { o.MaxGroupMembers = 10_000 })
			names := make([]string, size)
			for i := range names {
				names[i] = fmt.Sprintf("u%d", i)
			}
			users := addUsers(b, db, names...)
			ctx := context.Background()
			me := users[0]
			for i := range 25 {
				if _, _, err := s.Create(ctx, me, CreateInput{Type: Direct, MemberIDs: []string{users[1+i%(size-1)]}}); err != nil {
					b.Fatal(err)
				}
				if _, _, err := s.Create(ctx, me, CreateInput{Type: Group, MemberIDs: users[1:], Title: "g"}); err != nil {
					b.Fatal(err)
				}
			}
			var bodyLen int
			for b.Loop() {
				got, _, err := s.List(ctx, me, 50, "")
				if err != nil || len(got) < 25 {
					b.Fatalf("List = %d chats, %v", len(got), err)
				}
				body, err := json.Marshal(got) // what GET /chats then encodes
				if err != nil {
					b.Fatal(err)
				}
				bodyLen = len(body)
			}
			b.ReportMetric(float64(bodyLen), "body-bytes")
		})
	}
}
