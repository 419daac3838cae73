package manifests

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"ferry.dev/ferry/scope"
)

const testConfig = "namespace: ferry-system\nenvironments: []\n"

func testOptions() Options {
	o := DefaultOptions()
	o.ConfigYAML = []byte(testConfig)
	return o
}

func mustRender(t *testing.T, o Options) []*unstructured.Unstructured {
	t.Helper()
	objs, err := Render(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// find returns the one object of kind, converted into out.
func find(t *testing.T, objs []*unstructured.Unstructured, kind string, out any) *unstructured.Unstructured {
	t.Helper()
	var found *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			if found != nil {
				t.Fatalf("two %s objects: %s and %s", kind, found.GetName(), o.GetName())
			}
			found = o
		}
	}
	if found == nil {
		t.Fatalf("no %s in the rendering", kind)
	}
	if out != nil {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(found.Object, out, true); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
	}
	return found
}

// TestDeploymentSecurity pins what a cluster's admission and a reviewer
// look for: non-root, read-only root filesystem, no capabilities, seccomp,
// probes, resources, and a rollout that never lowers availability.
func TestDeploymentSecurity(t *testing.T) {
	d := &appsv1.Deployment{}
	find(t, mustRender(t, testOptions()), "Deployment", d)

	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want 2 (a leader and a standby)", d.Spec.Replicas)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable == nil || *ru.MaxUnavailable != intstr.FromInt32(0) {
		t.Errorf("strategy = %+v, want a rolling update with maxUnavailable 0", d.Spec.Strategy)
	}
	pod := d.Spec.Template.Spec
	if pod.ServiceAccountName != Name {
		t.Errorf("serviceAccountName = %q, want %q", pod.ServiceAccountName, Name)
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v, want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("container has no securityContext")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Error("container may run as root")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("container root filesystem is writable")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("container allows privilege escalation")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("capabilities = %+v, want drop [ALL] and nothing added", sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("container seccomp profile is not RuntimeDefault")
	}
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port != intstr.FromString("http") {
			t.Errorf("%s probe = %+v, want GET %s on port http", name, p, path)
		}
	}
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("liveness", c.LivenessProbe, "/healthz")
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[res]; !ok {
			t.Errorf("no %s request", res)
		}
		if _, ok := c.Resources.Limits[res]; !ok {
			t.Errorf("no %s limit", res)
		}
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != Port || c.Ports[0].Name != "http" {
		t.Errorf("ports = %+v, want http on %d", c.Ports, Port)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["XDG_CACHE_HOME"] != "/cache" || env["POD_NAME"] != "metadata.name" {
		t.Errorf("env = %v, want XDG_CACHE_HOME=/cache and POD_NAME from metadata.name", env)
	}
	// Every path ferry writes is a volume: the root filesystem is read-only.
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	for _, dir := range []string{"/cache", "/tmp"} {
		m, ok := mounts[dir]
		if !ok || m.ReadOnly || volumes[m.Name].EmptyDir == nil {
			t.Errorf("%s: want a writable emptyDir, got mount %+v volume %+v", dir, m, volumes[m.Name])
		}
	}
	if m := mounts[CredentialsDir]; !m.ReadOnly || volumes[m.Name].Secret == nil || volumes[m.Name].Secret.SecretName != CredentialsSecret {
		t.Errorf("%s: want the Secret %s read-only, got %+v", CredentialsDir, CredentialsSecret, m)
	}
	if m := mounts["/etc/ferry"]; volumes[m.Name].ConfigMap == nil || !strings.HasPrefix(volumes[m.Name].ConfigMap.Name, ConfigMapName+"-") {
		t.Errorf("/etc/ferry: want the generated ConfigMap %s-<hash>, got %+v", ConfigMapName, volumes[m.Name])
	}
	if !slices.Contains(c.Args, "--config="+ConfigPath) {
		t.Errorf("args = %v, want --config=%s", c.Args, ConfigPath)
	}
}

