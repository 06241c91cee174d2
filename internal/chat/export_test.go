package chat

// Test-only access for the end-to-end tests (package chat_test).

// FakeClock is a Clock moved by hand.
type FakeClock = fakeClock

// NewFakeClock returns a fake clock.
var NewFakeClock = newFakeClock

// SetClock makes the service's typing indicators run on c; call it before any typing.
func SetClock(s *Service, c Clock) { s.typing.setClock(c) }
