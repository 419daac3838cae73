package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunRefusesInvalidConfig: `ferry run` does not start on an invalid
// file and lists every problem with its field path.
func TestRunRefusesInvalidConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.yaml")
	bad := `environments:
  - name: staging
    source: {url: https://git.example.com/app.git, branch: main, path: envs/staging, interval: 5 minutes}
    promote: {to: production}
  - name: staging
    sourec: {}
`
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	root := newRoot()
	root.SetArgs([]string{"run", "--config", path})
	err := root.Execute()
	if err == nil {
		t.Fatal("ferry run started with an invalid configuration")
	}
	for _, want := range []string{"environments[0].source.interval", "environments[0].promote.to", "environments[1].sourec", "environments[1].name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestDiffExitCodeOnBadConfig(t *testing.T) {
	root := newRoot()
	root.SetArgs([]string{"diff", "staging", "--config", filepath.Join(t.TempDir(), "missing.yaml")})
	err := root.Execute()
	ee, ok := err.(*exitError)
	if !ok || ee.code != 2 {
		t.Fatalf("diff with a missing config: %v, want exit code 2", err)
	}
}
