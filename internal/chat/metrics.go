package chat

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the chat's Prometheus collectors.
type metrics struct {
	batchSize  prometheus.Histogram
	commitTime prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "nerutalk_chat_commit_batch_ops",
			Help:    "Sends and receipts committed together by the group commit, per transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "nerutalk_chat_commit_seconds",
			Help: "Time the group commit takes per batch, from taking the batch to queueing its events " +
				"(the writer's serial time: batches/s × this mean is how busy it is).",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.batchSize, m.commitTime)
	}
	return m
}

func (m *metrics) observeBatch(n int, took time.Duration) {
	m.batchSize.Observe(float64(n))
	m.commitTime.Observe(took.Seconds())
}
