package realtime

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the hub's Prometheus collectors.
type metrics struct {
	connections prometheus.Gauge
	framesIn    prometheus.Counter
	framesOut   prometheus.Counter
	writes      prometheus.Counter
	slow        prometheus.Counter
	closes      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nerutalk_ws_connections", Help: "Open WebSocket connections on this node.",
		}),
		framesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nerutalk_ws_frames_in_total", Help: "WebSocket frames received from clients.",
		}),
		framesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nerutalk_ws_frames_out_total", Help: "WebSocket frames written to clients.",
		}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nerutalk_ws_writes_total",
			Help: "Socket writes (writev system calls) that carried frames to clients; frames_out / writes is the frames per write.",
		}),
		slow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nerutalk_ws_slow_consumer_disconnects_total", Help: "Connections closed because their send queue overflowed (close code 4008).",
		}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nerutalk_ws_closes_total", Help: "Closed WebSocket connections by cause.",
		}, []string{"cause"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.connections, m.framesIn, m.framesOut, m.writes, m.slow, m.closes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("realtime: register metrics: %w", err)
		}
	}
	return m, nil
}
