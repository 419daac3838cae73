package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/health"
)

// env is one valid environment whose health mapping is body, indented
// under "health:".
func env(body string) string {
	return `
environments:
  - name: dev
    source: {url: https://git.example.com/app.git, branch: main, path: .}
    health:
` + body
}

func TestParseHealthChecks(t *testing.T) {
	c, err := config.Parse([]byte(env(`
      timeout: 2m
      checks:
        - apiVersion: example.com/v1
          kind: Widget
          current: "status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')"
          failed: "status.?phase.orValue('') == 'Failed'"
        - {group: db.example.com, kind: Database, current: "has(status.ready) && status.ready"}
        - {apiVersion: v1, kind: ConfigMap, current: "has(object.data)"}
      http:
        - url: http://web.dev.svc/healthz
        - {url: "https://api.example.com/ready", status: 204, body: "^ok$", timeout: 2s}
`)))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := config.Health{
		Timeout: 2 * time.Minute, Interval: config.DefaultHealthInterval,
		Checks: []config.HealthCheck{
			{
				APIVersion: "example.com/v1", Kind: "Widget",
				Current: "status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')",
				Failed:  "status.?phase.orValue('') == 'Failed'",
			},
			{Group: "db.example.com", Kind: "Database", Current: "has(status.ready) && status.ready"},
			{APIVersion: "v1", Kind: "ConfigMap", Current: "has(object.data)"},
		},
		HTTP: []config.HTTPCheck{
			{URL: "http://web.dev.svc/healthz", Status: config.DefaultHTTPStatus, Timeout: config.DefaultHTTPTimeout},
			{URL: "https://api.example.com/ready", Status: 204, Body: "^ok$", Timeout: 2 * time.Second},
		},
	}
	got := c.Environments[0].Health
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("health =\n%+v\nwant\n%+v", got, want)
	}

	opts, err := got.Options()
	if err != nil {
		t.Fatalf("Options: %v", err)
	}
	if opts.Timeout != 2*time.Minute || opts.Interval != config.DefaultHealthInterval || opts.Soak != 0 {
		t.Errorf("Options durations = %s %s %s", opts.Timeout, opts.Interval, opts.Soak)
	}
	wantSpecs := []health.CheckSpec{
		{GroupKind: schema.GroupKind{Group: "example.com", Kind: "Widget"}, Version: "v1", Current: want.Checks[0].Current, Failed: want.Checks[0].Failed},
		{GroupKind: schema.GroupKind{Group: "db.example.com", Kind: "Database"}, Current: want.Checks[1].Current},
		{GroupKind: schema.GroupKind{Kind: "ConfigMap"}, Version: "v1", Current: want.Checks[2].Current},
	}
	var specs []health.CheckSpec
	for _, ch := range opts.Checks {
		specs = append(specs, ch.Spec())
	}
	if !reflect.DeepEqual(specs, wantSpecs) {
		t.Errorf("Options checks =\n%+v\nwant\n%+v", specs, wantSpecs)
	}
	if len(opts.HTTP) != 2 || opts.HTTP[0].Body != nil || opts.HTTP[1].Body.String() != "^ok$" ||
		opts.HTTP[1].Status != 204 || opts.HTTP[1].Timeout != 2*time.Second || opts.HTTP[0].URL != "http://web.dev.svc/healthz" {
		t.Errorf("Options HTTP = %+v", opts.HTTP)
	}
}

func TestParseHealthCheckProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []problem
	}{
		{"unknown keys", env(`
      checks: [{apiVersion: example.com/v1, kind: Widget, current: "true", ready: "true"}]
      http: [{url: "http://127.0.0.1/", headers: {}}]
`), []problem{
			{"environments[0].health.checks[0].ready", "unknown field; known fields: apiVersion, group, kind, current, failed"},
			{"environments[0].health.http[0].headers", "unknown field; known fields: url, status, body, timeout"},
		}},
		{"wrong shapes", env(`
      checks: {kind: Widget}
      http:
        - {url: "http://127.0.0.1/", status: ok, timeout: 5}
        - {url: "http://127.0.0.1/", status: 200.5}
`), []problem{
			{"environments[0].health.checks", "must be a list, found a mapping"},
			{"environments[0].health.http[0].status", `must be a whole number, found "ok"`},
			{"environments[0].health.http[0].timeout", `invalid duration "5"`},
			{"environments[0].health.http[1].status", `must be a whole number, found "200.5"`},
		}},
		{"CEL that does not compile", env(`
      checks:
        - {apiVersion: example.com/v1, kind: Widget, current: "status.conditions.exists(c, ", failed: "statsu.phase == 'Failed'"}
        - {apiVersion: example.com/v1, kind: Gadget, current: "status.phase"}
        - {apiVersion: example.com/v1, kind: Gizmo, current: "'Ready'"}
`), []problem{
			{"environments[0].health.checks[0].current", "invalid CEL: 1:"},
			{"environments[0].health.checks[0].failed", "invalid CEL: 1:1: undeclared reference to 'statsu'"},
			{"environments[0].health.checks[2].current", "invalid CEL: gives string, want a bool"},
		}},
		{"kinds", env(`
      checks:
        - {kind: Widget, current: "true"}
        - {apiVersion: example.com/v1, group: example.com, kind: Widget, current: "true"}
        - {apiVersion: example.com, kind: Widget, current: "true"}
        - {apiVersion: example.com/v1/beta, kind: Widget, current: "true"}
        - {group: Example_Com, kind: Widget, current: "true"}
        - {apiVersion: example.com/v1}
        - {group: example.com, kind: Gadget, current: "true"}
        - {apiVersion: example.com/v2, kind: Gadget, current: "true"}
`), []problem{
			{"environments[0].health.checks[0].apiVersion", "required: the kind's API version, such as example.com/v1, or group: example.com"},
			{"environments[0].health.checks[1].group", "set apiVersion or group, not both"},
			{"environments[0].health.checks[2].apiVersion", `"example.com" has no version: write example.com/<version>, or group: example.com`},
			{"environments[0].health.checks[3].apiVersion", `"example.com/v1/beta" is not an API version`},
			{"environments[0].health.checks[4].group", `"Example_Com" is not an API group`},
			{"environments[0].health.checks[5].kind", "required: the kind judged"},
			{"environments[0].health.checks[5].current", "required: a CEL expression"},
			{"environments[0].health.checks[7].kind", "duplicate of environments[0].health.checks[6] (Gadget.example.com): give one check per kind"},
		}},
		{"http", env(`
      timeout: 1m
      http:
        - {}
        - {url: "web.dev.svc/healthz"}
        - {url: "ftp://127.0.0.1/", status: 99}
        - {url: "http://127.0.0.1/", status: 600, body: "(ready", timeout: -1s}
        - {url: "http://127.0.0.1/", timeout: 0s}
        - {url: "http://127.0.0.1/", timeout: 1m}
`), []problem{
			{"environments[0].health.http[0].url", "required: the URL to GET"},
			{"environments[0].health.http[1].url", `"web.dev.svc/healthz" must be an http:// or https:// URL`},
			{"environments[0].health.http[2].url", `"ftp://127.0.0.1/" must be an http:// or https:// URL`},
			{"environments[0].health.http[2].status", "99 is not an HTTP status code: use 100 to 599"},
			{"environments[0].health.http[3].status", "600 is not an HTTP status code"},
			{"environments[0].health.http[3].body", "invalid regular expression: error parsing regexp: missing closing ): `(ready`"},
			{"environments[0].health.http[3].timeout", "must be positive, such as 5s"},
			{"environments[0].health.http[4].timeout", "must be positive"},
			{"environments[0].health.http[5].timeout", "1m0s must be shorter than health.timeout (1m0s)"},
		}},
		{"empty lists", env(`
      checks: []
      http: ~
`), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.yaml))
			checkProblems(t, err, tt.want)
			if (err == nil) != (c != nil) {
				t.Errorf("Parse returned config %v with error %v; want exactly one", c != nil, err)
			}
		})
	}
}

// TestHealthOptionsRefuses pins that a Health built in Go without
// validation gives no options rather than options missing a check.
func TestHealthOptionsRefuses(t *testing.T) {
	h := config.Health{
		Timeout: time.Minute, Interval: time.Second,
		Checks: []config.HealthCheck{{APIVersion: "example.com/v1", Kind: "Widget", Current: "status.ready ==", Failed: "nope"}},
		HTTP:   []config.HTTPCheck{{URL: "http://127.0.0.1/", Status: 200, Body: "(", Timeout: time.Second}},
	}
	opts, err := h.Options()
	if err == nil || len(opts.Checks) != 0 || len(opts.HTTP) != 0 {
		t.Fatalf("Options = %+v, %v; want an error and no options", opts, err)
	}
	for _, want := range []string{"health.checks[0].current: 1:", "health.checks[0].failed: 1:1: undeclared reference to 'nope'", "health.http[0].body: error parsing regexp"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Options error %q does not contain %q", err, want)
		}
	}
}