// TestRBACHasNoWildcardRule: no rule of any role holds a "*"; ferry's
// ClusterRole lets it ask what it may do and nothing else; it may
// impersonate exactly the environments' ServiceAccounts, in its own
// namespace; the namespaced Role covers what ferry needs for itself.
func TestRBACHasNoWildcardRule(t *testing.T) {
	o := testOptions()
	o.Environments = []scope.Grant{
		{Scope: scope.Scope{Environment: "ferry", ClusterAdmin: true}},
		{Scope: scope.Scope{Environment: "staging", Namespaces: []string{"staging"}, ClusterKinds: []string{"Namespace"}}},
	}
	objs := mustRender(t, o)
	var roles []string
	for _, o := range objs {
		if o.GetKind() != "ClusterRole" && o.GetKind() != "Role" {
			continue
		}
		roles = append(roles, o.GetKind()+"/"+o.GetName())
		var role rbacv1.ClusterRole
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &role); err != nil {
			t.Fatal(err)
		}
		for i, r := range role.Rules {
			for _, f := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames, r.NonResourceURLs} {
				if slices.Contains(f, "*") {
					t.Errorf("%s %s rule %d holds a wildcard: %+v", o.GetKind(), o.GetName(), i, r)
				}
			}
			for _, v := range r.Verbs {
				switch {
				case v == "escalate" || v == "bind":
					t.Errorf("%s %s rule %d grants %s", o.GetKind(), o.GetName(), i, v)
				case v == "impersonate" && (o.GetName() != ImpersonateRole || o.GetKind() != "Role" ||
					!slices.Equal(r.Resources, []string{"serviceaccounts"}) || !slices.Equal(r.ResourceNames, []string{"ferry-env-ferry", "ferry-env-staging"})):
					t.Errorf("%s %s rule %d impersonates more than the environments' ServiceAccounts: %+v", o.GetKind(), o.GetName(), i, r)
				}
			}
		}
		if o.GetKind() == "ClusterRole" && o.GetName() == DefaultNamespace {
			want := []rbacv1.PolicyRule{{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"selfsubjectaccessreviews"}, Verbs: []string{"create"}}}
			if !equalRules(role.Rules, want) {
				t.Errorf("ferry's ClusterRole = %+v, want only %+v", role.Rules, want)
			}
		}
	}
	slices.Sort(roles)
	if want := []string{"ClusterRole/ferry-env-staging", "ClusterRole/ferry-system", "Role/ferry", "Role/ferry-impersonate"}; !slices.Equal(roles, want) {
		t.Errorf("roles = %q, want %q", roles, want)
	}
	// The install's environment is bound to cluster-admin, in git.
	files, err := Files(o)
	if err != nil {
		t.Fatal(err)
	}
	envs := string(files[EnvironmentsFile])
	if !strings.Contains(envs, "  name: ferry-env-ferry-cluster-admin\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\n") {
		t.Errorf("%s does not bind the install's environment to cluster-admin:\n%s", EnvironmentsFile, envs)
	}
	for _, u := range objs {
		if u.GetKind() == "RoleBinding" && u.GetName() == "ferry-env-staging" && u.GetNamespace() != "staging" {
			t.Errorf("staging's RoleBinding moved to namespace %q", u.GetNamespace())
		}
	}

	role := &rbacv1.Role{}
	u := find(t, mustRender(t, testOptions()), "Role", role)
	if u.GetNamespace() != DefaultNamespace {
		t.Errorf("Role in %q, want %q", u.GetNamespace(), DefaultNamespace)
	}
	grants := func(group, resource string, verbs ...string) bool {
		for _, r := range role.Rules {
			if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) {
				for _, v := range verbs {
					if !slices.Contains(r.Verbs, v) {
						return false
					}
				}
				return true
			}
		}
		return false
	}
	for _, want := range []struct {
		group, resource string
		verbs           []string
	}{
		{"", "configmaps", []string{"get", "create", "update"}},
		{"coordination.k8s.io", "leases", []string{"get", "list", "create", "update", "delete"}},
		{"", "configmaps", []string{"list", "watch"}},
		{"", "events", []string{"create", "patch"}},
	} {
		if !grants(want.group, want.resource, want.verbs...) {
			t.Errorf("Role lacks %v on %s.%s", want.verbs, want.resource, want.group)
		}
	}
	// ferry reads the Secrets named by auth.secretRef and
	// decryption.secretRef, in its own namespace, one by name: get, never
	// list or watch, so it cannot enumerate them.
	for _, r := range role.Rules {
		if slices.Contains(r.Resources, "secrets") && !slices.Equal(r.Verbs, []string{"get"}) {
			t.Errorf("Role grants %v on secrets (%+v); want get only", r.Verbs, r)
		}
	}
	if !grants("", "secrets", "get") {
		t.Error("Role lacks get on secrets: auth.secretRef and decryption.secretRef could not be read")
	}
}

// TestRenderIsDeterministic: the same options give the same bytes and the
// same objects every time, so a second bootstrap commits nothing.
func TestRenderIsDeterministic(t *testing.T) {
	o := testOptions()
	first, err := Files(o)
	if err != nil {
		t.Fatal(err)
	}
	want := dump(t, mustRender(t, o))
	for range 5 {
		files, err := Files(o)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.EqualFunc(first, files, bytes.Equal) {
			t.Fatal("Files differ between two calls")
		}
		if got := dump(t, mustRender(t, o)); got != want {
			t.Fatalf("Render differs between two calls:\n%s\n---\n%s", want, got)
		}
	}
}

