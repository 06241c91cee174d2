package main

import (
	"encoding/json"
	"testing"
	"time"
)

// The generator's own cost per received frame bounds what it can measure on a shared machine;
// these benchmarks keep it visible.

var sampleFrame = []byte(`{"type":"message_new","data":{"id":"01936a7e-8c1f-7d2a-9b3c-4d5e6f708192","chat_id":"01936a7e-8c1f-7d2a-9b3c-4d5e6f708193",` +
	`"seq":12345,"sender_id":"01936a7e-8c1f-7d2a-9b3c-4d5e6f708194","client_id":"6a1f0a9e-1d7c-4a8b-9c2d-3e4f5a6b7c8d","kind":"text",` +
	`"text":"` + makePayload(time.Unix(1764099000, 0), 77, 100) + `","attachments":[],"reply_to":null,"created_at":"2026-11-25T20:00:00.123Z",` +
	`"edited_at":null,"deleted":false}}`)

func BenchmarkDecodeFrame(b *testing.B) {
	b.Run("scanner", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(sampleFrame)))
		var f inFrame
		for b.Loop() {
			if err := decodeFrame(sampleFrame, &f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(sampleFrame)))
		var f inFrame
		for b.Loop() {
			f = inFrame{}
			if err := json.Unmarshal(sampleFrame, &f); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkHandleDelivery(b *testing.B) {
	b.ReportAllocs()
	tr := newTraffic(&runner{opt: &options{}}, nil, nil, nil)
	c := &conn{seen: map[string]*seqSet{}}
	var f inFrame
	if err := json.Unmarshal(sampleFrame, &f); err != nil {
		b.Fatal(err)
	}
	tr.cur.Store(&trafficStep{windowEnd: 1 << 62})
	now := time.Now()
	for i := int64(1); b.Loop(); i++ {
		f.Data.Seq = i
		tr.handle(c, now, &f)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h histogram
	b.RunParallel(func(pb *testing.PB) {
		d := time.Duration(0)
		for pb.Next() {
			d += 7 * time.Microsecond
			h.Record(d % time.Second)
		}
	})
}
