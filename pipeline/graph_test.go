package pipeline_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/pipeline"
)

// waves is dev → staging → [prod-eu, prod-us], prod-us requiring prod-eu,
// and an app that depends on infra.
func waves() *pipeline.Graph {
	return pipeline.New([]pipeline.Node{
		{Name: "dev", To: []string{"staging"}},
		{Name: "staging", To: []string{"prod-eu", "prod-us"}},
		{Name: "prod-eu"},
		{Name: "prod-us", Requires: []string{"prod-eu"}},
		{Name: "infra"},
		{Name: "app", DependsOn: []string{"infra"}},
	})
}

func TestGraphQueries(t *testing.T) {
	g := waves()
	check := func(what string, got, want []string) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}
	check("Targets(staging)", g.Targets("staging"), []string{"prod-eu", "prod-us"})
	check("Sources(prod-us)", g.Sources("prod-us"), []string{"staging"})
	check("Upstream(prod-us)", g.Upstream("prod-us"), []string{"staging", "dev"})
	check("Downstream(dev)", g.Downstream("dev"), []string{"staging", "prod-eu", "prod-us"})
	check("Waiting(prod-eu)", g.Waiting("prod-eu"), []string{"prod-us"})
	check("Dependents(infra)", g.Dependents("infra"), []string{"app"})
	check("DependsOn(app)", g.DependsOn("app"), []string{"infra"})
	check("Names", g.Names(), []string{"dev", "staging", "prod-eu", "prod-us", "infra", "app"})
	want := []pipeline.Edge{
		{From: "dev", To: "staging", Kind: pipeline.EdgePromotes},
		{From: "staging", To: "prod-eu", Kind: pipeline.EdgePromotes},
		{From: "staging", To: "prod-us", Kind: pipeline.EdgePromotes},
		{From: "prod-eu", To: "prod-us", Kind: pipeline.EdgeRequires},
		{From: "infra", To: "app", Kind: pipeline.EdgeDependsOn},
	}
	if got := g.Edges(); !reflect.DeepEqual(got, want) {
		t.Errorf("Edges() = %+v, want %+v", got, want)
	}
}

