package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/apply"
	"ferry.dev/ferry/bootstrap"
	"ferry.dev/ferry/config"
	"ferry.dev/ferry/internal/sopstest"
	"ferry.dev/ferry/manifests"
	"ferry.dev/ferry/sandbox"
	"ferry.dev/ferry/scope"
)

func bootRandom() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// bootOptions returns options for a bootstrap into a fresh namespace (not
// created) from repo, with the admin's token, and removes the install when
// the test ends.
func bootOptions(t *testing.T, repo string, out io.Writer) bootstrap.Options {
	t.Helper()
	o := bootstrap.DefaultOptions()
	o.Repo = forge.CloneURL(repo)
	o.Environment = "kwok"
	o.Namespace = "ferry-boot-" + bootRandom()
	o.Credentials = bootstrap.Credentials{Token: forge.Token}
	o.Timeout = 2 * time.Minute
	o.Out = out
	t.Cleanup(func() {
		u := bootstrap.DefaultUninstallOptions()
		u.Namespace, u.Timeout = o.Namespace, 30*time.Second
		_ = bootstrap.Uninstall(t.Context(), cluster.Config, u)
	})
	return o
}

// bootRepo creates a repository, with one commit on main when seeded, and
// returns a working copy of it.
func bootRepo(t *testing.T, seeded bool) (string, *sandbox.Clone) {
	t.Helper()
	repo := "boot-" + bootRandom()
	var files map[string]string
	if seeded {
		files = map[string]string{"README.md": "fleet\n"}
	}
	wc, _ := newRepo(t, repo, files, "Initial commit")
	return repo, wc
}

// bootHistory returns the commits of the remote's main, newest first (none
// when main does not exist), and fails on any ref bootstrap's push check
// might have left behind.
func bootHistory(t *testing.T, wc *sandbox.Clone) []string {
	t.Helper()
	refs, err := wc.Git(t.Context(), "ls-remote", "origin")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(refs, "refs/ferry/") {
		t.Errorf("a preflight ref is left on the remote:\n%s", refs)
	}
	if !strings.Contains(refs, "refs/heads/main") {
		return nil
	}
	if _, err := wc.Git(t.Context(), "fetch", "-q", "origin", "main"); err != nil {
		t.Fatal(err)
	}
	out, err := wc.Git(t.Context(), "rev-list", "FETCH_HEAD")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(out)
}

func bootFile(t *testing.T, repo, ref, file string) []byte {
	t.Helper()
	data, _, err := forge.Client.GetFile(forge.User, repo, ref, file)
	if err != nil {
		t.Fatalf("%s %s:%s: %v", repo, ref, file, err)
	}
	return data
}

func bootDeployment(t *testing.T, c client.Client, ns string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: manifests.Name}, d); err != nil {
		t.Fatal(err)
	}
	return d
}

func bootAvailable(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
			return d.Status.ReadyReplicas == *d.Spec.Replicas
		}
	}
	return false
}

