package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"ferry.dev/ferry/state"
)

// Metrics are ferry's Prometheus series. A nil *Metrics records nothing.
type Metrics struct {
	reconcileDuration *prometheus.HistogramVec
	applyChanges      *prometheus.CounterVec
	verdicts          *prometheus.CounterVec
	promotions        *prometheus.CounterVec
	reverts           *prometheus.CounterVec
	lastApplied       *prometheus.GaugeVec
	healthy           *prometheus.GaugeVec
	driftCorrections  *prometheus.CounterVec
	driftFailures     *prometheus.CounterVec
}

// Outcomes whose verdict counters exist from the start, at zero.
var knownOutcomes = []state.Outcome{state.OutcomeHealthy, state.OutcomeFailed, state.OutcomeTimedOut, state.OutcomeError, state.OutcomeRefused}

// NewMetrics defines ferry's series on reg:
//
//	ferry_reconcile_duration_seconds{environment}     histogram
//	ferry_apply_changes_total{environment,action}     counter
//	ferry_verdicts_total{environment,outcome}         counter
//	ferry_promotions_total{from,to}                   counter
//	ferry_reverts_total{environment}                  counter
//	ferry_last_applied_timestamp_seconds{environment} gauge
//	ferry_environment_healthy{environment}            gauge, 1 or 0
//	ferry_drift_corrections_total{environment}        counter
//	ferry_drift_failures_total{environment}           counter
//
// It fails when reg holds any of them already.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reconcileDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_reconcile_duration_seconds",
			Help:    "Time from a revision's fetch to its verdict, per environment.",
			Buckets: []float64{0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200},
		}, []string{"environment"}),
		applyChanges: counter("ferry_apply_changes_total",
			"Objects written or deleted by ferry, by action (created, configured, deleted).",
			"environment", "action"),
		verdicts: counter("ferry_verdicts_total",
			"Verdicts on revisions, by outcome (Healthy, Failed, TimedOut, Error).",
			"environment", "outcome"),
		promotions: counter("ferry_promotions_total",
			"Healthy revisions promoted from one environment to another.",
			"from", "to"),
		reverts: counter("ferry_reverts_total",
			"Revert commits ferry wrote for failed revisions.",
			"environment"),
		lastApplied: gauge("ferry_last_applied_timestamp_seconds",
			"Unix time of the last revision applied without error.",
			"environment"),
		healthy: gauge("ferry_environment_healthy",
			"1 when the environment's current revision is healthy, else 0.",
			"environment"),
		driftCorrections: counter("ferry_drift_corrections_total",
			"Live objects someone else changed that ferry restored to git's version.",
			"environment"),
		driftFailures: counter("ferry_drift_failures_total",
			"Attempts to restore a drifted live object to git's version that failed.",
			"environment"),
	}
	for _, c := range []prometheus.Collector{m.reconcileDuration, m.applyChanges, m.verdicts, m.promotions, m.reverts, m.lastApplied, m.healthy, m.driftCorrections, m.driftFailures} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func counter(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
}

// Init makes every per-environment series of envs exist at zero, so
// dashboards and alerts see them before the first event.
func (m *Metrics) Init(envs ...string) {
	if m == nil {
		return
	}
	for _, env := range envs {
		for _, o := range knownOutcomes {
			m.verdicts.WithLabelValues(env, string(o))
		}
		m.reverts.WithLabelValues(env)
		m.healthy.WithLabelValues(env)
		m.lastApplied.WithLabelValues(env)
		m.driftCorrections.WithLabelValues(env)
		m.driftFailures.WithLabelValues(env)
	}
}

// Drift counts drifted objects of env that were corrected, or not.
func (m *Metrics) Drift(env string, corrected bool, n int) {
	if m == nil || n <= 0 {
		return
	}
	if corrected {
		m.driftCorrections.WithLabelValues(env).Add(float64(n))
	} else {
		m.driftFailures.WithLabelValues(env).Add(float64(n))
	}
}

// ObserveReconcile records how long env's reconcile of one revision took.
func (m *Metrics) ObserveReconcile(env string, d time.Duration) {
	if m == nil {
		return
	}
	m.reconcileDuration.WithLabelValues(env).Observe(d.Seconds())
}

// AddChanges counts n objects that env's apply or prune changed with action.
func (m *Metrics) AddChanges(env, action string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.applyChanges.WithLabelValues(env, action).Add(float64(n))
}

// Verdict counts a verdict on a revision of env and sets env's health
// gauge from it.
func (m *Metrics) Verdict(env string, outcome state.Outcome) {
	if m == nil {
		return
	}
	m.verdicts.WithLabelValues(env, string(outcome)).Inc()
	m.SetHealthy(env, outcome == state.OutcomeHealthy)
}

// Promoted counts a promotion from one environment to another.
func (m *Metrics) Promoted(from, to string) {
	if m == nil {
		return
	}
	m.promotions.WithLabelValues(from, to).Inc()
}

// Reverted counts a revert commit ferry wrote on env's branch.
func (m *Metrics) Reverted(env string) {
	if m == nil {
		return
	}
	m.reverts.WithLabelValues(env).Inc()
}

// Applied records when env's last revision was applied without error.
func (m *Metrics) Applied(env string, at time.Time) {
	if m == nil {
		return
	}
	m.lastApplied.WithLabelValues(env).Set(float64(at.UnixNano()) / 1e9)
}

// SetHealthy sets env's health gauge.
func (m *Metrics) SetHealthy(env string, healthy bool) {
	if m == nil {
		return
	}
	v := 0.0
	if healthy {
		v = 1
	}
	m.healthy.WithLabelValues(env).Set(v)
}
