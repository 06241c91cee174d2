package location

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/location/geo"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// The load of the benchmark: every user has this many geofences and viewers.
const (
	benchUsers   = 10_000
	benchFences  = 10
	benchViewers = 5
)

// senders is how many reports are in flight at once (closed loop: each sender waits for its
// report to finish before the next).
var senders = flag.Int("location.senders", 16, "concurrent senders of BenchmarkUpdate")

type startKey struct{}

// latencyPub records, for every shared_location_update, the time since its report began.
type latencyPub struct {
	mu      sync.Mutex
	lat     []time.Duration
	fences  atomic.Int64
	updates atomic.Int64
}

func (p *latencyPub) PublishUsers(ctx context.Context, users []string, typ string, _ any) {
	switch typ {
	case EventSharedUpdate:
		p.updates.Add(int64(len(users)))
		if t0, ok := ctx.Value(startKey{}).(time.Time); ok {
			d := time.Since(t0)
			p.mu.Lock()
			p.lat = append(p.lat, d)
			p.mu.Unlock()
		}
	case EventGeofenceEvent:
		p.fences.Add(1)
	}
}

func (p *latencyPub) p99() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lat) == 0 {
		return 0
	}
	s := slices.Clone(p.lat)
	slices.Sort(s)
	return s[len(s)*99/100]
}

type benchUser struct {
	id      string
	home    geo.Point
	reports atomic.Int64
}

// seed creates the users, their geofences (with their cell index) and their shares, directly.
func seed(b *testing.B, db *store.DB) []*benchUser {
	b.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	center := geo.Point{Lat: 52.52, Lng: 13.405}
	users := make([]*benchUser, benchUsers)
	for i := range users {
		users[i] = &benchUser{id: newID(), home: geo.Point{Lat: center.Lat + (r.Float64()-0.5)*0.4, Lng: center.Lng + (r.Float64()-0.5)*0.6}}
	}
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		for _, u := range users {
			if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, username, email, display_name, password_hash,
				username_key, display_key, created_at, updated_at) VALUES ($1, $1, $1, 'u', 'x', $1, 'u', 0, 0)`, u.id); err != nil {
				return err
			}
		}
		for i, u := range users {
			for k := range benchFences {
				c := geo.Point{Lat: u.home.Lat + (r.Float64()-0.5)*0.02, Lng: u.home.Lng + (r.Float64()-0.5)*0.03}
				sh := geofenceShape{Center: &c, RadiusM: 200 + r.Float64()*1300}
				f, err := sh.fence()
				if err != nil {
					return err
				}
				raw, _ := json.Marshal(sh)
				id := newID()
				notify := NotifyOwner
				if k%2 == 0 {
					notify = NotifyViewers
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO geofences (id, user_id, name, shape, notify, dwell_s, created_at, updated_at)
					VALUES ($1, $2, 'f', $3, $4, 300, 0, 0)`, id, u.id, string(raw), notify); err != nil {
					return err
				}
				if err := writeCells(ctx, tx, u.id, id, f); err != nil {
					return err
				}
			}
			for k := 1; k <= benchViewers; k++ {
				precision := PrecisionExact
				if k > 3 {
					precision = PrecisionApproximate
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO location_shares (`+shareCols+`)
					VALUES ($1, $2, $3, NULL, $4, 'active', 0, NULL, NULL)`, newID(), u.id, users[(i+k*997)%len(users)].id, precision); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("seed: %v", err)
	}
	return users
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkUpdate: position reports through the service (validation, latest position, throttled
// history, shares and viewers, geofence index and transitions, publish) from concurrent senders,
// with 10,000 users each holding 10 geofences and 5 viewers. It reports accepted reports per
// second, the p99 from the start of a report to the publish of its shared_location_update, and
// the process CPU per report (the figure that survives a busy machine).
func BenchmarkUpdate(b *testing.B) {
	for _, d := range storetest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d)
			users := seed(b, db)
			pub := &latencyPub{}
			s := New(db, pub, Options{})
			// Every user reports once first: the benchmark measures a steady state, not every
			// user's first report (which enters every fence around them).
			ctx := context.Background()
			for _, u := range users {
				p := u.home
				p.Lat += 1000.0 / 111_195
				if _, err := s.Update(ctx, u.id, PositionReport{Lat: p.Lat, Lng: p.Lng}, ""); err != nil {
					b.Fatal(err)
				}
			}
			pub.mu.Lock()
			pub.lat = nil
			pub.mu.Unlock()
			pub.fences.Store(0)
			pub.updates.Store(0)
			var accepted atomic.Int64
			var seedN atomic.Uint64
			b.SetParallelism(max(1, *senders/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(seedN.Add(1), 7))
				for pb.Next() {
					u := users[r.IntN(len(users))]
					// Each user walks a circle of 1 km around home, 20 m per report, through
					// some of their geofences.
					acc := 10.0
					angle := float64(u.reports.Add(1)) * 0.02
					p := geo.Point{Lat: u.home.Lat + 1000*math.Cos(angle)/111_195, Lng: u.home.Lng + 1000*math.Sin(angle)/(111_195*math.Cos(u.home.Lat*math.Pi/180))}
					ctx := context.WithValue(context.Background(), startKey{}, time.Now())
					res, err := s.Update(ctx, u.id, PositionReport{Lat: p.Lat, Lng: p.Lng, AccuracyM: &acc}, "")
					if err != nil {
						b.Error(err)
						return
					}
					if res.Accepted {
						accepted.Add(1)
					}
				}
			})
			elapsed, cpu := time.Since(start), cpuTime()-cpu0
			b.StopTimer()
			n := float64(accepted.Load())
			b.ReportMetric(n/elapsed.Seconds(), "updates/s")
			b.ReportMetric(float64(pub.p99().Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/update")
			b.ReportMetric(float64(pub.fences.Load())/n, "geofence-events/update")
			b.ReportMetric(float64(pub.updates.Load())/n, "deliveries/update")
		})
	}
}