func TestGraphCheck(t *testing.T) {
	tests := []struct {
		name  string
		nodes []pipeline.Node
		want  []pipeline.Problem
	}{
		{"waves are fine", nil, nil},
		{"fan-in is fine", []pipeline.Node{
			{Name: "main", To: []string{"qa", "perf"}},
			{Name: "qa", To: []string{"prod"}},
			{Name: "perf", To: []string{"prod"}},
			{Name: "prod", Requires: []string{"qa", "perf"}},
		}, nil},
		{"promotion cycle", []pipeline.Node{
			{Name: "a", To: []string{"b"}},
			{Name: "b", To: []string{"c"}},
			{Name: "c", To: []string{"a"}},
		}, []pipeline.Problem{{Env: "a", Field: "promote.to", Reason: `promotion cycle "a" → "b" → "c" → "a"; remove one of these promotions`}}},
		{"dependency cycle", []pipeline.Node{
			{Name: "a", DependsOn: []string{"b"}},
			{Name: "b", DependsOn: []string{"a"}},
		}, []pipeline.Problem{{Env: "a", Field: "dependsOn", Reason: `dependency cycle "a" → "b" → "a"; each would wait for the other`}}},
		{"requires without promotions into it", []pipeline.Node{
			{Name: "a"},
			{Name: "b", Requires: []string{"a"}},
		}, []pipeline.Problem{{Env: "b", Field: "requires", Reason: `"b" receives no promotions, so there is no tree to gate`}}},
		{"requires a downstream environment", []pipeline.Node{
			{Name: "a", To: []string{"b"}},
			{Name: "b", To: []string{"c"}, Requires: []string{"c"}},
			{Name: "c"},
		}, []pipeline.Problem{{Env: "b", Field: "requires", Reason: `"c" receives trees only after "b", so "b" would wait forever`}}},
		{"requires an unrelated environment", []pipeline.Node{
			{Name: "a", To: []string{"b"}},
			{Name: "b", Requires: []string{"x"}},
			{Name: "x"},
		}, []pipeline.Problem{{Env: "b", Field: "requires", Reason: `"x" never receives the trees "b" receives`}}},
		{"siblings requiring each other", []pipeline.Node{
			{Name: "s", To: []string{"a", "b"}},
			{Name: "a", Requires: []string{"b"}},
			{Name: "b", Requires: []string{"a"}},
		}, []pipeline.Problem{{Env: "a", Field: "requires", Reason: `requirement cycle "a" → "b" → "a"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := waves()
			if tt.nodes != nil {
				g = pipeline.New(tt.nodes)
			}
			got := g.Check()
			if len(got) != len(tt.want) {
				t.Fatalf("Check() = %+v, want %+v", got, tt.want)
			}
			for i, w := range tt.want {
				if got[i].Env != w.Env || got[i].Field != w.Field || !strings.Contains(got[i].Reason, w.Reason) {
					t.Errorf("problem %d = %+v, want %+v", i, got[i], w)
				}
			}
		})
	}
}

// seen builds the standings of one tree from a map; missing is Absent.
func seen(m map[string]pipeline.Seen) func(string) pipeline.Seen {
	return func(env string) pipeline.Seen {
		if s, ok := m[env]; ok {
			return s
		}
		return pipeline.Seen{Standing: pipeline.Absent}
	}
}

func TestAdmit(t *testing.T) {
	fanIn := pipeline.New([]pipeline.Node{
		{Name: "main", To: []string{"qa", "perf"}},
		{Name: "qa", To: []string{"prod"}},
		{Name: "perf", To: []string{"prod"}},
		{Name: "prod", Requires: []string{"qa", "perf"}},
	})
	office, err := pipeline.ParseWindow([]string{"Mon-Thu"}, "09:00-16:00", "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	thursdayMorning := utc("2026-12-03T09:00:00Z")
	fridayMorning := utc("2026-12-04T09:00:00Z")
	healthy := pipeline.Seen{Standing: pipeline.Healthy}
	tests := []struct {
		name   string
		g      *pipeline.Graph
		env    string
		seen   map[string]pipeline.Seen
		window *pipeline.Window
		now    time.Time
		want   pipeline.Decision
	}{
		{"no requirements enter", waves(), "prod-eu", nil, nil, fridayMorning, pipeline.Decision{Verdict: pipeline.Enter}},
		{"the wave waits for the first", waves(), "prod-us", nil, nil, fridayMorning,
			pipeline.Decision{Verdict: pipeline.Wait, Reason: "waiting: prod-eu has not received it"}},
		{"the wave waits while the first verifies", waves(), "prod-us", map[string]pipeline.Seen{"prod-eu": {Standing: pipeline.Verifying}}, nil, fridayMorning,
			pipeline.Decision{Verdict: pipeline.Wait, Reason: "waiting: prod-eu is verifying it"}},
		{"the wave enters once the first is healthy", waves(), "prod-us", map[string]pipeline.Seen{"prod-eu": healthy}, nil, fridayMorning,
			pipeline.Decision{Verdict: pipeline.Enter}},
		{"a failure upstream stops the wave", waves(), "prod-us", map[string]pipeline.Seen{"prod-eu": {Standing: pipeline.Failed, Reason: "Deployment web: CrashLoopBackOff"}}, nil, fridayMorning,
			pipeline.Decision{Verdict: pipeline.Stop, Reason: "stopped at prod-eu: Deployment web: CrashLoopBackOff"}},
		{"fan-in waits for both", fanIn, "prod", map[string]pipeline.Seen{"qa": healthy}, nil, fridayMorning,
			pipeline.Decision{Verdict: pipeline.Wait, Reason: "waiting: perf has not received it"}},
		{"fan-in enters once both are healthy", fanIn, "prod", map[string]pipeline.Seen{"qa": healthy, "perf": healthy}, nil, fridayMorning,
			pipeline.Decision{Verdict: pipeline.Enter}},
		{"a closed window holds a ready tree", fanIn, "prod", map[string]pipeline.Seen{"qa": healthy, "perf": healthy}, office, fridayMorning,
			pipeline.Decision{Verdict: pipeline.Wait, Reason: "waiting for the promotion window Mon-Thu 09:00-16:00 Europe/Berlin, opens Mon 09:00 CET", Until: utc("2026-12-07T08:00:00Z")}},
		{"an open window lets it in", fanIn, "prod", map[string]pipeline.Seen{"qa": healthy, "perf": healthy}, office, thursdayMorning,
			pipeline.Decision{Verdict: pipeline.Enter}},
		{"requirements come before the window", fanIn, "prod", nil, office, fridayMorning,
			pipeline.Decision{Verdict: pipeline.Wait, Reason: "waiting: qa has not received it, perf has not received it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.g.Admit(tt.env, seen(tt.seen), tt.window, tt.now)
			if got.Verdict != tt.want.Verdict || got.Reason != tt.want.Reason || !got.Until.Equal(tt.want.Until) {
				t.Errorf("Admit(%s) = %+v, want %+v", tt.env, got, tt.want)
			}
		})
	}
}

func TestHalts(t *testing.T) {
	g := waves()
	got := g.Halts(seen(map[string]pipeline.Seen{
		"dev":     {Standing: pipeline.Healthy},
		"staging": {Standing: pipeline.Failed, Reason: "reverted by 1a2b3c4: Deployment web: CrashLoopBackOff"},
	}))
	if len(got) != 1 {
		t.Fatalf("Halts = %+v, want one", got)
	}
	want := "stopped at staging (reverted by 1a2b3c4: Deployment web: CrashLoopBackOff); prod-eu, prod-us will not receive it"
	if got[0].String() != want {
		t.Errorf("Halt = %q, want %q", got[0].String(), want)
	}
	if h := g.Halts(seen(map[string]pipeline.Seen{"dev": {Standing: pipeline.Healthy}})); len(h) != 0 {
		t.Errorf("Halts of a travelling tree = %+v, want none", h)
	}
}

func TestReady(t *testing.T) {
	tests := []struct {
		name   string
		deps   []pipeline.Dep
		ready  bool
		reason string
	}{
		{"no dependencies", nil, true, ""},
		{"healthy at its tip", []pipeline.Dep{{Name: "infra", Phase: "Healthy", Tip: "1a2b3c4d5e", Healthy: "1a2b3c4d5e"}}, true, ""},
		{"verifying its tip", []pipeline.Dep{{Name: "infra", Phase: "Verifying", Tip: "1a2b3c4d5e", Healthy: "0000000aaa"}}, false, "infra is Verifying 1a2b3c4"},
		{"healthy at an older commit", []pipeline.Dep{{Name: "infra", Phase: "Healthy", Tip: "1a2b3c4d5e", Healthy: "0000000aaa"}}, false, "infra is behind 1a2b3c4"},
		{"never reconciled", []pipeline.Dep{{Name: "infra"}}, false, "infra is not reconciled"},
		{"the first not ready is named", []pipeline.Dep{
			{Name: "crds", Phase: "Healthy", Tip: "aaaaaaa1", Healthy: "aaaaaaa1"},
			{Name: "infra", Phase: "Failed", Tip: "bbbbbbb2", Healthy: "aaaaaaa1"},
		}, false, "infra is Failed bbbbbbb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready, reason := pipeline.Ready(tt.deps)
			if ready != tt.ready || reason != tt.reason {
				t.Errorf("Ready = %v, %q; want %v, %q", ready, reason, tt.ready, tt.reason)
			}
		})
	}
}
