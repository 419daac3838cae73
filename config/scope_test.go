package config_test

import (
	"fmt"
	"testing"
	"time"

	"ferry.dev/ferry/config"
)

// scoped is a configuration of environments given as YAML list items, each
// with a source filled in.
func scoped(envs ...string) string {
	out := "environments:\n"
	for i, e := range envs {
		out += fmt.Sprintf("  - source: {url: https://git.example.com/app.git, branch: b%d, path: .}\n    %s\n", i, e)
	}
	return out
}

func TestParseScopeAndLimits(t *testing.T) {
	c, err := config.Parse([]byte(`
environments:
  - name: staging
    source: {url: https://git.example.com/app.git, branch: main, path: .}
    scope: {namespaces: [staging, "staging-*"], clusterKinds: [Namespace, ClusterRole]}
    serviceAccount: deployer-staging
    limits: {maxFileBytes: 1024, maxObjects: 10, maxRenderBytes: 4096, renderTimeout: 2s}
  - name: infra
    namespace: ferry-system
    source: {url: https://git.example.com/app.git, branch: infra, path: .}
    scope: {clusterAdmin: true}
report: {provider: gitea, url: http://127.0.0.1:3000, tokenFile: /t, planForks: true}
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	st := c.Environments[0]
	if got := st.Scope.Namespaces; len(got) != 2 || got[1] != "staging-*" {
		t.Errorf("scope.namespaces = %q", got)
	}
	if got := st.Scope.ClusterKinds; len(got) != 2 || got[1] != "ClusterRole" {
		t.Errorf("scope.clusterKinds = %q", got)
	}
	want := config.Limits{MaxFileBytes: 1024, MaxObjects: 10, MaxRenderBytes: 4096, RenderTimeout: 2 * time.Second}
	if st.Limits != want {
		t.Errorf("limits = %+v, want %+v", st.Limits, want)
	}
	if got := st.ServiceAccountName(true); got != "deployer-staging" {
		t.Errorf("ServiceAccountName(in cluster) = %q, want the configured one", got)
	}
	infra := c.Environments[1]
	if !infra.Scope.ClusterAdmin || infra.Scope.Namespaces != nil {
		t.Errorf("infra scope = %+v; want clusterAdmin and no namespace list", infra.Scope)
	}
	if got := infra.ServiceAccountName(true); got != "ferry-env-infra" {
		t.Errorf("ServiceAccountName(in cluster) = %q, want ferry-env-infra", got)
	}
	if got := infra.ServiceAccountName(false); got != "" {
		t.Errorf("ServiceAccountName(outside) = %q, want none: the kubeconfig's user", got)
	}
	if !c.Report.PlanForks {
		t.Error("report.planForks = false")
	}
}

func TestParseScopeProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		want []problem
	}{{
		name: "overlapping scopes in one cluster",
		data: scoped("name: staging\n    scope: {namespaces: [\"app-*\"]}", "name: production\n    scope: {namespaces: [app-prod]}"),
		want: []problem{{"environments[1].scope.namespaces[0]", `"app-prod" overlaps "app-*" of environments[0] ("staging")`}},
	}, {
		name: "default scopes overlap through the namespace",
		data: scoped("name: staging\n    namespace: shared", "name: production\n    namespace: shared"),
		want: []problem{{"environments[1].scope.namespaces[0]", `"shared" overlaps "shared"`}},
	}, {
		name: "a shared cluster-scoped kind",
		data: scoped("name: staging\n    scope: {clusterKinds: [Namespace, ClusterRole]}", "name: production\n    scope: {clusterKinds: [ClusterRole]}"),
		want: []problem{{"environments[1].scope.clusterKinds[0]", "ClusterRole is also in the scope of environments[0]"}},
	}, {
		name: "different clusters may overlap",
		data: scoped("name: staging\n    namespace: app\n    cluster: {context: one}", "name: production\n    namespace: app\n    cluster: {context: two}"),
	}, {
		name: "ferry's own namespace",
		data: scoped("name: staging\n    scope: {namespaces: [staging, \"ferry-*\"]}"),
		want: []problem{{"environments[0].scope.namespaces[1]", `includes ferry's own namespace "ferry-system"`}},
	}, {
		name: "ferry's own namespace as the default",
		data: scoped("name: staging\n    namespace: ferry-system"),
		want: []problem{{"environments[0].scope.namespaces[0]", "scope.clusterAdmin: true"}},
	}, {
		name: "the install's environment may",
		data: scoped("name: infra\n    namespace: ferry-system\n    scope: {clusterAdmin: true}", "name: staging"),
	}, {
		name: "two cluster admins",
		data: scoped("name: infra\n    scope: {clusterAdmin: true}", "name: more\n    scope: {clusterAdmin: true}"),
		want: []problem{{"environments[1].scope.clusterAdmin", "already manages this cluster"}},
	}, {
		name: "bad globs and kinds",
		data: scoped("name: staging\n    scope: {namespaces: [\"Staging*\", \"\", \"a/b\", \"-x-\"], clusterKinds: [namespace, \"\"]}\n    serviceAccount: \"Not A Name\"\n    limits: {maxObjects: 0, maxFileBytes: -1, renderTimeout: 0s}"),
		want: []problem{
			{"environments[0].scope.namespaces[0]", "is not a namespace glob"},
			{"environments[0].scope.namespaces[1]", "empty"},
			{"environments[0].scope.namespaces[2]", "is not a namespace name"},
			{"environments[0].scope.namespaces[3]", "is not a namespace name"},
			{"environments[0].scope.clusterKinds[0]", `"namespace" is not a kind`},
			{"environments[0].scope.clusterKinds[1]", `"" is not a kind`},
			{"environments[0].serviceAccount", "is not a ServiceAccount name"},
			{"environments[0].limits.maxFileBytes", "must be positive"},
			{"environments[0].limits.maxObjects", "must be positive"},
			{"environments[0].limits.renderTimeout", "must be positive"},
		},
	}, {
		name: "unknown scope field",
		data: scoped("name: staging\n    scope: {namespace: [a]}"),
		want: []problem{{"environments[0].scope.namespace", `did you mean "namespaces"?`}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.data))
			checkProblems(t, err, tc.want)
		})
	}
}

func TestGlobsOverlap(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"staging", "staging", true},
		{"staging", "production", false},
		{"staging-*", "staging", false},
		{"staging-*", "staging-a", true},
		{"staging*", "staging", true},
		{"*-prod", "staging-*", true}, // staging-prod
		{"a*", "b*", false},
		{"*a", "*b", false},
		{"a?c", "abc", true},
		{"a?c", "ab", false},
		{"*", "anything", true},
		{"x*y*z", "*q*", true},
		{"ab*", "*ba", true}, // aba... abba
		{"a*b", "a*c", false},
	} {
		if got := config.GlobsOverlap(tc.a, tc.b); got != tc.want {
			t.Errorf("GlobsOverlap(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := config.GlobsOverlap(tc.b, tc.a); got != tc.want {
			t.Errorf("GlobsOverlap(%q, %q) = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}
