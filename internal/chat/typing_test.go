package chat

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// typingRecorder records emitted indicators as "+1.5s user on".
type typingRecorder struct {
	mu    sync.Mutex
	clock *fakeClock
	start time.Time
	got   []string
}

func (r *typingRecorder) emit(chatID, userID string, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, fmt.Sprintf("%s %s %s %v", r.clock.Now().Sub(r.start), chatID, userID, on))
}

func TestTypingThrottleAndExpiry(t *testing.T) {
	t.Parallel()
	type step struct {
		at   time.Duration // since the start
		user string
		on   bool
	}
	tests := []struct {
		name  string
		steps []step
		until time.Duration
		want  []string
	}{
		{
			name:  "refreshes are not forwarded; silence expires after 6s",
			steps: []step{{0, "u", true}, {1 * time.Second, "u", true}, {3 * time.Second, "u", true}},
			until: 20 * time.Second,
			want:  []string{"0s c u true", "9s c u false"},
		},
		{
			name:  "stop is forwarded at once outside the window",
			steps: []step{{0, "u", true}, {3 * time.Second, "u", false}},
			until: 20 * time.Second,
			want:  []string{"0s c u true", "3s c u false"},
		},
		{
			name:  "stop inside the window waits for its end",
			steps: []step{{0, "u", true}, {500 * time.Millisecond, "u", false}},
			until: 20 * time.Second,
			want:  []string{"0s c u true", "2s c u false"},
		},
		{
			name:  "a stop undone inside the window sends nothing",
			steps: []step{{0, "u", true}, {500 * time.Millisecond, "u", false}, {time.Second, "u", true}, {4 * time.Second, "u", false}},
			until: 20 * time.Second,
			want:  []string{"0s c u true", "4s c u false"},
		},
		{
			name: "toggling fast gives at most one event per 2s",
			steps: []step{{0, "u", true}, {2100 * time.Millisecond, "u", false}, {2200 * time.Millisecond, "u", true},
				{2300 * time.Millisecond, "u", false}, {2400 * time.Millisecond, "u", true}},
			until: 20 * time.Second,
			want:  []string{"0s c u true", "2.1s c u false", "4.1s c u true", "8.4s c u false"},
		},
		{
			name:  "typing:false without typing first sends nothing",
			steps: []step{{0, "u", false}},
			until: 10 * time.Second,
		},
		{
			name:  "users are independent",
			steps: []step{{0, "u", true}, {100 * time.Millisecond, "v", true}, {200 * time.Millisecond, "u", false}},
			until: 10 * time.Second,
			want:  []string{"0s c u true", "100ms c v true", "2s c u false", "6.1s c v false"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			rec := &typingRecorder{clock: clock, start: clock.Now()}
			ty := newTyping(clock, rec.emit)
			elapsed := time.Duration(0)
			for _, st := range tc.steps {
				clock.Advance(st.at - elapsed)
				elapsed = st.at
				ty.set("c", st.user, st.on)
			}
			clock.Advance(tc.until - elapsed)
			if !slices.Equal(rec.got, tc.want) {
				t.Errorf("events\n got %q\nwant %q", rec.got, tc.want)
			}
			ty.mu.Lock()
			left := len(ty.states)
			ty.mu.Unlock()
			if left != 0 {
				t.Errorf("%d typing states left after everything expired", left)
			}
		})
	}
}

func TestTypingForgetAndStop(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	rec := &typingRecorder{clock: clock, start: clock.Now()}
	ty := newTyping(clock, rec.emit)
	ty.set("c", "u", true)
	ty.set("c", "v", true)
	ty.forget("c", "u") // u was removed from the chat: the others stop seeing them type
	ty.stop()
	clock.Advance(time.Minute)
	ty.set("c", "w", true) // after stop nothing is sent
	want := []string{"0s c u true", "0s c v true", "0s c u false"}
	if !slices.Equal(rec.got, want) {
		t.Errorf("events\n got %q\nwant %q", rec.got, want)
	}
}
