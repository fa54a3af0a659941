// Package metrics exposes the Temporal SDK's metrics and imageflow's own counters in Prometheus
// format, without extra dependencies beyond the Prometheus client.
package metrics

import (
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
)

type kind int

const (
	counter kind = iota
	gauge
	timer
)

type series struct {
	kind   kind
	labels map[string]string
	value  float64 // counter or gauge
	count  uint64  // timer
	sum    float64 // timer, seconds
}

// Registry holds every series and is a prometheus.Collector.
type Registry struct {
	mu     sync.Mutex
	series map[string]map[string]*series // name -> label signature -> series
	funcs  []funcMetric
	prom   *prometheus.Registry
}

type funcMetric struct {
	desc *prometheus.Desc
	fn   func() float64
}

// New returns a registry that also reports Go runtime and process metrics.
func New() *Registry {
	r := &Registry{series: map[string]map[string]*series{}, prom: prometheus.NewRegistry()}
	r.prom.MustRegister(
		r,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return r
}

// HTTPHandler serves /metrics.
func (r *Registry) HTTPHandler() http.Handler {
	return promhttp.HandlerFor(r.prom, promhttp.HandlerOpts{})
}

// CounterFunc reports a counter read from fn at each scrape (the bridge's stats).
func (r *Registry) CounterFunc(name, help string, fn func() float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.funcs = append(r.funcs, funcMetric{prometheus.NewDesc(name, help, nil, nil), fn})
}

// Handler adapts the registry to the Temporal SDK.
func (r *Registry) Handler() client.MetricsHandler { return &handler{r: r, tags: map[string]string{}} }

func signature(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + labels[k] + ",")
	}
	return b.String()
}

func (r *Registry) get(name string, k kind, labels map[string]string) *series {
	r.mu.Lock()
	defer r.mu.Unlock()
	fam := r.series[name]
	if fam == nil {
		fam = map[string]*series{}
		r.series[name] = fam
	}
	sig := signature(labels)
	s := fam[sig]
	if s == nil {
		s = &series{kind: k, labels: labels}
		fam[sig] = s
	}
	return s
}

func (r *Registry) Describe(ch chan<- *prometheus.Desc) {
	// Unchecked collector: series appear as the SDK creates them.
}

// Collect emits every series; a family's label names are the union of its series' labels, with
// missing ones empty, as Prometheus wants one label set per family.
func (r *Registry) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, fam := range r.series {
		keySet := map[string]bool{}
		var k kind
		for _, s := range fam {
			k = s.kind
			for l := range s.labels {
				keySet[l] = true
			}
		}
		keys := make([]string, 0, len(keySet))
		for l := range keySet {
			keys = append(keys, sanitize(l))
		}
		sort.Strings(keys)
		metricName := sanitize(name)
		if k == timer {
			metricName += "_seconds"
		}
		desc := prometheus.NewDesc(metricName, "Temporal SDK metric "+name, keys, nil)
		for _, s := range fam {
			vals := make([]string, len(keys))
			for i, key := range keys {
				for l, v := range s.labels {
					if sanitize(l) == key {
						vals[i] = v
					}
				}
			}
			var m prometheus.Metric
			var err error
			switch s.kind {
			case counter:
				m, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, s.value, vals...)
			case gauge:
				m, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, s.value, vals...)
			case timer:
				m, err = prometheus.NewConstSummary(desc, s.count, s.sum, nil, vals...)
			}
			if err == nil {
				ch <- m
			}
		}
	}
	for _, f := range r.funcs {
		ch <- prometheus.MustNewConstMetric(f.desc, prometheus.CounterValue, f.fn())
	}
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, s)
}

type handler struct {
	r    *Registry
	tags map[string]string
}

func (h *handler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return &handler{r: h.r, tags: merged}
}

func (h *handler) Counter(name string) client.MetricsCounter {
	s := h.r.get(name, counter, h.tags)
	return counterFunc(func(d int64) { h.r.mu.Lock(); s.value += float64(d); h.r.mu.Unlock() })
}

func (h *handler) Gauge(name string) client.MetricsGauge {
	s := h.r.get(name, gauge, h.tags)
	return gaugeFunc(func(v float64) { h.r.mu.Lock(); s.value = v; h.r.mu.Unlock() })
}

func (h *handler) Timer(name string) client.MetricsTimer {
	s := h.r.get(name, timer, h.tags)
	return timerFunc(func(d time.Duration) {
		h.r.mu.Lock()
		s.count++
		s.sum += d.Seconds()
		h.r.mu.Unlock()
	})
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }
