package chat

import "github.com/prometheus/client_golang/prometheus"

// metrics are the chat's Prometheus collectors.
type metrics struct {
	batchSize prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "nerutalk_chat_commit_batch_ops",
			Help:    "Sends and receipts committed together by the group commit, per transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.batchSize)
	}
	return m
}

func (m *metrics) observeBatch(n int) { m.batchSize.Observe(float64(n)) }
