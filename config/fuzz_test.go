package config_test

import (
	"os"
	"testing"

	"ferry.dev/ferry/config"
)

// FuzzParse pins that Parse never panics, and that it returns either a
// configuration that validates or an error, never both or neither.
func FuzzParse(f *testing.F) {
	design, err := os.ReadFile("testdata/design.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(design),
		"",
		"environments: [",
		"- a",
		"environments:\n  - &a {name: a, <<: *a}\n",
		"environments:\n  - {name: dev, source: {url: git@h:o/r.git, branch: main, path: ., auth: {sshKeyFile: /k, knownHostsFile: /h}}, health: {soak: 1m}, promote: {to: dev}}\n",
		"environments: [{name: a, maxPruneFraction: .inf, prune: ~, health: {timeout: 1h30m}}]\nreport: {provider: webhook}\n",
		"? [a]\n: b\n",
		"environments: [{name: a, source: {url: https://h/r.git, branch: a, path: .}, scope: {namespaces: [\"a-*\", \"*?*\"], clusterKinds: [Namespace]}, limits: {maxObjects: 1, renderTimeout: 1s}}, {name: b, source: {url: https://h/r.git, branch: b, path: .}, scope: {namespaces: [\"*-b\"]}}]\n",
		"environments: [{name: i, namespace: ferry-system, serviceAccount: x, scope: {clusterAdmin: true}, source: {url: https://h/r.git, branch: a, path: .}}]\nreport: {planForks: true}\n",
		"environments: [{name: a, source: {url: https://h/r.git, branch: main, path: .}, health: {checks: [{apiVersion: example.com/v1, kind: W, current: \"status.?ready.orValue(false)\", failed: \"has(status.x\"}], http: [{url: http://127.0.0.1/, status: 204, body: \"(ok\", timeout: 1s}]}}]\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse(%q) = %v, %v; want exactly one", data, c, err)
		}
		if c != nil {
			if err := c.Validate(); err != nil {
				t.Fatalf("Parse(%q) accepted a config that Validate refuses: %v", data, err)
			}
		}
	})
}
