package chat

import (
	"sync"
	"time"
)

// Typing indicators are ephemeral: never stored, kept per node in memory.
const (
	// TypingThrottle is the least time between two typing_indicator events of one user in one chat.
	TypingThrottle = 2 * time.Second
	// TypingTimeout is how long "typing" lasts without a refresh before the server sends typing:false.
	TypingTimeout = 6 * time.Second
)

type typingKey struct{ chat, user string }

// typingState is one user typing in one chat.
type typingState struct {
	want     bool      // what the user says (false once it expired)
	shown    bool      // what the others were last told
	lastSent time.Time // when they were last told; zero: never
	// Timers, each with a generation so that one that fires after being replaced does nothing.
	expiry, flush       func() bool
	expiryGen, flushGen uint64
}

// typing forwards typing indicators with a throttle and an expiry. Everything happens under mu,
// including emit (which must not block: it queues on the hub), so the events of one user in one
// chat go out in order.
type typing struct {
	mu      sync.Mutex
	clock   Clock
	emit    func(chatID, userID string, on bool)
	states  map[typingKey]*typingState
	stopped bool
}

func newTyping(clock Clock, emit func(chatID, userID string, on bool)) *typing {
	return &typing{clock: clock, emit: emit, states: map[typingKey]*typingState{}}
}

// set records that userID is (on) or stopped (off) typing in chatID. The others see a change at
// most once per TypingThrottle: a change inside the window is sent when the window ends, unless
// it was undone by then. "Typing" that is not refreshed within TypingTimeout turns off by itself.
func (t *typing) set(chatID, userID string, on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	k := typingKey{chatID, userID}
	st := t.states[k]
	if st == nil {
		if !on {
			return
		}
		st = &typingState{}
		t.states[k] = st
	}
	st.want = on
	if st.expiry != nil {
		st.expiry()
		st.expiry = nil
	}
	if on {
		st.expiryGen++
		gen := st.expiryGen
		st.expiry = t.clock.AfterFunc(TypingTimeout, func() { t.expire(k, gen) })
	}
	t.flushLocked(k, st)
}

func (t *typing) expire(k typingKey, gen uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.states[k]
	if t.stopped || st == nil || st.expiryGen != gen {
		return
	}
	st.expiry = nil
	st.want = false
	t.flushLocked(k, st)
}

func (t *typing) flushTimer(k typingKey, gen uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.states[k]
	if t.stopped || st == nil || st.flushGen != gen {
		return
	}
	st.flush = nil
	t.flushLocked(k, st)
}

// flushLocked tells the others what the user wants them to see, if the throttle allows it now;
// otherwise it waits for the end of the window. An entry that is off and out of its window is
// forgotten.
func (t *typing) flushLocked(k typingKey, st *typingState) {
	now := t.clock.Now()
	recent := !st.lastSent.IsZero() && now.Sub(st.lastSent) < TypingThrottle
	if st.want != st.shown && !recent {
		t.emit(k.chat, k.user, st.want)
		st.shown, st.lastSent, recent = st.want, now, true
	}
	if st.want != st.shown || (!st.want && recent) {
		if st.flush == nil {
			st.flushGen++
			gen := st.flushGen
			st.flush = t.clock.AfterFunc(st.lastSent.Add(TypingThrottle).Sub(now), func() { t.flushTimer(k, gen) })
		}
		return
	}
	if !st.want {
		t.dropLocked(k, st)
	}
}

func (t *typing) dropLocked(k typingKey, st *typingState) {
	if st.expiry != nil {
		st.expiry()
	}
	if st.flush != nil {
		st.flush()
	}
	delete(t.states, k)
}

// forget drops a user's typing in a chat they left; the others are told it stopped.
func (t *typing) forget(chatID, userID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := typingKey{chatID, userID}
	st := t.states[k]
	if st == nil {
		return
	}
	if st.shown && !t.stopped {
		t.emit(chatID, userID, false)
	}
	t.dropLocked(k, st)
}

// stop cancels every timer; nothing is sent afterwards.
func (t *typing) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	for k, st := range t.states {
		t.dropLocked(k, st)
	}
}

// setClock replaces the clock (tests); it must happen before any typing.
func (t *typing) setClock(c Clock) {
	t.mu.Lock()
	t.clock = c
	t.mu.Unlock()
}
