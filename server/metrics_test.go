package server

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"ferry.dev/ferry/state"
)

// value returns the value of the series name{labels} in reg, and whether
// it exists.
func value(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metric
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), true
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue(), true
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Init("staging", "production")
	env := map[string]string{"environment": "staging"}
	for _, name := range []string{"ferry_reverts_total", "ferry_environment_healthy", "ferry_last_applied_timestamp_seconds"} {
		if v, ok := value(t, reg, name, env); !ok || v != 0 {
			t.Errorf("%s before any event: %v %v, want 0", name, v, ok)
		}
	}
	if v, ok := value(t, reg, "ferry_verdicts_total", map[string]string{"environment": "production", "outcome": "TimedOut"}); !ok || v != 0 {
		t.Errorf("verdicts series missing at start")
	}

	at := time.Unix(1_800_000_000, 500_000_000)
	m.ObserveReconcile("staging", 3*time.Second)
	m.AddChanges("staging", "created", 2)
	m.AddChanges("staging", "created", 1)
	m.AddChanges("staging", "deleted", 0)
	m.Applied("staging", at)
	m.Verdict("staging", state.OutcomeHealthy)
	m.Promoted("staging", "production")
	m.Verdict("production", state.OutcomeFailed)
	m.Reverted("production")
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ferry_reconcile_duration_seconds", env, 1},
		{"ferry_apply_changes_total", map[string]string{"environment": "staging", "action": "created"}, 3},
		{"ferry_last_applied_timestamp_seconds", env, 1_800_000_000.5},
		{"ferry_verdicts_total", map[string]string{"environment": "staging", "outcome": "Healthy"}, 1},
		{"ferry_environment_healthy", env, 1},
		{"ferry_promotions_total", map[string]string{"from": "staging", "to": "production"}, 1},
		{"ferry_verdicts_total", map[string]string{"environment": "production", "outcome": "Failed"}, 1},
		{"ferry_environment_healthy", map[string]string{"environment": "production"}, 0},
		{"ferry_reverts_total", map[string]string{"environment": "production"}, 1},
	} {
		if v, ok := value(t, reg, tc.name, tc.labels); !ok || v != tc.want {
			t.Errorf("%s%v = %v (exists %v), want %v", tc.name, tc.labels, v, ok, tc.want)
		}
	}
	if _, ok := value(t, reg, "ferry_apply_changes_total", map[string]string{"environment": "staging", "action": "deleted"}); ok {
		t.Error("adding zero changes created a series")
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering twice on one registry did not fail")
	}
	var none *Metrics
	none.Verdict("staging", state.OutcomeHealthy) // a nil *Metrics records nothing, without panicking
}