// TestBootstrap installs ferry from an empty repository into the kwok
// cluster, runs bootstrap again (a no-op, through the CLI), upgrades the
// image through a commit, and uninstalls, leaving an environment's workload.
func TestBootstrap(t *testing.T) {
	ctx := t.Context()
	c := kubeClient(t)
	repo, wc := bootRepo(t, false) // empty: no branch yet
	var out bytes.Buffer
	o := bootOptions(t, repo, &out)
	defer func() { t.Logf("bootstrap output:\n%s", out.String()) }()
	ageKey := sopstest.AgeIdentity(t)
	o.SOPSAgeKey = sopstest.AgeKeyFile(ageKey)
	ageKeyFile := filepath.Join(t.TempDir(), "kwok.agekey")
	if err := os.WriteFile(ageKeyFile, o.SOPSAgeKey, 0o600); err != nil {
		t.Fatal(err)
	}

	res, err := bootstrap.Run(ctx, cluster.Config, o)
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	dir := o.InstallPath()
	commits := bootHistory(t, wc)
	if !res.Pushed || len(commits) != 1 || commits[0] != res.Commit {
		t.Fatalf("after the first run: pushed %v, commit %s, branch has %v", res.Pushed, res.Commit, commits)
	}
	// The commit holds exactly what Files gives, with no secret anywhere.
	cfgYAML := bootFile(t, repo, "main", path.Join(dir, manifests.ConfigFile))
	install := scope.Grant{Scope: scope.Scope{Environment: "kwok", ClusterAdmin: true}, ServiceAccount: "ferry-env-kwok", Namespace: o.Namespace}
	want, err := manifests.Files(manifests.Options{Namespace: o.Namespace, Image: manifests.DefaultImage, ConfigYAML: cfgYAML, Replicas: 2,
		Environments: []scope.Grant{install}})
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range want {
		got := bootFile(t, repo, "main", path.Join(dir, name))
		if !bytes.Equal(got, content) {
			t.Errorf("%s/%s in git differs from the install manifests", dir, name)
		}
		if bytes.Contains(got, []byte(forge.Token)) {
			t.Errorf("%s/%s holds the git token", dir, name)
		}
		if bytes.Contains(got, []byte(ageKey.String())) {
			t.Errorf("%s/%s holds the SOPS age key", dir, name)
		}
	}
	cfg, err := config.Parse(cfgYAML)
	if err != nil {
		t.Fatalf("committed ferry.yaml: %v", err)
	}
	if env, ok := cfg.Environment("kwok"); !ok || env.Source.Path != dir || env.Source.URL != o.Repo || cfg.Namespace != o.Namespace {
		t.Errorf("committed ferry.yaml does not manage the install itself:\n%s", cfgYAML)
	}

	// The install's RBAC: no wildcard in any role it applied; ferry
	// impersonates the install's ServiceAccount, which is bound to
	// cluster-admin.
	checkNoWildcard(t, c)
	crb := &rbacv1.ClusterRoleBinding{}
	if err := c.Get(ctx, client.ObjectKey{Name: "ferry-env-kwok-cluster-admin"}, crb); err != nil || crb.RoleRef.Name != "cluster-admin" ||
		len(crb.Subjects) != 1 || crb.Subjects[0].Name != "ferry-env-kwok" || crb.Subjects[0].Namespace != o.Namespace {
		t.Errorf("the install's ServiceAccount is not bound to cluster-admin: %+v, %v", crb, err)
	}

	// The cluster: Available, owned by the environment, credentials in a Secret.
	d := bootDeployment(t, c, o.Namespace)
	if !bootAvailable(d) || d.Labels[apply.OwnerLabel] != "kwok" {
		t.Fatalf("Deployment: available %v, labels %v", bootAvailable(d), d.Labels)
	}
	secret := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: manifests.CredentialsSecret}, secret); err != nil {
		t.Fatal(err)
	}
	if string(secret.Data[manifests.TokenKey]) != forge.Token {
		t.Error("the credential Secret does not hold the token")
	}
	// The SOPS age key in its own Secret, never committed; the output names
	// its public key only.
	keys := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: bootstrap.DefaultSOPSKeysSecret}, keys); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(keys.Data[bootstrap.SOPSAgeKeyName], o.SOPSAgeKey) || res.SOPSKeys != "created" {
		t.Errorf("SOPS key Secret: %d keys, outcome %q; want %s holding the key, created", len(keys.Data), res.SOPSKeys, bootstrap.SOPSAgeKeyName)
	}
	if !strings.Contains(out.String(), "created Secret "+o.Namespace+"/sops-keys (SOPS age key for "+ageKey.Recipient().String()) ||
		strings.Contains(out.String(), ageKey.String()) {
		t.Errorf("output does not name the SOPS key Secret by its public key alone")
	}
	for _, line := range []string{"ok   cluster", "ok   permissions", "ok   push", "Available", "/badge/kwok.svg", "/hooks/"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q", line)
		}
	}

	// Second run, through the CLI: nothing changes.
	bin := bootBuild(t, "build", "../cmd/ferry")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(forge.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := d.ResourceVersion
	cli := exec.CommandContext(ctx, bin, "bootstrap", "--repo", o.Repo, "--env", "kwok", "--namespace", o.Namespace,
		"--token-file", tokenFile, "--kubeconfig", cluster.Kubeconfig, "--timeout", "1m", "--sops-age-key", ageKeyFile)
	cli.Env = append(os.Environ(), "FERRY_GIT_TOKEN=")
	cliOut, err := cli.CombinedOutput()
	if err != nil {
		t.Fatalf("second bootstrap: %v\n%s", err, cliOut)
	}
	if got := bootHistory(t, wc); len(got) != 1 {
		t.Errorf("the second run made a commit: %v\n%s", got, cliOut)
	}
	t.Logf("second run, through the CLI:\n%s", cliOut)
	if !strings.Contains(string(cliOut), "no commit") || !strings.Contains(string(cliOut), "unchanged Secret "+o.Namespace+"/sops-keys") || strings.Contains(string(cliOut), "configured ") || strings.Contains(string(cliOut), "created ") {
		t.Errorf("second run output does not say nothing changed:\n%s", cliOut)
	}
	if d := bootDeployment(t, c, o.Namespace); d.ResourceVersion != before {
		t.Errorf("the second run wrote the Deployment (resourceVersion %s → %s)", before, d.ResourceVersion)
	}
	// The same, as a Result.
	res, err = bootstrap.Run(ctx, cluster.Config, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed() {
		t.Errorf("third run changed something: pushed %v, secret %s, changes %v", res.Pushed, res.Secret, res.Changes.Entries)
	}

	// A new image is an upgrade through a commit.
	o.Image = "registry.invalid/ferry:v2"
	res, err = bootstrap.Run(ctx, cluster.Config, o)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	commits = bootHistory(t, wc)
	if !res.Pushed || len(commits) != 2 || commits[0] != res.Commit {
		t.Fatalf("upgrade: pushed %v, branch has %v", res.Pushed, commits)
	}
	if k := bootFile(t, repo, "main", path.Join(dir, manifests.Kustomization)); !bytes.Contains(k, []byte("newTag: v2")) {
		t.Errorf("upgrade commit's kustomization lacks the new tag:\n%s", k)
	}
	if bytes.Contains(bootFile(t, repo, "main", path.Join(dir, manifests.ConfigFile)), []byte("v2")) || !bytes.Equal(bootFile(t, repo, "main", path.Join(dir, manifests.ConfigFile)), cfgYAML) {
		t.Error("the upgrade rewrote ferry.yaml")
	}
	d = bootDeployment(t, c, o.Namespace)
	if img := d.Spec.Template.Spec.Containers[0].Image; img != o.Image || !bootAvailable(d) {
		t.Errorf("after the upgrade: image %s, available %v", img, bootAvailable(d))
	}
	// Without --image, the committed image stays: no downgrade.
	o.Image = ""
	if res, err = bootstrap.Run(ctx, cluster.Config, o); err != nil || res.Changed() {
		t.Errorf("a run without --image after the upgrade: %v, changed %v", err, res != nil && res.Changed())
	}

	// Uninstall removes ferry and leaves what ferry applied for environments.
	appNS := newNamespace(t)
	workload := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: "app",
		Labels: map[string]string{apply.OwnerLabel: "staging"}}}
	if err := c.Create(ctx, workload); err != nil {
		t.Fatal(err)
	}
	u := bootstrap.DefaultUninstallOptions()
	u.Namespace, u.Timeout, u.Out = o.Namespace, 2*time.Minute, &out
	if err := bootstrap.Uninstall(ctx, cluster.Config, u); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.Namespace}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: o.Namespace}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: o.Namespace}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "ferry-env-kwok-cluster-admin"}},
	} {
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); !apierrors.IsNotFound(err) {
			t.Errorf("%T %s after uninstall: %v", obj, obj.GetName(), err)
		}
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(workload), workload); err != nil {
		t.Errorf("uninstall removed an environment's workload: %v", err)
	}
}

