package realtime

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLocalBus(t *testing.T) {
	t.Parallel()
	b := NewLocalBus()
	var first, second []Message
	cancel1 := b.Subscribe(func(_ context.Context, m Message) { first = append(first, m) })
	b.Subscribe(func(_ context.Context, m Message) { second = append(second, m) })

	msgs := []Message{
		{Kind: KindUsers, Users: []string{"a", "b"}, Frame: []byte(`{"type":"x","data":{}}`)},
		{Kind: KindTopic, Topic: "chat:1", ExceptUser: "a", Frame: []byte(`{"type":"y","data":{}}`)},
		{Kind: KindLeaveTopic, Topic: "chat:1", Users: []string{"b"}},
	}
	for _, m := range msgs {
		if err := b.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	cancel1()
	late := Message{Kind: KindUsers, Users: []string{"c"}}
	if err := b.Publish(context.Background(), late); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(msgs, first); diff != "" {
		t.Errorf("first subscriber (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(append(msgs, late), second); diff != "" {
		t.Errorf("second subscriber (-want +got):\n%s", diff)
	}
}

// recordingBus wraps a LocalBus and records what the hub publishes, as a Redis bus would see it.
type recordingBus struct {
	*LocalBus
	got []Message
}

func (r *recordingBus) Publish(ctx context.Context, m Message) error {
	r.got = append(r.got, m)
	return r.LocalBus.Publish(ctx, m)
}

func TestHubPublishesThroughTheBus(t *testing.T) {
	t.Parallel()
	bus := &recordingBus{LocalBus: NewLocalBus()}
	h, err := New(withBus(bus))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h.PublishUsers(ctx, []string{"a"}, "message_new", map[string]int{"seq": 1})
	h.PublishUsers(ctx, nil, "message_new", nil) // nobody: nothing published
	h.PublishTopic(ctx, "chat:1", "typing_indicator", nil, "a")
	h.LeaveTopicUser(ctx, "chat:1", "b")
	want := []Message{
		{Kind: KindUsers, Users: []string{"a"}, Frame: []byte(`{"type":"message_new","data":{"seq":1}}`)},
		{Kind: KindTopic, Topic: "chat:1", ExceptUser: "a", Frame: []byte(`{"type":"typing_indicator","data":{}}`)},
		{Kind: KindLeaveTopic, Topic: "chat:1", Users: []string{"b"}},
	}
	if diff := cmp.Diff(want, bus.got); diff != "" {
		t.Errorf("published (-want +got):\n%s", diff)
	}
}

// failingBus refuses every publication, like a Redis bus whose server is down.
type failingBus struct{ calls int }

func (f *failingBus) Publish(context.Context, Message) error {
	f.calls++
	return errors.New("bus down")
}
func (f *failingBus) Subscribe(func(context.Context, Message)) func() { return func() {} }

func TestPublishFailuresAreContained(t *testing.T) {
	t.Parallel()
	bus := &failingBus{}
	h, err := New(withBus(bus))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h.PublishUsers(ctx, []string{"a"}, "x", map[string]any{"bad": make(chan int)}) // cannot encode: dropped
	h.PublishTopic(ctx, "t", "x", make(chan int), "")                              // cannot encode: dropped
	if bus.calls != 0 {
		t.Errorf("unencodable events reached the bus %d times", bus.calls)
	}
	h.PublishUsers(ctx, []string{"a"}, "x", nil) // the bus fails: logged, no panic
	if bus.calls != 1 {
		t.Errorf("bus calls = %d, want 1", bus.calls)
	}
}
