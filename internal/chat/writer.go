package chat

import (
	"context"
	"errors"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
)

var errClosed = apperr.New(apperr.KindUnavailable, "shutting_down", "the server is shutting down")

// writer is the group commit: a goroutine takes every pending send and mark, commits them in
// one transaction, queues their events and then answers the callers. While it commits, new work
// piles up in the queue and becomes the next batch, so batches grow with the load. A
// transaction has a fixed cost (several statements and the commit) that small batches pay per
// message, so the writer also paces itself: a batch that starts less than `every` after the
// previous one waits out the rest of the interval, gathering what arrives. A lone message, which
// finds the previous commit long past, waits for nothing but its own commit. The wait is only
// worth it when something is likely to arrive meanwhile: each lane keeps a moving estimate of its
// arrival rate over about 100 ms (arrivalRate) and paces only while `every` would gather at least
// paceGain ops, so a trickle of messages (a few hundred a second, even in small bursts) commits
// each as it comes instead of waiting up to `every` for company that rarely arrives.
//
// The chats are split between lanes by a hash of their id, one goroutine and one transaction at a
// time per lane: with several lanes (PostgreSQL), one lane's transaction runs while another's
// commits, so the database's commit latency overlaps instead of adding up. Lanes never share a
// chat, so each chat's messages still commit one batch after the other (gapless seq, in order),
// and the transactions of two lanes never wait for each other's chat rows.
type writer struct {
	lanes    []*lane
	seed     maphash.Seed
	maxBatch int
	every    time.Duration // least time between the starts of two commits of a lane
	mu       sync.RWMutex  // guards closed against submits racing Close
	closed   bool
}

// lane is one goroutine of the group commit and its queue.
type lane struct {
	in   chan *op
	done chan struct{}
}

func newWriter(lanes, maxBatch int, every time.Duration) *writer {
	w := &writer{seed: maphash.MakeSeed(), maxBatch: maxBatch, every: every}
	for range max(lanes, 1) {
		w.lanes = append(w.lanes, &lane{in: make(chan *op, 4*maxBatch), done: make(chan struct{})})
	}
	return w
}

// laneOf is the lane of o's chat.
func (w *writer) laneOf(o *op) *lane {
	if len(w.lanes) == 1 {
		return w.lanes[0]
	}
	chatID := ""
	if o.send != nil {
		chatID = o.send.msg.ChatID
	} else if o.mark != nil {
		chatID = o.mark.chatID
	}
	return w.lanes[maphash.String(w.seed, chatID)%uint64(len(w.lanes))]
}

// submit queues o and waits until it is committed or refused. When ctx ends first the op may
// still commit; a send retried with the same client_id then returns it.
func (s *Service) submit(ctx context.Context, o *op) (opResult, error) {
	if err := s.queueOp(ctx, o); err != nil {
		return opResult{}, err
	}
	select {
	case <-o.done:
		return o.res, o.res.err
	case <-ctx.Done():
		return opResult{}, ctx.Err()
	}
}

// queueOp hands o to the writer without waiting for its commit; o.done is closed once o.res is
// set (and o.answered, when set, is called once the events of o's batch are published).
func (s *Service) queueOp(ctx context.Context, o *op) error {
	if err := o.check(); err != nil {
		return err
	}
	o.done = make(chan struct{})
	w := s.writer
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return errClosed
	}
	select {
	case w.laneOf(o).in <- o:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) runWriter(l *lane) {
	w := s.writer
	defer close(l.done)
	batch := make([]*op, 0, w.maxBatch)
	pace := time.NewTimer(time.Hour)
	pace.Stop()
	var last time.Time // start of the lane's previous commit
	var rate arrivalRate
	for o := range l.in {
		wait := time.Duration(0)
		if rate.expected(w.every) >= paceGain {
			wait = w.every - time.Since(last)
		}
		batch = w.gather(l, append(batch[:0], o), pace, wait)
		last = time.Now()
		rate.observe(len(batch), last)
		s.commit(batch, last)
	}
}

// paceGain is the number of ops the writer must expect to gather in its interval for the wait to
// be worth its latency.
const paceGain = 2

// rateWindow is the time constant of arrivalRate: long enough that a burst (a few clients whose
// rate limits refill at once) does not count as a high rate, short enough that a real rise of
// the load turns pacing on within a few tens of milliseconds.
const rateWindow = 100 * time.Millisecond