func dump(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	var b strings.Builder
	for _, o := range objs {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(y)
		b.WriteString("---\n")
	}
	return b.String()
}

// TestRenderOptions: namespace, image, replicas and configuration land where
// they should; a new configuration renames the ConfigMap, which rolls the
// pods; two namespaces give cluster RBAC of two names.
func TestRenderOptions(t *testing.T) {
	o := testOptions()
	o.Namespace = "ops"
	o.Image = "registry.example.com:5000/team/ferry:v1.2.0@sha256:0123"
	o.Replicas = 3
	o.ConfigYAML = []byte("namespace: ops\n")
	objs := mustRender(t, o)

	for _, obj := range objs {
		if obj.GetLabels()["app.kubernetes.io/part-of"] != "ferry" {
			t.Errorf("%s %s lacks app.kubernetes.io/part-of=ferry", obj.GetKind(), obj.GetName())
		}
		switch obj.GetKind() {
		case "Namespace", "ClusterRole", "ClusterRoleBinding":
			if obj.GetName() != "ops" || obj.GetNamespace() != "" {
				t.Errorf("%s named %s/%s, want ops", obj.GetKind(), obj.GetNamespace(), obj.GetName())
			}
		default:
			if obj.GetNamespace() != "ops" {
				t.Errorf("%s %s in namespace %q, want ops", obj.GetKind(), obj.GetName(), obj.GetNamespace())
			}
		}
	}
	crb := &rbacv1.ClusterRoleBinding{}
	find(t, objs, "ClusterRoleBinding", crb)
	if crb.RoleRef.Name != "ops" || len(crb.Subjects) != 1 || crb.Subjects[0].Namespace != "ops" || crb.Subjects[0].Name != Name {
		t.Errorf("ClusterRoleBinding = %+v, want role ops bound to ServiceAccount ops/%s", crb, Name)
	}
	d := &appsv1.Deployment{}
	find(t, objs, "Deployment", d)
	if got := d.Spec.Template.Spec.Containers[0].Image; got != o.Image {
		t.Errorf("image = %q, want %q", got, o.Image)
	}
	if *d.Spec.Replicas != 3 {
		t.Errorf("replicas = %d, want 3", *d.Spec.Replicas)
	}
	cm := &corev1.ConfigMap{}
	find(t, objs, "ConfigMap", cm)
	if cm.Data[ConfigFile] != string(o.ConfigYAML) {
		t.Errorf("ConfigMap %s = %q, want %q", ConfigFile, cm.Data[ConfigFile], o.ConfigYAML)
	}

	o.ConfigYAML = []byte("namespace: ops\nlog: {level: debug}\n")
	cm2 := &corev1.ConfigMap{}
	find(t, mustRender(t, o), "ConfigMap", cm2)
	if cm2.Name == cm.Name {
		t.Errorf("a new configuration kept the ConfigMap name %s; the pods would not restart", cm.Name)
	}
}

func TestOptionsRefused(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"namespace", func(o *Options) { o.Namespace = "Ferry_System" }, "namespace"},
		{"image", func(o *Options) { o.Image = "ferry latest" }, "image"},
		{"empty image", func(o *Options) { o.Image = "" }, "image"},
		{"config", func(o *Options) { o.ConfigYAML = nil }, "configuration"},
		{"replicas", func(o *Options) { o.Replicas = 0 }, "replicas"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOptions()
			tt.edit(&o)
			_, err := Files(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Files: %v, want an error about %s", err, tt.want)
			}
		})
	}
}

func TestSplitImage(t *testing.T) {
	tests := []struct{ ref, name, tag, digest string }{
		{"ferry", "ferry", "", ""},
		{"ferry:v1", "ferry", "v1", ""},
		{"reg:5000/ferry", "reg:5000/ferry", "", ""},
		{"reg:5000/a/ferry:v1", "reg:5000/a/ferry", "v1", ""},
		{"ferry@sha256:ab", "ferry", "", "sha256:ab"},
		{"reg:5000/ferry:v1@sha256:ab", "reg:5000/ferry", "v1", "sha256:ab"},
	}
	for _, tt := range tests {
		name, tag, digest := splitImage(tt.ref)
		if name != tt.name || tag != tt.tag || digest != tt.digest {
			t.Errorf("splitImage(%q) = %q, %q, %q; want %q, %q, %q", tt.ref, name, tag, digest, tt.name, tt.tag, tt.digest)
		}
	}
}

func equalRules(a, b []rbacv1.PolicyRule) bool {
	return slices.EqualFunc(a, b, func(x, y rbacv1.PolicyRule) bool {
		return slices.Equal(x.APIGroups, y.APIGroups) && slices.Equal(x.Resources, y.Resources) &&
			slices.Equal(x.Verbs, y.Verbs) && slices.Equal(x.ResourceNames, y.ResourceNames)
	})
}
