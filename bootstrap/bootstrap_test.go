package bootstrap

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/manifests"
)

func validOptions() Options {
	o := DefaultOptions()
	o.Repo = "https://git.example.com/org/fleet.git"
	o.Environment = "prod-eu"
	o.Credentials = Credentials{Token: "t0ken"}
	return o
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Options)
		want string // "" : valid
	}{
		{"valid", func(*Options) {}, ""},
		{"password", func(o *Options) { o.Credentials = Credentials{Username: "me", Password: "pw"} }, ""},
		{"no env", func(o *Options) { o.Environment = "" }, "--env"},
		{"env not a label", func(o *Options) { o.Environment = "Prod EU" }, "--env"},
		{"system namespace", func(o *Options) { o.Namespace = "kube-system" }, "system namespace"},
		{"default namespace", func(o *Options) { o.Namespace = "default" }, "system namespace"},
		{"no repo", func(o *Options) { o.Repo = "" }, "--repo: required"},
		{"ssh repo", func(o *Options) { o.Repo = "git@git.example.com:org/fleet.git" }, "--repo"},
		{"credentials in URL", func(o *Options) { o.Repo = "https://me:secret@git.example.com/fleet.git" }, "would be committed"},
		{"bad branch", func(o *Options) { o.Branch = "a..b" }, "--branch"},
		{"root path", func(o *Options) { o.Path = "." }, "--path"},
		{"escaping path", func(o *Options) { o.Path = "../x" }, "--path"},
		{"absolute path", func(o *Options) { o.Path = "/x" }, "--path"},
		{"no credentials", func(o *Options) { o.Credentials = Credentials{} }, "none given"},
		{"token and password", func(o *Options) { o.Credentials.Password = "pw" }, "both"},
		{"password without user", func(o *Options) { o.Credentials = Credentials{Password: "pw"} }, "without --username"},
		{"token with user", func(o *Options) { o.Credentials.Username = "me" }, "--password-file instead"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := validOptions()
			tt.edit(&o)
			err := o.validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("validate: %v, want an error about %q", err, tt.want)
			}
		})
	}
}

func TestInstallPath(t *testing.T) {
	o := validOptions()
	if got := o.InstallPath(); got != "clusters/prod-eu/ferry" {
		t.Errorf("default InstallPath = %q", got)
	}
	o.Path = "infra/ferry/"
	if got := o.InstallPath(); got != "infra/ferry" {
		t.Errorf("InstallPath = %q, want infra/ferry", got)
	}
}

// TestConfigManagesItself: the ferry.yaml bootstrap writes is valid and has
// an environment following the install directory with the mounted
// credentials, so ferry applies its own upgrades.
func TestConfigManagesItself(t *testing.T) {
	for _, creds := range []Credentials{{Token: "t"}, {Username: "bot", Password: "p"}} {
		o := validOptions()
		o.Credentials = creds
		o.Repo = `https://git.example.com/org/"odd": name.git`
		data := configYAML(o)
		cfg, err := config.Parse(data)
		if err != nil {
			t.Fatalf("%+v: %v\n%s", creds, err, data)
		}
		grants, err := checkConfig(data, o)
		if err != nil {
			t.Fatalf("%+v: %v", creds, err)
		}
		env, ok := cfg.Environment(o.Environment)
		if !ok {
			t.Fatalf("no environment %s:\n%s", o.Environment, data)
		}
		want := config.Source{URL: o.Repo, Branch: "main", Path: "clusters/prod-eu/ferry", Interval: config.DefaultInterval,
			Auth: config.Auth{Username: creds.Username}}
		if creds.Token != "" {
			want.Auth.TokenFile = manifests.CredentialsDir + "/" + manifests.TokenKey
		} else {
			want.Auth.PasswordFile = manifests.CredentialsDir + "/" + manifests.PasswordKey
		}
		if env.Source != want {
			t.Errorf("source = %+v, want %+v", env.Source, want)
		}
		if cfg.Namespace != o.Namespace || env.Namespace != o.Namespace {
			t.Errorf("namespaces %s, %s; want %s", cfg.Namespace, env.Namespace, o.Namespace)
		}
		// The install's scope is written out, not left to a default.
		if !env.Scope.ClusterAdmin || !strings.Contains(string(data), "    scope:\n      clusterAdmin: true\n") ||
			env.ServiceAccount != "ferry-env-"+o.Environment {
			t.Errorf("install environment scope %+v, serviceAccount %q:\n%s", env.Scope, env.ServiceAccount, data)
		}
		if len(grants) != 1 || !grants[0].Scope.ClusterAdmin || grants[0].ServiceAccount != "ferry-env-"+o.Environment || grants[0].Namespace != o.Namespace {
			t.Errorf("grants = %+v", grants)
		}
		if strings.Contains(string(data), "t0ken") || strings.Contains(string(data), `"p"`) {
			t.Errorf("a secret is in ferry.yaml:\n%s", data)
		}
	}
}

func TestCheckConfigRefuses(t *testing.T) {
	o := validOptions()
	other := o
	other.Path = "elsewhere"
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"invalid", []byte("environments: 3\n"), "environments"},
		{"other namespace", configYAML(Options{Namespace: "ops", Environment: o.Environment, Repo: o.Repo, Branch: o.Branch, Credentials: o.Credentials}), "namespace is ops"},
		{"not self-managed", configYAML(other), "would not manage"},
		{"install without a scope", []byte(strings.Replace(string(configYAML(o)), "    scope:\n      clusterAdmin: true\n", "", 1)), "only the environment of ferry's install (scope.clusterAdmin: true) may write it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := checkConfig(tt.data, o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("checkConfig: %v, want an error about %q", err, tt.want)
			}
		})
	}
}

// TestCommittedImage: the image bootstrap committed is read back, so that
// a run without --image keeps it instead of downgrading.
func TestCommittedImage(t *testing.T) {
	for _, image := range []string{"ferry:latest", "reg:5000/team/ferry:v2", "reg/ferry@sha256:ab", "reg/ferry:v2@sha256:ab", "reg/ferry"} {
		mo := manifests.DefaultOptions()
		mo.Image, mo.ConfigYAML = image, []byte("namespace: ferry-system\n")
		files, err := manifests.Files(mo)
		if err != nil {
			t.Fatal(err)
		}
		got, err := committedImage(files[manifests.Kustomization])
		if err != nil || got != image {
			t.Errorf("committedImage = %q, %v; want %q", got, err, image)
		}
	}
	if got, err := committedImage([]byte("resources: [a.yaml]\n")); got != "" || err != nil {
		t.Errorf("committedImage of a kustomization without images = %q, %v", got, err)
	}
}

func TestRollout(t *testing.T) {
	two := int32(2)
	available := []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}}
	tests := []struct {
		name   string
		status appsv1.DeploymentStatus
		done   bool
	}{
		{"new", appsv1.DeploymentStatus{}, false},
		{"one ready", appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 1, Conditions: available}, false},
		{"old pod left", appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 2, ReadyReplicas: 2, Conditions: available}, false},
		{"generation not observed", appsv1.DeploymentStatus{ObservedGeneration: 0, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, Conditions: available}, false},
		{"not available", appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2}, false},
		{"done", appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, Conditions: available}, true},
	}
	for _, tt := range tests {
		d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: &two}, Status: tt.status}
		d.Generation = 1
		msg, done := rollout(d)
		if done != tt.done {
			t.Errorf("%s: rollout = %q, %v; want done %v", tt.name, msg, done, tt.done)
		}
	}
}
