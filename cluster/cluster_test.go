package cluster

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"ferry.dev/ferry/config"
)

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://127.0.0.1:6443"}
- name: b
  cluster: {server: "https://127.0.0.1:7443"}
users:
- name: u
  user: {token: t0ken}
contexts:
- name: first
  context: {cluster: a, user: u}
- name: second
  context: {cluster: b, user: u}
current-context: first
`

func writeKubeconfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRESTConfig(t *testing.T) {
	p := writeKubeconfig(t)
	for _, tc := range []struct{ context, host string }{{"", "https://127.0.0.1:6443"}, {"second", "https://127.0.0.1:7443"}} {
		cfg, err := RESTConfig(config.Cluster{Kubeconfig: p, Context: tc.context})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Host != tc.host || cfg.UserAgent != "ferry" || cfg.QPS != -1 || cfg.Burst != -1 || cfg.BearerToken != "t0ken" {
			t.Errorf("context %q: host %s agent %s qps %v burst %d", tc.context, cfg.Host, cfg.UserAgent, cfg.QPS, cfg.Burst)
		}
	}
}

func TestRESTConfigMissingFileSaysWhatToSet(t *testing.T) {
	_, err := RESTConfig(config.Cluster{Kubeconfig: filepath.Join(t.TempDir(), "none")})
	if err == nil || !strings.Contains(err.Error(), "set cluster.kubeconfig") {
		t.Fatalf("error %v", err)
	}
}

func TestImpersonate(t *testing.T) {
	base := &rest.Config{Host: "https://127.0.0.1:6443", BearerToken: "t0ken"}
	cfg, err := Impersonate(base, "team-a", "deployer")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Impersonate.UserName != "system:serviceaccount:team-a:deployer" {
		t.Errorf("user %q", cfg.Impersonate.UserName)
	}
	for _, g := range []string{"system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"} {
		if !slices.Contains(cfg.Impersonate.Groups, g) {
			t.Errorf("groups %v lack %s", cfg.Impersonate.Groups, g)
		}
	}
	if base.Impersonate.UserName != "" || cfg.BearerToken != "t0ken" {
		t.Error("Impersonate changed its input or lost the credentials that do the impersonating")
	}
	if _, err := Impersonate(base, "", "deployer"); err == nil {
		t.Error("no namespace accepted")
	}
}