// TestBootstrapPreflightReadOnlyToken: a token that may read but not push
// fails the preflight, which says so with the fix, before anything changes:
// no commit, no namespace.
func TestBootstrapPreflightReadOnlyToken(t *testing.T) {
	repo, wc := bootRepo(t, true)
	user, password := "reader-"+bootRandom(), "pw-"+bootRandom()
	no := false
	if _, _, err := forge.Client.AdminCreateUser(gitea.CreateUserOption{Username: user, Email: user + "@ferry.invalid",
		Password: password, MustChangePassword: &no}); err != nil {
		t.Fatal(err)
	}
	read := gitea.AccessModeRead
	if _, err := forge.Client.AddCollaborator(forge.User, repo, user, gitea.AddCollaboratorOption{Permission: &read}); err != nil {
		t.Fatal(err)
	}
	readerClient, err := gitea.NewClient(forge.URL, gitea.SetBasicAuth(user, password))
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := readerClient.CreateAccessToken(gitea.CreateAccessTokenOption{Name: "ro",
		Scopes: []gitea.AccessTokenScope{"write:repository", "read:user"}})
	if err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	o := bootOptions(t, repo, &out)
	o.Credentials = bootstrap.Credentials{Token: token.Token}
	before := bootHistory(t, wc)
	_, err = bootstrap.Run(t.Context(), cluster.Config, o)
	if !errors.Is(err, bootstrap.ErrPreflight) {
		t.Fatalf("bootstrap with a read-only token: %v, want the preflight to fail\n%s", err, out.String())
	}
	var p *bootstrap.Problem
	if !errors.As(err, &p) || p.Check != "push" || !strings.Contains(p.Fix, "write access") {
		t.Errorf("error does not name the push check and its fix:\n%v", err)
	}
	if strings.Contains(err.Error(), token.Token) || strings.Contains(out.String(), token.Token) {
		t.Error("the token shows in the output")
	}
	for _, line := range []string{"ok   cluster", "ok   git", "ok   permissions", "FAIL push"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
	t.Logf("preflight output:\n%s\nerror:\n%v", out.String(), err)
	if after := bootHistory(t, wc); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("commits changed: %v → %v", before, after)
	}
	err = kubeClient(t).Get(t.Context(), client.ObjectKey{Name: o.Namespace}, &corev1.Namespace{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s after a failed preflight: %v", o.Namespace, err)
	}
}

// TestBootstrapPreflightClusterPermissions: a cluster user without rights
// fails the preflight, which lists what it may not do, and nothing changes.
func TestBootstrapPreflightClusterPermissions(t *testing.T) {
	ctx := t.Context()
	repo, wc := bootRepo(t, true)
	ns := newNamespace(t)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nobody"}}
	if err := kubeClient(t).Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	tr, err := cluster.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "nobody", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(cluster.Config)
	cfg.BearerToken = tr.Status.Token

	var out bytes.Buffer
	o := bootOptions(t, repo, &out)
	before := bootHistory(t, wc)
	_, err = bootstrap.Run(ctx, cfg, o)
	var p *bootstrap.Problem
	if !errors.Is(err, bootstrap.ErrPreflight) || !errors.As(err, &p) || p.Check != "permissions" {
		t.Fatalf("bootstrap as a user without rights: %v, want a permissions problem\n%s", err, out.String())
	}
	t.Logf("preflight output:\n%s\nerror:\n%v", out.String(), err)
	for _, want := range []string{"namespaces (cluster-wide): get, create, patch", "clusterroles.rbac.authorization.k8s.io (cluster-wide): get, create, patch",
		"secrets in namespace " + o.Namespace + ": create, update", "secrets in namespace " + o.Namespace + ": get", "serviceaccounts in namespace " + o.Namespace + ": impersonate", "cluster administrator"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if after := bootHistory(t, wc); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("commits changed: %v → %v", before, after)
	}
}

// TestBootstrapManifestsDryRun: every install object passes the API
// server's validation (server-side apply, dry run).
func TestBootstrapManifestsDryRun(t *testing.T) {
	ns := newNamespace(t) // dry-run needs namespaced objects' namespace
	o := manifests.DefaultOptions()
	o.Namespace, o.ConfigYAML = ns, []byte("namespace: "+ns+"\n")
	objs, err := manifests.Render(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	c := kubeClient(t)
	for _, obj := range objs {
		err := c.Apply(t.Context(), client.ApplyConfigurationFromUnstructured(obj), client.DryRunAll, client.FieldOwner("ferry"), client.ForceOwnership)
		if err != nil {
			t.Errorf("%s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
	if len(objs) < 10 {
		t.Errorf("%d objects rendered, want the whole install", len(objs))
	}
}

// bootBuild runs `go <verb>` for pkg into a temporary file and returns its
// path; verb is build or test (with -c).
func bootBuild(t *testing.T, verb, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), path.Base(pkg))
	args := []string{verb, "-o", bin, pkg}
	if verb == "test" {
		args = []string{"test", "-c", "-o", bin, pkg}
	}
	if out, err := exec.CommandContext(t.Context(), "go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// checkNoWildcard reads every ClusterRole and Role of ferry's install from
// the cluster and fails on any "*" in a rule.
func checkNoWildcard(t *testing.T, c client.Client) {
	t.Helper()
	sel := client.MatchingLabels{bootstrap.PartOfLabel: "ferry"}
	var crs rbacv1.ClusterRoleList
	var rs rbacv1.RoleList
	if err := c.List(t.Context(), &crs, sel); err != nil {
		t.Fatal(err)
	}
	if err := c.List(t.Context(), &rs, sel); err != nil {
		t.Fatal(err)
	}
	var roles []string
	check := func(kind, name string, rules []rbacv1.PolicyRule) {
		roles = append(roles, kind+"/"+name)
		for i, r := range rules {
			for _, f := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames, r.NonResourceURLs} {
				if slices.Contains(f, "*") {
					t.Errorf("%s %s rule %d holds a wildcard: %+v", kind, name, i, r)
				}
			}
		}
	}
	for _, r := range crs.Items {
		check("ClusterRole", r.Name, r.Rules)
	}
	for _, r := range rs.Items {
		check("Role", r.Namespace+"/"+r.Name, r.Rules)
	}
	if len(roles) < 3 {
		t.Errorf("only %v of ferry's roles in the cluster", roles)
	}
	t.Logf("roles without a wildcard: %v", roles)
}
