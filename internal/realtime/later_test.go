package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/config"
)

// nextLater returns the Later of the next "later" frame the hub handled.
func (e *testEnv) nextLater(t testing.TB) *Later {
	t.Helper()
	select {
	case l := <-e.laters:
		return l
	case <-time.After(5 * time.Second):
		t.Fatal("no later command was handled")
		return nil
	}
}

// Deferred answers go out in the order of their frames, whatever the order their Laters are done
// in, and the answers of frames after a waiting Later wait behind it.
func TestLaterAnswersKeepFrameOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.WSFramesPerSecond = 10 * maxPendingAnswers }, nil)
	c := e.dial(t, "alice")
	c.send("later", "1", map[string]int{"n": 1})
	l1 := e.nextLater(t)
	c.send("later", "2", map[string]int{"n": 2})
	l2 := e.nextLater(t)
	c.send("echo", "3", map[string]int{"n": 3})
	c.send("later", "4", map[string]int{"n": 4})
	l4 := e.nextLater(t)

	l4.Done(context.Background())
	l2.Done(context.Background()) // nothing may go out yet: a frame before them still waits
	l1.Done(context.Background())
	for _, id := range []string{"1", "2", "3", "4"} {
		f := c.expectNext("ack")
		if f.ID != id {
			t.Fatalf("ack %q, want %q", f.ID, id)
		}
	}
	// Every slot was given back: the connection takes as many Laters again as it may hold.
	for i := range maxPendingAnswers {
		c.send("later", "", map[string]int{"n": i})
		e.nextLater(t).Done(context.Background())
	}
	if f := c.call("echo", "last", nil); f.Type != "ack" {
		t.Fatalf("after %d more Laters: %+v", maxPendingAnswers, f)
	}
}

// A Later already done when its connection registers is answered too.
func TestLaterDoneBeforeRegistration(t *testing.T) {
	t.Parallel()
	l := NewLater(func() (any, error) { return nil, nil })
	l.Done(context.Background())
	called := false
	if !l.onDone(func(context.Context) { called = true }) || called {
		t.Fatal("onDone of a done Later registered its function instead of reporting it done")
	}
}

// Frames published with a WakeBatch wait in the queue until Flush and then go out together, in
// order, in one write; an ack made ready with the same batch joins them. (A writer that is still
// awake from an earlier frame may take the first frame before the batch is complete: the batch
// then goes out in two writes. The test gives it a few tries to find the writer asleep.)
func TestWakeBatchFlush(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	c := e.dial(t, "alice")
	waitFor(t, "connection", func() bool { return e.hub.connCount("alice") == 1 })
	var perTry []float64
	for try := 0; try < 10; try++ {
		id := fmt.Sprint("a", try)
		c.send("later", id, map[string]string{"ack": id})
		l := e.nextLater(t)
		writes := metricValue(e.hub.metrics.writes)

		ctx, wb := WithWakeBatch(context.Background())
		e.hub.PublishUsers(ctx, []string{"alice"}, "one", nil)
		e.hub.PublishUsers(ctx, []string{"alice"}, "two", nil)
		l.Done(ctx)
		if sc := e.hub.connOf(t, "alice"); !sc.q.pending() {
			t.Fatal("the batch's frames were written before Flush")
		}
		wb.Flush()
		for _, typ := range []string{"one", "two", "ack"} {
			f := c.expectNext(typ)
			if typ == "ack" {
				var data map[string]string
				if err := json.Unmarshal(f.Data, &data); err != nil || f.ID != id || data["ack"] != id {
					t.Fatalf("ack %+v", f)
				}
			}
		}
		// Writes are counted before they are made: the peer has the frames, so they are counted.
		perTry = append(perTry, metricValue(e.hub.metrics.writes)-writes)
		if perTry[try] == 1 {
			break
		}
	}
	if perTry[len(perTry)-1] != 1 {
		t.Errorf("writes for the batch, try by try: %v; want 1 in some try", perTry)
	}
	// Without a batch, a publication is written at once.
	e.hub.PublishUsers(context.Background(), []string{"alice"}, "three", nil)
	c.expectNext("three")
}
