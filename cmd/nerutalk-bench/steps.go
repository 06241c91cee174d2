package main

import (
	"context"
	"fmt"
	"time"
)

// stepResult is one target rate, measured runs times and summarised by the median.
type stepResult struct {
	TargetRate       float64 `json:"target_msgs_per_s"`
	TargetDeliveries float64 `json:"target_deliveries_per_s,omitempty"`
	AckedPerS        spread  `json:"acked_per_s"`
	DeliveriesPerS   spread  `json:"deliveries_per_s"`
	AckP50MS         spread  `json:"ack_p50_ms"`
	AckP99MS         spread  `json:"ack_p99_ms"`
	E2EP50MS         spread  `json:"e2e_p50_ms"`
	E2EP99MS         spread  `json:"e2e_p99_ms"`
	E2EMaxMS         spread  `json:"e2e_max_ms"`
	HistoryP99MS     *spread `json:"history_p99_ms,omitempty"`
	ServerCores      spread  `json:"server_cores"`
	GeneratorCores   spread  `json:"generator_cores"`
	StolenCores      spread  `json:"stolen_cores"`
	DBCores          spread  `json:"db_cores"` // -1 without -db-cpu-match
	// µs of CPU per acked message / per delivery: the server's and the database's (see trafficRun)
	ServerUSPerAck      spread       `json:"server_cpu_us_per_acked_msg"`
	ServerUSPerDelivery spread       `json:"server_cpu_us_per_delivery"`
	DBUSPerAck          spread       `json:"db_cpu_us_per_acked_msg"`
	Missing             uint64       `json:"deliveries_missing"`
	Duplicates          uint64       `json:"deliveries_duplicate"`
	Errors              uint64       `json:"errors"`
	Skipped             uint64       `json:"skipped"`
	Runs                []trafficRun `json:"runs"`
	verdict
}

func summarizeStep(target float64, runs []trafficRun, slo time.Duration) stepResult {
	s := stepResult{
		TargetRate:          target,
		AckedPerS:           spreadBy(runs, func(r trafficRun) float64 { return r.AckedPerS }),
		DeliveriesPerS:      spreadBy(runs, func(r trafficRun) float64 { return r.DeliveriesPerS }),
		AckP50MS:            spreadBy(runs, func(r trafficRun) float64 { return r.Ack.P50MS }),
		AckP99MS:            spreadBy(runs, func(r trafficRun) float64 { return r.Ack.P99MS }),
		E2EP50MS:            spreadBy(runs, func(r trafficRun) float64 { return r.E2E.P50MS }),
		E2EP99MS:            spreadBy(runs, func(r trafficRun) float64 { return r.E2E.P99MS }),
		E2EMaxMS:            spreadBy(runs, func(r trafficRun) float64 { return r.E2E.MaxMS }),
		ServerCores:         spreadBy(runs, func(r trafficRun) float64 { return r.CPU.ServerCores }),
		GeneratorCores:      spreadBy(runs, func(r trafficRun) float64 { return r.CPU.GeneratorCores }),
		StolenCores:         spreadBy(runs, func(r trafficRun) float64 { return r.CPU.StolenCores }),
		DBCores:             spreadBy(runs, func(r trafficRun) float64 { return r.CPU.DBCores }),
		Runs:                runs,
		ServerUSPerAck:      spreadBy(runs, func(r trafficRun) float64 { return r.ServerUSPerAck }),
		ServerUSPerDelivery: spreadBy(runs, func(r trafficRun) float64 { return r.ServerUSPerDelivery }),
		DBUSPerAck:          spreadBy(runs, func(r trafficRun) float64 { return r.DBUSPerAck }),
	}
	if len(runs) > 0 && runs[0].History != nil {
		h := spreadBy(runs, func(r trafficRun) float64 { return r.History.P99MS })
		s.HistoryP99MS = &h
	}
	for _, r := range runs {
		s.Missing += r.Missing
		s.Duplicates += r.Duplicates
		s.Errors += r.Errors
		s.Skipped += r.Skipped
	}
	s.verdict = judge(target, s.AckedPerS.Median, s.Skipped, s.Errors,
		time.Duration(s.AckP99MS.Median*float64(time.Millisecond)), slo)
	return s
}

// stepRates measures each rate in turn (runs times each) and stops after the first saturated
// step unless keepGoing. perMessage is how many deliveries one message makes (for the
// deliveries/s target of a step; 0 to leave it out).
func (t *traffic) stepRates(ctx context.Context, name string, senders []senderSpec, rates []float64, o runOpts, runs int, keepGoing bool, perMessage int) []stepResult {
	var steps []stepResult
	for _, rate := range rates {
		o.rate = rate
		var rr []trafficRun
		for i := range runs {
			if ctx.Err() != nil {
				break
			}
			o.profile = ""
			if i == 0 {
				o.profile = fmt.Sprintf("%s-%.0f", name, rate)
			}
			r := t.run(ctx, senders, o)
			t.r.logf("  rate %.0f msg/s run %d/%d: acked %.0f/s, deliveries %.0f/s, ack p99 %.1f ms, e2e p50 %.1f p99 %.1f ms, missing %d, cpu server %s gen %s stolen %s%s, server %s µs/msg %s µs/delivery%s",
				rate, i+1, runs, r.AckedPerS, r.DeliveriesPerS, r.Ack.P99MS, r.E2E.P50MS, r.E2E.P99MS, r.Missing,
				cores(r.CPU.ServerCores), cores(r.CPU.GeneratorCores), cores(r.CPU.StolenCores), dbNote(r.CPU.DBCores, r.DBUSPerAck),
				us(r.ServerUSPerAck), us(r.ServerUSPerDelivery), satNote(r.verdict))
			rr = append(rr, r)
		}
		if len(rr) == 0 {
			break
		}
		s := summarizeStep(rate, rr, o.slo)
		if perMessage > 0 {
			s.TargetDeliveries = rate * float64(perMessage)
		}
		steps = append(steps, s)
		if s.Saturated && !keepGoing {
			t.r.logf("  saturated at %.0f msg/s (%s): stopping", rate, s.Why)
			break
		}
	}
	return steps
}

// cores formats a CPU figure (negative = unknown, without -pid).
func cores(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", v)
}

// us formats a µs-per-event figure (negative = unknown).
func us(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", v)
}

// dbNote formats the database's cores and µs per message when -db-cpu-match measured them.
func dbNote(cores, perMsg float64) string {
	if cores < 0 {
		return ""
	}
	return fmt.Sprintf(" db %.2f (%s µs/msg)", cores, us(perMsg))
}

func satNote(v verdict) string {
	if v.Saturated {
		return " — SATURATED: " + v.Why
	}
	return ""
}

// bestStep is the highest-rate step that kept up, met the latency bound (e2e p99 ≤ p99) and
// lost nothing; nil if none did.
func bestStep(steps []stepResult, p99 time.Duration) *stepResult {
	var best *stepResult
	for i := range steps {
		s := &steps[i]
		if s.Saturated || s.Missing > 0 || s.Duplicates > 0 {
			continue
		}
		if p99 > 0 && s.E2EP99MS.Median > float64(p99)/float64(time.Millisecond) {
			continue
		}
		if best == nil || s.AckedPerS.Median > best.AckedPerS.Median {
			best = s
		}
	}
	return best
}
