package config_test

import (
	"reflect"
	"testing"
	"time"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/pipeline"
)

// pipeEnv writes one environment on its own branch of one repository.
func pipeEnv(name, rest string) string {
	return "  - {name: " + name + ", source: {url: https://git.example.com/app.git, branch: " + name + ", path: .}" + rest + "}\n"
}

func TestParsePipelineShapes(t *testing.T) {
	c, err := config.Parse([]byte("environments:\n" +
		pipeEnv("dev", ", promote: {to: staging}") +
		pipeEnv("staging", ", promote: {to: [prod-eu, prod-us], window: {days: [Mon, Tue, Wed, Thu], hours: \"09:00-16:00\", timeZone: Europe/Berlin}}") +
		pipeEnv("prod-eu", "") +
		pipeEnv("prod-us", ", requires: [prod-eu]") +
		pipeEnv("infra", ", cluster: {context: shared}") +
		pipeEnv("app", ", cluster: {context: shared}, dependsOn: [infra]")))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	staging, _ := c.Environment("staging")
	if !reflect.DeepEqual(staging.Promote.To, config.Names{"prod-eu", "prod-us"}) {
		t.Errorf("staging promote.to = %q", staging.Promote.To)
	}
	dev, _ := c.Environment("dev")
	if !reflect.DeepEqual(dev.Promote.To, config.Names{"staging"}) {
		t.Errorf("dev promote.to = %q; one name is a list of one", dev.Promote.To)
	}
	w, err := staging.Promote.Window.Parse()
	if err != nil {
		t.Fatalf("window: %v", err)
	}
	if got := w.String(); got != "Mon-Thu 09:00-16:00 Europe/Berlin" {
		t.Errorf("window = %q", got)
	}
	if w.Open(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)) { // a Friday
		t.Error("window open on a Friday")
	}
	if w, err := dev.Promote.Window.Parse(); w != nil || err != nil {
		t.Errorf("no window = %v, %v; want nil, nil", w, err)
	}
	want := []pipeline.Edge{
		{From: "dev", To: "staging", Kind: pipeline.EdgePromotes},
		{From: "staging", To: "prod-eu", Kind: pipeline.EdgePromotes},
		{From: "staging", To: "prod-us", Kind: pipeline.EdgePromotes},
		{From: "prod-eu", To: "prod-us", Kind: pipeline.EdgeRequires},
		{From: "infra", To: "app", Kind: pipeline.EdgeDependsOn},
	}
	if got := c.Graph().Edges(); !reflect.DeepEqual(got, want) {
		t.Errorf("Graph().Edges() = %+v, want %+v", got, want)
	}
}

func TestParsePipelineProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []problem
	}{
		{"fan-in", pipeEnv("main", ", promote: {to: [qa, perf]}") + pipeEnv("qa", ", promote: {to: prod}") + pipeEnv("perf", ", promote: {to: prod}") + pipeEnv("prod", ", requires: [qa, perf]"), nil},
		{"to is not a mapping", pipeEnv("a", ", promote: {to: {b: c}}") + pipeEnv("b", ""), []problem{
			{"environments[0].promote.to", "must be a name or a list of names, found a mapping"}}},
		{"empty list of targets", pipeEnv("a", ", promote: {to: []}"), []problem{
			{"environments[0].promote.to", "required: the environment to promote healthy commits to, or a list of them"}}},
		{"every bad target of a fan-out", pipeEnv("a", ", promote: {to: [b, a, x, b, '']}") + pipeEnv("b", ""), []problem{
			{"environments[0].promote.to[1]", `"a" is this environment`},
			{"environments[0].promote.to[2]", `"x" names no environment; known: "a", "b"`},
			{"environments[0].promote.to[3]", `"b" is listed twice`},
			{"environments[0].promote.to[4]", "must name an environment"},
		}},
		{"cycle through a fan-out", pipeEnv("a", ", promote: {to: [b, c]}") + pipeEnv("b", "") + pipeEnv("c", ", promote: {to: a}"), []problem{
			{"environments[0].promote.to", `promotion cycle "a" → "c" → "a"`}}},
		{"requires unknown, itself, twice", pipeEnv("a", ", promote: {to: b}") + pipeEnv("b", ", requires: [nope, b, a, a]"), []problem{
			{"environments[1].requires[0]", `"nope" names no environment`},
			{"environments[1].requires[1]", `"b" is this environment`},
			{"environments[1].requires[3]", `"a" is listed twice`},
		}},
		{"requires on an environment nothing promotes to", pipeEnv("a", "") + pipeEnv("b", ", requires: [a]"), []problem{
			{"environments[1].requires", `"b" receives no promotions, so there is no tree to gate`}}},
		{"requires a downstream environment", pipeEnv("a", ", promote: {to: b}") + pipeEnv("b", ", promote: {to: c}, requires: [c]") + pipeEnv("c", ""), []problem{
			{"environments[1].requires", `"c" receives trees only after "b", so "b" would wait forever`}}},
		{"requires an environment of another pipeline", pipeEnv("a", ", promote: {to: b}") + pipeEnv("b", ", requires: [y]") + pipeEnv("x", ", promote: {to: y}") + pipeEnv("y", ""), []problem{
			{"environments[1].requires", `"y" never receives the trees "b" receives`}}},
		{"waves requiring each other", pipeEnv("s", ", promote: {to: [a, b]}") + pipeEnv("a", ", requires: [b]") + pipeEnv("b", ", requires: [a]"), []problem{
			{"environments[1].requires", `requirement cycle "a" → "b" → "a"`}}},
		{"dependsOn unknown, itself, another cluster", pipeEnv("app", ", dependsOn: [nope, app, infra]") + pipeEnv("infra", ", cluster: {context: other}"), []problem{
			{"environments[0].dependsOn[0]", `"nope" names no environment`},
			{"environments[0].dependsOn[1]", `"app" is this environment`},
			{"environments[0].dependsOn[2]", `"infra" is applied to another cluster; dependsOn needs environments of the same cluster`},
		}},
		{"dependency cycle", pipeEnv("a", ", dependsOn: [b]") + pipeEnv("b", ", dependsOn: [c]") + pipeEnv("c", ", dependsOn: [a]"), []problem{
			{"environments[0].dependsOn", `dependency cycle "a" → "b" → "c" → "a"`}}},
		{"bad window", pipeEnv("a", ", promote: {to: b, window: {days: [Mon, Funday, Fri-Sun, Caturday], hours: 9-17, timeZone: Europe/Atlantis}}") + pipeEnv("b", ""), []problem{
			{"environments[0].promote.window.days[1]", `"Funday" is not a weekday`},
			{"environments[0].promote.window.days[3]", `"Caturday" is not a weekday`},
			{"environments[0].promote.window.hours", `"9-17" is not a span of hours: write HH:MM-HH:MM`},
			{"environments[0].promote.window.timeZone", `"Europe/Atlantis" is not a known time zone`},
		}},
		{"unknown window field", pipeEnv("a", ", promote: {to: b, window: {day: [Mon]}}") + pipeEnv("b", ""), []problem{
			{"environments[0].promote.window.day", `did you mean "days"?`}}},
		{"every problem of a pipeline at once",
			pipeEnv("dev", ", promote: {to: [staging, stagin]}") +
				pipeEnv("staging", ", promote: {to: dev, window: {hours: \"16:00-16:00\"}}") +
				pipeEnv("prod", ", requires: [dev]"), []problem{
				{"environments[0].promote.to[1]", `"stagin" names no environment`},
				{"environments[1].promote.window.hours", "starts and ends at the same time"},
				{"environments[0].promote.to", `promotion cycle "dev" → "staging" → "dev"`},
				{"environments[2].requires", `"prod" receives no promotions`},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte("environments:\n" + tt.yaml))
			checkProblems(t, err, tt.want)
			if (err == nil) != (c != nil) {
				t.Errorf("Parse returned config %v with error %v; want exactly one", c != nil, err)
			}
		})
	}
}