// arrivalRate is a lane's moving estimate of ops per second, exponentially weighted in time:
// each batch adds its ops, and what was counted decays with a time constant of rateWindow.
type arrivalRate struct {
	count float64 // ops counted, decayed to at
	at    time.Time
}

func (r *arrivalRate) observe(ops int, now time.Time) {
	if since := now.Sub(r.at); since > 0 {
		r.count *= math.Exp(-float64(since) / float64(rateWindow))
	}
	r.count += float64(ops)
	r.at = now
}

// expected is how many ops arrive in d at the estimated rate.
func (r *arrivalRate) expected(d time.Duration) float64 {
	return r.count * float64(d) / float64(rateWindow)
}

// gather adds queued ops to batch, up to maxBatch: for wait (when positive) it waits for more to
// arrive, then it takes only what is already queued.
func (w *writer) gather(l *lane, batch []*op, pace *time.Timer, wait time.Duration) []*op {
	var tick <-chan time.Time
	if wait > 0 {
		pace.Reset(wait)
		defer pace.Stop() // Go 1.23 timers: nothing stale is left to receive after Stop
		tick = pace.C
	}
	for len(batch) < w.maxBatch {
		var o *op
		ok := true
		if tick != nil {
			select {
			case o, ok = <-l.in:
			case <-tick:
				tick = nil
				continue
			}
		} else {
			select {
			case o, ok = <-l.in:
			default:
				return batch
			}
		}
		if !ok { // closed: Close waits for what is queued
			return batch
		}
		batch = append(batch, o)
	}
	return batch
}

// commit commits a batch and answers its ops. If the transaction fails, every op is retried in a
// transaction of its own, so that one bad op cannot fail the others. The batch is counted in the
// metrics before any caller is answered, so a caller that has its answer sees its batch counted.
func (s *Service) commit(batch []*op, started time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Shared: the lanes' batches touch distinct chats, so their events may interleave; every
	// other write transaction takes orderMu alone (see Service.orderMu).
	s.orderMu.RLock()
	s.stmts.flush(ctx)
	res, evs, err := s.commitOps(ctx, batch, s.now())
	if err == nil {
		for i, o := range batch {
			o.res = res[i]
		}
		s.enqueue(evs...)
	} else if len(batch) == 1 && !store.IsUniqueViolation(err) {
		batch[0].res = opResult{err: s.internal("commit", err)}
	} else {
		if len(batch) > 1 {
			s.log.Warn("chat: batch failed, retrying its ops one by one", "ops", len(batch), "err", err)
		}
		for _, o := range batch {
			s.commitAlone(ctx, o)
		}
	}
	// Deferred answers (WebSocket sends) go out after the batch's events: the sender's own
	// message_new comes before its ack.
	for _, o := range batch {
		if o.answered != nil {
			s.enqueue(event{answer: o.answered})
		}
	}
	s.orderMu.RUnlock()
	s.metrics.observeBatch(len(batch), time.Since(started))
	for _, o := range batch {
		close(o.done)
	}
}

// commitAlone commits o in a transaction of its own and answers it. A unique violation means that
// another lane committed a send with the same sender and client_id meanwhile (lanes commit in
// parallel, and PostgreSQL makes the second insert wait for the first transaction, then fail): one
// more attempt finds that message and answers as for any repeat (the original, or 409
// client_id_reused), not 500.
func (s *Service) commitAlone(ctx context.Context, o *op) {
	res, evs, err := s.commitOps(ctx, []*op{o}, s.now())
	if err != nil && store.IsUniqueViolation(err) {
		res, evs, err = s.commitOps(ctx, []*op{o}, s.now())
	}
	if err != nil {
		o.res = opResult{err: s.internal("commit", err)}
		return
	}
	o.res = res[0]
	s.enqueue(evs...)
}

// closeWriter stops accepting work and waits until everything queued is committed.
func (s *Service) closeWriter(ctx context.Context) error {
	w := s.writer
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		for _, l := range w.lanes {
			close(l.in)
		}
	}
	w.mu.Unlock()
	for _, l := range w.lanes {
		select {
		case <-l.done:
		case <-ctx.Done():
			select {
			case <-l.done: // drained just in time
			default:
				return errors.Join(errors.New("chat: writer did not drain"), ctx.Err())
			}
		}
	}
	return nil
}
