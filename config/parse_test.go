package config_test

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/config"
)

// problem is an expected FieldError: its exact path and a fragment of its
// reason.
type problem struct {
	path, reason string
}

// fieldErrors returns the FieldErrors in err, in order.
func fieldErrors(err error) []*config.FieldError {
	var out []*config.FieldError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case *config.FieldError:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

// checkProblems asserts that err holds exactly the problems want, in order,
// and nothing else.
func checkProblems(t *testing.T, err error, want []problem) {
	t.Helper()
	got := fieldErrors(err)
	var gotPaths, wantPaths []string
	for _, fe := range got {
		gotPaths = append(gotPaths, fe.Path)
	}
	for _, w := range want {
		wantPaths = append(wantPaths, w.path)
	}
	if !reflect.DeepEqual(gotPaths, wantPaths) {
		t.Fatalf("problem paths = %q, want %q; error:\n%v", gotPaths, wantPaths, err)
	}
	for i, w := range want {
		if !strings.Contains(got[i].Reason, w.reason) {
			t.Errorf("%s: reason %q does not contain %q", w.path, got[i].Reason, w.reason)
		}
	}
	if err != nil && len(got) > 0 {
		// One problem per line, nothing else: what `ferry run` prints.
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != len(got) {
			t.Fatalf("error has %d lines for %d problems:\n%v", len(lines), len(got), err)
		}
		for i, fe := range got {
			if lines[i] != fe.Error() {
				t.Errorf("line %d = %q, want %q", i, lines[i], fe.Error())
			}
		}
	}
}

func TestParseDesignExample(t *testing.T) {
	data, err := os.ReadFile("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	yes := true
	want := &config.Config{
		Environments: []config.Environment{{
			Name: "staging",
			Source: config.Source{
				URL: "https://git.example.com/org/app.git", Branch: "main", Path: "envs/staging",
				Interval: time.Minute, Auth: config.Auth{TokenFile: "/var/run/ferry/git-token"},
			},
			Namespace:          "staging",
			Health:             config.Health{Timeout: 5 * time.Minute, Soak: time.Minute, Interval: 2 * time.Second},
			OnFailure:          "revert",
			Promote:            &config.Promote{To: config.Names{"production"}, Mode: "push"},
			Prune:              &yes,
			MaxPruneFraction:   0.5,
			DriftCheckInterval: config.DefaultDriftCheckInterval,
			Scope:              config.Scope{Namespaces: []string{"staging"}, ClusterKinds: []string{"Namespace"}},
			Limits:             config.Limits{MaxFileBytes: config.DefaultMaxFileBytes, MaxObjects: config.DefaultMaxObjects, MaxRenderBytes: config.DefaultMaxRenderBytes, RenderTimeout: config.DefaultRenderTimeout},
		}, {
			Name: "production",
			Source: config.Source{
				URL: "https://git.example.com/org/app.git", Branch: "production", Path: "envs/production",
				Interval: time.Minute,
			},
			Namespace:          "production",
			Health:             config.Health{Timeout: 10 * time.Minute, Soak: 5 * time.Minute, Interval: 2 * time.Second},
			OnFailure:          "revert",
			Prune:              &yes,
			MaxPruneFraction:   0.5,
			DriftCheckInterval: config.DefaultDriftCheckInterval,
			Scope:              config.Scope{Namespaces: []string{"production"}, ClusterKinds: []string{"Namespace"}},
			Limits:             config.Limits{MaxFileBytes: config.DefaultMaxFileBytes, MaxObjects: config.DefaultMaxObjects, MaxRenderBytes: config.DefaultMaxRenderBytes, RenderTimeout: config.DefaultRenderTimeout},
		}},
		Report:    config.Report{Provider: "github", TokenFile: "/var/run/ferry/token"},
		Server:    config.Server{Addr: ":9090"},
		Namespace: "ferry-system",
		Log:       config.Log{Level: "info"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse(design example) =\n%+v\nwant\n%+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate after Parse: %v", err)
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := config.Parse([]byte(`
environments:
  - name: dev
    source: {url: https://git.example.com/app.git, branch: main, path: .}
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	yes := true
	want := &config.Config{
		Environments: []config.Environment{{
			Name:               "dev",
			Source:             config.Source{URL: "https://git.example.com/app.git", Branch: "main", Path: ".", Interval: config.DefaultInterval},
			Namespace:          "dev", // the environment's name
			Health:             config.Health{Timeout: config.DefaultHealthTimeout, Interval: config.DefaultHealthInterval},
			OnFailure:          config.OnFailureHold,
			Prune:              &yes,
			MaxPruneFraction:   config.DefaultMaxPruneFraction,
			DriftCheckInterval: config.DefaultDriftCheckInterval,
			Scope:              config.Scope{Namespaces: []string{"dev"}, ClusterKinds: []string{"Namespace"}}, // the namespace; its Namespace
			Limits:             config.Limits{MaxFileBytes: config.DefaultMaxFileBytes, MaxObjects: config.DefaultMaxObjects, MaxRenderBytes: config.DefaultMaxRenderBytes, RenderTimeout: config.DefaultRenderTimeout},
		}},
		Server:    config.Server{Addr: config.DefaultAddr},
		Namespace: config.DefaultNamespace,
		Log:       config.Log{Level: config.DefaultLogLevel},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", c, want)
	}
	if !c.Environments[0].PruneEnabled() {
		t.Error("PruneEnabled() = false by default")
	}
}

// TestParseExplicitValues pins that a value the file sets is kept, even
// where it equals the zero value a default would replace.
func TestParseExplicitValues(t *testing.T) {
	c, err := config.Parse([]byte(`
environments:
  - name: dev
    source: {url: https://git.example.com/app.git, branch: main, path: envs/dev, interval: 30s}
    cluster: {kubeconfig: /etc/kube/dev.yaml, context: dev}
    namespace: apps
    health: {timeout: 1m, soak: 0s, interval: 1s}
    prune: false
    maxPruneFraction: 1
    force: true
    promote: {to: prod, requireSoak: false}
  - name: prod
    source: {url: https://git.example.com/app.git, branch: prod, path: envs/prod}
    prune: ~          # null: the default
    promote:          # null: no promotion
server: {addr: "127.0.0.1:9090", externalURL: https://ferry.example.com}
namespace: ferry
log: {level: debug}
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	dev, ok := c.Environment("dev")
	if !ok {
		t.Fatal(`Environment("dev") not found`)
	}
	if dev.PruneEnabled() || dev.Prune == nil {
		t.Errorf("prune: false read as %v", dev.Prune)
	}
	if !reflect.DeepEqual(dev.Health, config.Health{Timeout: time.Minute, Interval: time.Second}) {
		t.Errorf("health = %+v", dev.Health)
	}
	if dev.Source.Interval != 30*time.Second || dev.Namespace != "apps" || dev.MaxPruneFraction != 1 || !dev.Force {
		t.Errorf("dev = %+v", dev)
	}
	if dev.Cluster != (config.Cluster{Kubeconfig: "/etc/kube/dev.yaml", Context: "dev"}) {
		t.Errorf("cluster = %+v", dev.Cluster)
	}
	if dev.Promote == nil || !reflect.DeepEqual(*dev.Promote, config.Promote{To: config.Names{"prod"}, Mode: config.PromotePush}) {
		t.Errorf("promote = %+v", dev.Promote)
	}
	prod, _ := c.Environment("prod")
	if !prod.PruneEnabled() || prod.Promote != nil {
		t.Errorf("prod: prune %v, promote %+v; want defaults", prod.PruneEnabled(), prod.Promote)
	}
	if c.Server != (config.Server{Addr: "127.0.0.1:9090", ExternalURL: "https://ferry.example.com"}) || c.Namespace != "ferry" || c.Log.Level != "debug" {
		t.Errorf("top level = %+v %q %+v", c.Server, c.Namespace, c.Log)
	}
	if _, ok := c.Environment("qa"); ok {
		t.Error(`Environment("qa") found`)
	}
}

// TestParseMergeKeys pins YAML anchors and merge keys: shared settings are
// written once, a mapping's own keys win, and merged keys are checked like
// any other.
func TestParseMergeKeys(t *testing.T) {
	c, err := config.Parse([]byte(`
environments:
  - name: staging
    source: &src
      url: https://git.example.com/app.git
      branch: main
      path: envs/staging
      auth: {tokenFile: /run/token}
    health: &health {timeout: 2m, soak: 30s}
  - name: production
    source:
      <<: *src
      branch: production
      path: envs/production
    health: {<<: [{soak: 1m}, *health]}
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	prod, _ := c.Environment("production")
	want := config.Source{URL: "https://git.example.com/app.git", Branch: "production", Path: "envs/production",
		Interval: time.Minute, Auth: config.Auth{TokenFile: "/run/token"}}
	if prod.Source != want {
		t.Errorf("merged source = %+v, want %+v", prod.Source, want)
	}
	if prod.Health.Soak != time.Minute || prod.Health.Timeout != 2*time.Minute {
		t.Errorf("merged health = %+v: the first merge source must win", prod.Health)
	}

	_, err = config.Parse([]byte(`
base: &base {url: https://git.example.com/app.git, brnch: main}
`))
	checkProblems(t, err, []problem{
		{"base", "unknown field"},
		{"environments", "required"},
	})
	_, err = config.Parse([]byte(`
environments:
  - name: dev
    source:
      <<: {url: https://git.example.com/app.git, brnch: main}
      path: envs/dev
`))
	checkProblems(t, err, []problem{
		{"environments[0].source.brnch", `did you mean "branch"?`},
		{"environments[0].source.branch", "required"},
	})
}

// TestParseMergeCycle pins that a mapping merging itself, directly or
// through others, is read once rather than forever.
func TestParseMergeCycle(t *testing.T) {
	_, err := config.Parse([]byte(`
environments:
  - &a
    name: dev
    source: {url: https://git.example.com/app.git, branch: main, path: .}
    <<: [*a, *a]
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []problem
	}{
		// The whole file.
		{"empty file", ``, []problem{{"environments", "required: list at least one environment"}}},
		{"no environments", `namespace: ferry`, []problem{{"environments", "required"}}},
		{"null environments", `environments:`, []problem{{"environments", "required"}}},
		{"not a mapping", `- staging`, []problem{{"", "must be a mapping of fields, found a list"}}},
		{"environments not a list", `environments: {name: staging}`, []problem{{"environments", "must be a list, found a mapping"}}},

		// Unknown keys.
		{"unknown top-level key", `
environments:
  - {name: dev, source: {url: https://git.example.com/app.git, branch: main, path: .}}
namspace: ferry
`, []problem{{"namspace", `unknown field; did you mean "namespace"?`}}},
		{"typo hides a required field", `
environments:
  - name: dev
    sourec: {url: https://git.example.com/app.git, branch: main, path: .}
`, []problem{
			{"environments[0].sourec", `unknown field; did you mean "source"?`},
			{"environments[0].source.url", "required"},
			{"environments[0].source.branch", "required"},
			{"environments[0].source.path", "required"},
		}},
		{"key in the wrong case", `
environments:
  - name: dev
    source: {url: https://git.example.com/app.git, branch: main, path: .}
    onfailure: revert
`, []problem{{"environments[0].onfailure", `did you mean "onFailure"? (field names are case-sensitive)`}}},
		{"unknown key deep down", `
environments:
  - name: dev
    source: {url: https://git.example.com/app.git, branch: main, path: ., auth: {tokenFiel: /t}}
    health: {timeout: 5m, soakTime: 1m}
report: {provider: github, tokenFile: /t, colour: blue}
`, []problem{
			{"environments[0].source.auth.tokenFiel", `did you mean "tokenFile"?`},
			{"environments[0].health.soakTime", "known fields: timeout, soak, interval"},
			{"report.colour", "known fields: provider, url, tokenFile, webhookSecretFile"},
		}},
		{"key needing quotes", `
environments:
  - name: dev
    source: {url: https://git.example.com/app.git, branch: main, path: .}
    "on failure": revert
`, []problem{{`environments[0]."on failure"`, "unknown field"}}},
		{"duplicate key", `
environments:
  - name: dev
    name: qa
    source: {url: https://git.example.com/app.git, branch: main, path: .}
`, []problem{{"environments[0].name", "duplicate field"}}},

		// Shapes and scalars.
		{"wrong shapes", `
environments:
  - name: [dev]
    source: {url: https://git.example.com/app.git, branch: main, path: .}
    health: 5m
    prune: yes
    force: 1
    maxPruneFraction: half
    promote: prod
`, []problem{
			{"environments[0].name", `must be a string, found a list`},
			{"environments[0].health", `must be a mapping of fields, found "5m"`},
			{"environments[0].prune", `must be true or false, found "yes"`},
			{"environments[0].force", `must be true or false, found "1"`},
			{"environments[0].maxPruneFraction", `must be a number, found "half"`},
			{"environments[0].promote", `must be a mapping of fields, found "prod"`},
		}},

		// Source.
		{"source missing", `
environments:
  - name: dev
`, []problem{
			{"environments[0].source.url", "required"},
			{"environments[0].source.branch", "required"},
			{"environments[0].source.path", "required"},
		}},
		{"urls", `
environments:
  - {name: a, source: {url: ftp://git.example.com/app.git, branch: main, path: .}}
  - {name: b, source: {url: git.example.com/app.git, branch: main, path: .}}
  - {name: c, source: {url: "https://me:secret@git.example.com/app.git", branch: main, path: .}}
  - {name: d, source: {url: "https:///app.git", branch: main, path: .}}
  - {name: e, source: {url: "file:///srv/git/app.git", branch: main, path: .}}
`, []problem{
			{"environments[0].source.url", `scheme "ftp" is not supported: use https://, http://, ssh:// or git@host:path`},
			{"environments[1].source.url", "is not a git URL"},
			{"environments[2].source.url", "must not hold credentials; put them in source.auth"},
			{"environments[3].source.url", "has no host"},
			{"environments[4].source.url", `scheme "file" is not supported`},
		}},
		{"paths", `
environments:
  - {name: a, source: {url: https://git.example.com/app.git, branch: main, path: /envs/a}}
  - {name: b, source: {url: https://git.example.com/app.git, branch: main, path: envs/../../secrets}}
  - {name: c, source: {url: https://git.example.com/app.git, branch: main, path: envs/c/}}
  - {name: d, source: {url: https://git.example.com/app.git, branch: main, path: ./envs/d}}
  - {name: e, source: {url: https://git.example.com/app.git, branch: main, path: ..}}
`, []problem{
			{"environments[0].source.path", "must be relative to the repository root"},
			{"environments[1].source.path", "leaves the repository"},
			{"environments[2].source.path", `is not clean: write "envs/c"`},
			{"environments[3].source.path", `is not clean: write "envs/d"`},
			{"environments[4].source.path", "leaves the repository"},
		}},
		{"branches", `
environments:
  - {name: a, source: {url: https://git.example.com/app.git, branch: refs/heads/main, path: .}}
  - {name: b, source: {url: https://git.example.com/app.git, branch: main branch, path: .}}
  - {name: c, source: {url: https://git.example.com/app.git, branch: release..1, path: .}}
  - {name: d, source: {url: https://git.example.com/app.git, branch: -main, path: .}}
`, []problem{
			{"environments[0].source.branch", `without refs/heads/, such as "main"`},
			{"environments[1].source.branch", "not a valid git branch name"},
			{"environments[2].source.branch", "not a valid git branch name"},
			{"environments[3].source.branch", "not a valid git branch name"},
		}},

		// Durations.
		{"unparsable durations", `
environments:
  - name: dev
    source: {url: https://git.example.com/app.git, branch: main, path: ., interval: 5 minutes}
    health: {timeout: 10, soak: [1m]}
`, []problem{
			{"environments[0].source.interval", `invalid duration "5 minutes": write a number with a unit, such as 30s, 5m or 1h30m`},
			{"environments[0].health.timeout", `invalid duration "10"`},
			{"environments[0].health.soak", "must be a duration such as 30s, 5m or 1h30m, found a list"},
		}},
		{"zero and negative durations", `
environments:
  - name: dev
    source: {url: https://git.example.com/app.git, branch: main, path: ., interval: 0s}
    health: {timeout: 0s, interval: -1s, soak: -1m}
`, []problem{
			{"environments[0].source.interval", "must be positive"},
			{"environments[0].health.timeout", "must be positive"},
			{"environments[0].health.interval", "must be positive"},
			{"environments[0].health.soak", "must not be negative"},
		}},
		{"soak and poll not shorter than timeout", `
environments:
  - name: dev
    source: {url: https://git.example.com/app.git, branch: main, path: .}
    health: {timeout: 5m, interval: 5m, soak: 10m}
`, []problem{
			{"environments[0].health.interval", "5m0s must be shorter than health.timeout (5m0s)"},
			{"environments[0].health.soak", "10m0s must be shorter than health.timeout (5m0s)"},
		}},

		// Names and namespaces.
		{"duplicate names", `
environments:
  - {name: dev, source: {url: https://git.example.com/app.git, branch: main, path: a}}
  - {name: qa, source: {url: https://git.example.com/app.git, branch: main, path: b}}
  - {name: dev, source: {url: https://git.example.com/app.git, branch: main, path: c}}
`, []problem{{"environments[2].name", `duplicate of environments[0].name "dev"; names must be unique`}}},
		{"names not DNS labels", `
environments:
  - {name: Staging, source: {url: https://git.example.com/app.git, branch: main, path: .}}
  - {name: staging_1, source: {url: https://git.example.com/app.git, branch: main, path: .}}
  - {name: a123456789012345678901234567890123456789012345678901234567890123, source: {url: https://git.example.com/app.git, branch: main, path: .}}
  - {source: {url: https://git.example.com/app.git, branch: main, path: .}}
`, []problem{
			{"environments[0].name", `"Staging" is not a DNS-1123 label`},
			{"environments[1].name", "is not a DNS-1123 label"},
			{"environments[2].name", "must be no more than 63 characters"},
			{"environments[3].name", "required"},
		}},
		{"bad namespaces", `
environments:
  - {name: dev, namespace: Apps, source: {url: https://git.example.com/app.git, branch: main, path: .}}
namespace: ferry.system
`, []problem{
			{"environments[0].namespace", `"Apps" is not a DNS-1123 label`},
			{"namespace", `"ferry.system" is not a DNS-1123 label`},
		}},
		{"empty namespace", `
environments:
  - {name: dev, source: {url: https://git.example.com/app.git, branch: main, path: .}}
namespace: ""
`, []problem{{"namespace", "required"}}},

		// Enumerations and ranges.
		{"enumerations", `
environments:
  - name: dev
    source: {url: https://git.example.com/app.git, branch: main, path: .}
    onFailure: rollback
report: {provider: bitbucket}
log: {level: verbose}
`, []problem{
			{"environments[0].onFailure", `unknown value "rollback"; use revert or hold`},
			{"report.provider", `unknown provider "bitbucket"; use github, gitlab, gitea or webhook`},
			{"log.level", `unknown level "verbose"; use debug, info, warn or error`},
		}},
		{"maxPruneFraction out of range", `
environments:
  - {name: a, maxPruneFraction: 0, source: {url: https://git.example.com/app.git, branch: main, path: .}}
  - {name: b, maxPruneFraction: 1.5, source: {url: https://git.example.com/app.git, branch: main, path: .}}
  - {name: c, maxPruneFraction: -0.1, source: {url: https://git.example.com/app.git, branch: main, path: .}}
  - {name: d, maxPruneFraction: .nan, source: {url: https://git.example.com/app.git, branch: main, path: .}}
`, []problem{
			{"environments[0].maxPruneFraction", "must be greater than 0 and at most 1"},
			{"environments[1].maxPruneFraction", "1.5 is out of range"},
			{"environments[2].maxPruneFraction", "-0.1 is out of range"},
			{"environments[3].maxPruneFraction", "NaN is out of range"},
		}},

		// Promotion.
		{"promote to nothing, to itself, to no one", `
environments:
  - {name: a, promote: {to: prod}, source: {url: https://git.example.com/app.git, branch: a, path: .}}
  - {name: b, promote: {to: b}, source: {url: https://git.example.com/app.git, branch: b, path: .}}
  - {name: c, promote: {mode: push}, source: {url: https://git.example.com/app.git, branch: c, path: .}}
`, []problem{
			{"environments[0].promote.to", `"prod" names no environment; known: "a", "b", "c"`},
			{"environments[1].promote.to", `"b" is this environment`},
			{"environments[2].promote.to", "required"},
		}},
		{"promotion cycle", `
environments:
  - {name: a, promote: {to: b}, source: {url: https://git.example.com/app.git, branch: a, path: .}}
  - {name: b, promote: {to: a}, source: {url: https://git.example.com/app.git, branch: b, path: .}}
`, []problem{{"environments[0].promote.to", `promotion cycle "a" → "b" → "a"; remove one of these promotions`}}},
		{"longer promotion cycle behind a chain", `
environments:
  - {name: a, promote: {to: b}, source: {url: https://git.example.com/app.git, branch: a, path: .}}
  - {name: b, promote: {to: c}, source: {url: https://git.example.com/app.git, branch: b, path: .}}
  - {name: c, promote: {to: d}, source: {url: https://git.example.com/app.git, branch: c, path: .}}
  - {name: d, promote: {to: b}, source: {url: https://git.example.com/app.git, branch: d, path: .}}
`, []problem{{"environments[1].promote.to", `promotion cycle "b" → "c" → "d" → "b"`}}},
		{"promote within one branch", `
environments:
  - {name: a, promote: {to: b}, source: {url: https://git.example.com/app.git, branch: main, path: envs/a}}
  - {name: b, source: {url: https://git.example.com/app.git, branch: main, path: envs/b}}
`, []problem{{"environments[0].promote.to", `"b" follows the same branch "main" of the same repository`}}},
		{"promote mode and soak", `
environments:
  - {name: a, promote: {to: c, mode: merge}, source: {url: https://git.example.com/app.git, branch: a, path: .}}
  - {name: b, promote: {to: c, mode: pull-request, requireSoak: true}, source: {url: https://git.example.com/app.git, branch: b, path: .}}
  - {name: c, source: {url: https://git.example.com/app.git, branch: c, path: .}}
report: {provider: webhook, url: https://hooks.example.com/ferry}
`, []problem{
			{"environments[0].promote.mode", `unknown mode "merge"; use push or pull-request`},
			{"environments[1].promote.mode", "pull-request needs report.provider github, gitlab or gitea"},
			{"environments[1].promote.requireSoak", "needs a soak: set health.soak"},
		}},

		// Auth.
		{"auth methods", `
environments:
  - {name: a, source: {url: https://git.example.com/app.git, branch: main, path: ., auth: {tokenFile: /t, sshKeyFile: /k, knownHostsFile: /h}}}
  - {name: b, source: {url: https://git.example.com/app.git, branch: main, path: ., auth: {tokenFile: /t, secretRef: git}}}
  - {name: c, source: {url: https://git.example.com/app.git, branch: main, path: ., auth: {username: ferry}}}
  - {name: d, source: {url: https://git.example.com/app.git, branch: main, path: ., auth: {passwordFile: /p}}}
  - {name: e, source: {url: "git@git.example.com:org/app.git", branch: main, path: ., auth: {sshKeyFile: /k}}}
  - {name: f, source: {url: "ssh://git@git.example.com/org/app.git", branch: main, path: ., auth: {knownHostsFile: /h}}}
  - {name: g, source: {url: https://git.example.com/app.git, branch: main, path: ., auth: {secretRef: Git Creds}}}
`, []problem{
			{"environments[0].source.auth", "sets tokenFile and sshKeyFile+knownHostsFile; choose one of"},
			{"environments[0].source.auth.sshKeyFile", "is for ssh URLs but source.url is http(s)"},
			{"environments[1].source.auth", "sets tokenFile and secretRef"},
			{"environments[2].source.auth.passwordFile", "required with username"},
			{"environments[3].source.auth.username", "required with passwordFile"},
			{"environments[4].source.auth.knownHostsFile", "required with sshKeyFile"},
			{"environments[5].source.auth.sshKeyFile", "required with knownHostsFile"},
			{"environments[6].source.auth.secretRef", `"Git Creds" is not a Secret name`},
		}},
		{"auth for the wrong transport", `
environments:
  - {name: a, source: {url: https://git.example.com/app.git, branch: main, path: ., auth: {sshKeyFile: /k, knownHostsFile: /h}}}
  - {name: b, source: {url: "git@git.example.com:org/app.git", branch: main, path: ., auth: {tokenFile: /t}}}
  - {name: c, source: {url: "ssh://git.example.com/org/app.git", branch: main, path: ., auth: {username: u, passwordFile: /p}}}
  - {name: d, source: {url: "git@git.example.com:org/app.git", branch: main, path: .}}
`, []problem{
			{"environments[0].source.auth.sshKeyFile", "is for ssh URLs but source.url is http(s); use tokenFile or username+passwordFile"},
			{"environments[1].source.auth.tokenFile", "is for http(s) URLs but source.url is ssh; use sshKeyFile+knownHostsFile"},
			{"environments[2].source.auth.username", "is for http(s) URLs"},
			{"environments[3].source.auth", "required for an ssh URL: set sshKeyFile and knownHostsFile, or secretRef"},
		}},

		// Report and server.
		{"report needs", `
environments:
  - {name: dev, source: {url: https://git.example.com/app.git, branch: main, path: .}}
report: {provider: gitea}
`, []problem{
			{"report.url", "required for provider gitea"},
			{"report.tokenFile", "required for provider gitea"},
		}},
		{"report github without token", `
environments:
  - {name: dev, source: {url: https://git.example.com/app.git, branch: main, path: .}}
report: {provider: github, url: "git.example.com/api"}
`, []problem{
			{"report.tokenFile", "required for provider github"},
			{"report.url", "must be an http:// or https:// URL"},
		}},
		{"report webhook without url", `
environments:
  - {name: dev, source: {url: https://git.example.com/app.git, branch: main, path: .}}
report: {provider: webhook}
`, []problem{{"report.url", "required for provider webhook"}}},
		{"report settings without provider", `
environments:
  - {name: dev, source: {url: https://git.example.com/app.git, branch: main, path: .}}
report: {url: https://api.github.com, tokenFile: /t}
`, []problem{{"report.provider", "required when report.url is set"}}},
		{"server", `
environments:
  - {name: dev, source: {url: https://git.example.com/app.git, branch: main, path: .}}
server: {addr: "9090", externalURL: ferry.example.com}
`, []problem{
			{"server.addr", `"9090" must be host:port`},
			{"server.externalURL", "must be an http:// or https:// URL"},
		}},
		{"server port out of range", `
environments:
  - {name: dev, source: {url: https://git.example.com/app.git, branch: main, path: .}}
server: {addr: "127.0.0.1:99999"}
`, []problem{{"server.addr", "must be host:port"}}},

		// Valid corners.
		{"scp-like URL with an SSH key", `
environments:
  - name: dev
    source:
      url: git@git.example.com:org/app.git
      branch: feature/x
      path: .
      auth: {sshKeyFile: /k, knownHostsFile: /h}
`, nil},
		{"ssh URL with a secret, http with basic auth", `
environments:
  - {name: a, source: {url: "ssh://git@git.example.com:2222/org/app.git", branch: main, path: ., auth: {secretRef: git-creds}}}
  - {name: b, source: {url: "http://127.0.0.1:3000/org/app.git", branch: main, path: envs/b, auth: {username: ferry, passwordFile: /p}}}
`, nil},
		{"pull-request promotion through a forge", `
environments:
  - {name: a, promote: {to: b, mode: pull-request, requireSoak: true}, health: {soak: 1m}, source: {url: https://git.example.com/app.git, branch: a, path: .}}
  - {name: b, source: {url: https://git.example.com/app.git, branch: b, path: .}}
report: {provider: gitea, url: "http://127.0.0.1:3000", tokenFile: /t, webhookSecretFile: /s}
`, nil},
		{"webhook secret without a provider", `
environments:
  - {name: dev, source: {url: https://git.example.com/app.git, branch: main, path: .}}
report: {webhookSecretFile: /s}
`, nil},
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

// TestParseAllProblemsAtOnce pins that problems from every part of the file
// come together: decoding problems first, then the validation problems
// environment by environment, then promotions, report, server, namespace and
// log.
func TestParseAllProblemsAtOnce(t *testing.T) {
	_, err := config.Parse([]byte(`
environments:
  - name: staging
    sourec: {url: https://git.example.com/app.git}
    health: {timeout: 5 minutes, soak: 10m}
    onFailure: rollback
    promote: {to: production}
  - name: production
    source: {url: ftp://git.example.com/app.git, branch: production, path: /envs/production}
    promote: {to: staging}
  - name: staging
    source: {url: https://git.example.com/app.git, branch: qa, path: envs/qa, auth: {sshKeyFile: /k}}
    maxPruneFraction: 2
report: {provider: gitbucket}
log: {level: loud}
`))
	checkProblems(t, err, []problem{
		{"environments[0].sourec", "unknown field"},
		{"environments[0].health.timeout", "invalid duration"},
		{"environments[0].source.url", "required"},
		{"environments[0].source.branch", "required"},
		{"environments[0].source.path", "required"},
		{"environments[0].health.soak", "must be shorter than health.timeout"},
		{"environments[0].onFailure", "unknown value"},
		{"environments[1].source.url", "not supported"},
		{"environments[1].source.path", "must be relative"},
		{"environments[2].name", "duplicate of environments[0].name"},
		{"environments[2].source.auth.knownHostsFile", "required with sshKeyFile"},
		{"environments[2].source.auth.sshKeyFile", "is for ssh URLs"},
		{"environments[2].maxPruneFraction", "out of range"},
		{"environments[0].promote.to", `promotion cycle "staging" → "production" → "staging"`},
		{"report.provider", "unknown provider"},
		{"log.level", "unknown level"},
	})
}

func TestParseNotYAML(t *testing.T) {
	for _, data := range []string{
		"environments: [",
		"environments:\n\t- name: dev",
		"namespace: a\n---\nnamespace: b\n",
	} {
		c, err := config.Parse([]byte(data))
		if err == nil || c != nil {
			t.Errorf("Parse(%q) = %v, %v; want an error", data, c, err)
			continue
		}
		if len(fieldErrors(err)) != 0 {
			t.Errorf("Parse(%q): %v; want a file error, not field problems", data, err)
		}
	}
}

func TestValidateProgrammaticConfig(t *testing.T) {
	c := &config.Config{
		Environments: []config.Environment{{Name: "dev", Source: config.Source{URL: "https://git.example.com/app.git", Branch: "main", Path: "."}}},
	}
	// Validate applies no defaults: every field Parse would default is reported.
	checkProblems(t, c.Validate(), []problem{
		{"environments[0].source.interval", "must be positive"},
		{"environments[0].driftCheckInterval", "must be at least 1m"},
		{"environments[0].namespace", "required"},
		{"environments[0].health.timeout", "must be positive"},
		{"environments[0].health.interval", "must be positive"},
		{"environments[0].onFailure", `unknown value ""`},
		{"environments[0].maxPruneFraction", "out of range"},
		{"environments[0].limits.maxFileBytes", "must be positive"},
		{"environments[0].limits.maxObjects", "must be positive"},
		{"environments[0].limits.maxRenderBytes", "must be positive"},
		{"environments[0].limits.renderTimeout", "must be positive"},
		{"server.addr", "required"},
		{"namespace", "required"},
		{"log.level", `unknown level ""`},
	})
	if !c.Environments[0].PruneEnabled() {
		t.Error("PruneEnabled() = false for a nil Prune; want true")
	}
}
