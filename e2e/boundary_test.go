package e2e

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"ferry.dev/ferry/sandbox"
	"ferry.dev/ferry/scope"
	"ferry.dev/ferry/state"
)

// reportTo is the report section that sends statuses to the package's Gitea.
func reportTo(tokenFile string) string {
	return fmt.Sprintf("report: {provider: gitea, url: %q, tokenFile: %s}\n", strings.TrimSuffix(forge.URL, "/"), tokenFile)
}

// hasStatus waits until commit carries a status of context whose "state:
// description" holds want.
func hasStatus(t *testing.T, repo, commit, context, want string) {
	t.Helper()
	eventually(t, time.Minute, func() (bool, string) {
		got := ferryStatuses(t, repo, commit, context)
		for _, s := range got {
			if strings.Contains(s, want) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%s on %s: %q, want one holding %q", context, commit[:7], got, want)
	})
}

// absent checks for a while that the object does not exist.
func absent(t *testing.T, c client.Client, obj client.Object, what string) {
	t.Helper()
	consistently(t, 2*time.Second, func() (bool, string) {
		err := c.Get(t.Context(), client.ObjectKeyFromObject(obj), obj)
		return err != nil, what + " exists"
	})
}

// TestScopeRefusesWhatIsNotStagings: a staging commit writing into
// production's namespace, and one binding cluster-admin, are refused before
// anything is applied: the verdict, the history and the commit status name
// the object, its file and the rule.
func TestScopeRefusesWhatIsNotStagings(t *testing.T) {
	p := newPipeline(t, pipelineFiles("v1"))
	cfg := p.config() + fmt.Sprintf("server: {addr: %q}\n", freeAddr(t)) + reportTo(p.tokenFile)
	sandbox.StartFerry(t, buildFerry(t), writeConfig(t, cfg))
	first := p.tip(t, "main")
	requireHealthy(t, p.waitVerdict(t, "staging", first, 2*time.Minute))

	for _, tc := range []struct {
		file, doc, want string
		obj             client.Object
	}{{
		file: "intruder.yaml",
		doc:  fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: intruder\n  namespace: %s\ndata:\n  k: v\n", p.prodNS),
		want: fmt.Sprintf("ConfigMap/%[1]s/intruder (envs/staging/intruder.yaml) is in namespace %[1]s; staging may write only %[2]s (scope.namespaces)", p.prodNS, p.ns),
		obj:  &corev1.ConfigMap{},
	}, {
		file: "admin.yaml",
		doc:  "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: mallory-admin-" + p.ns + "\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: User, name: mallory, apiGroup: rbac.authorization.k8s.io}]\n",
		want: "ClusterRoleBinding/mallory-admin-" + p.ns + " (envs/staging/admin.yaml) is cluster-scoped; staging may create only Namespace (scope.clusterKinds)",
		obj:  &rbacv1.ClusterRoleBinding{},
	}} {
		files := pipelineFiles("v1")
		files["envs/staging/kustomization.yaml"] = "resources:\n  - ../../base\n  - extra.yaml\n  - " + tc.file + "\nimages:\n  - name: registry.invalid/web\n    newTag: v1\n"
		files["envs/staging/"+tc.file] = tc.doc
		sha := p.pushMain(t, files, "Add "+tc.file)
		v := p.waitVerdict(t, "staging", sha, 2*time.Minute)
		if v.Outcome != state.OutcomeRefused || !strings.HasPrefix(v.Reason, "not applied: ") || !strings.Contains(v.Reason, tc.want) {
			t.Fatalf("verdict on %s: %s %q, want it refused: %q", tc.file, v.Outcome, v.Reason, tc.want)
		}
		hasStatus(t, p.repo, sha, "ferry/staging", "failure: not applied: "+tc.want[:40])
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(tc.doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		absent(t, p.c, u, tc.file)
	}
}

// TestImpersonationIsReal: with a ServiceAccount bound to its scope, the
// environment applies as that account, and a Role granting more than it
// holds is refused by the API server itself (RBAC escalation check), not by
// ferry's scope check, which it passes.
func TestImpersonationIsReal(t *testing.T) {
	f := newEnv(t, appFiles("v1"))
	rbac, err := scope.RBAC(scope.Grant{Scope: scope.Scope{Environment: f.name, Namespaces: []string{f.ns}, ClusterKinds: []string{"Namespace"}}, Namespace: f.stateNS})
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(rbac), "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil || u.Object == nil {
			continue
		}
		if err := f.c.Patch(t.Context(), u, client.Apply, client.FieldOwner("e2e"), client.ForceOwnership); err != nil {
			t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
		if u.GetNamespace() == "" {
			t.Cleanup(func() { _ = f.c.Delete(t.Context(), u) })
		}
	}
	f.extra = "    serviceAccount: " + scope.ServiceAccountPrefix + f.name + "\n"
	f.start(t)
	requireHealthy(t, f.waitVerdict(t, f.name, f.tip(t, "main"), 2*time.Minute))

	files := appFiles("v1")
	files["envs/staging/kustomization.yaml"] = "resources:\n  - ../../base\n  - extra.yaml\n  - greedy.yaml\nimages:\n  - name: registry.invalid/web\n    newTag: v1\n"
	files["envs/staging/greedy.yaml"] = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: greedy\nrules:\n  - apiGroups: [\"\"]\n    resources: [nodes]\n    verbs: [get, list]\n"
	sha := f.pushMain(t, files, "A Role beyond the environment's rights")
	v := f.waitVerdict(t, f.name, sha, 2*time.Minute)
	if v.Outcome == "Healthy" || strings.Contains(v.Reason, "scope.") || !strings.Contains(v.Reason, "forbidden") {
		t.Fatalf("verdict: %s %q; want the API server's refusal", v.Outcome, v.Reason)
	}
	absent(t, f.c, &rbacv1.Role{ObjectMeta: metav1ObjectMeta(f.ns, "greedy")}, "Role greedy")
}

// TestLiveOptOutIsIgnored: `ferry.dev/reconcile: disabled` set by hand on a
// live object does not make ferry skip it: the next commit is applied to it.
func TestLiveOptOutIsIgnored(t *testing.T) {
	f := newEnv(t, appFiles("v1"))
	f.start(t)
	requireHealthy(t, f.waitVerdict(t, f.name, f.tip(t, "main"), 2*time.Minute))
	cm, ok := getCM(t, f.c, f.ns, "extra")
	if !ok {
		t.Fatal("no ConfigMap extra")
	}
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations["ferry.dev/reconcile"] = "disabled"
	cm.Annotations["ferry.dev/prune"] = "disabled"
	if err := f.c.Update(t.Context(), cm); err != nil {
		t.Fatal(err)
	}
	files := appFiles("v1")
	files["envs/staging/extra.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  k: v2\n"
	sha := f.pushMain(t, files, "Change extra")
	requireHealthy(t, f.waitVerdict(t, f.name, sha, 2*time.Minute))
	if cm, _ := getCM(t, f.c, f.ns, "extra"); cm.Data["k"] != "v2" {
		t.Fatalf("extra = %v: the hand-set annotation made ferry skip it", cm.Data)
	}
	t.Log("reconcile: disabled in git leaves the object alone: neither changed nor pruned")
	files["envs/staging/extra.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  annotations: {ferry.dev/reconcile: disabled}\ndata:\n  k: v3\n"
	sha = f.pushMain(t, files, "Leave extra alone")
	requireHealthy(t, f.waitVerdict(t, f.name, sha, 2*time.Minute))
	consistently(t, 3*time.Second, func() (bool, string) {
		cm, ok := getCM(t, f.c, f.ns, "extra")
		return ok && cm.Data["k"] == "v2", fmt.Sprintf("extra exists %v: %v", ok, cm)
	})

	t.Log("a hand-set prune: disabled does not keep an object git removed")
	files["envs/staging/kustomization.yaml"] = "resources:\n  - ../../base\nimages:\n  - name: registry.invalid/web\n    newTag: v1\n"
	sha = f.pushMain(t, files, "Drop extra")
	requireHealthy(t, f.waitVerdict(t, f.name, sha, 2*time.Minute))
	eventually(t, time.Minute, func() (bool, string) {
		_, ok := getCM(t, f.c, f.ns, "extra")
		return !ok, "extra still there"
	})
}

// billionLaughs is a 10-level YAML alias bomb as a ConfigMap.
func billionLaughs() string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\ndata:\n  a0: &a0 lol\n")
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(&b, "  a%d: &a%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// peakRSS reads the peak resident set size of process pid, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestAliasBombIsBounded: a 10-level alias bomb committed to staging fails
// that revision, naming the file, while ferry stays under 300 MiB and
// production goes on reconciling.
func TestAliasBombIsBounded(t *testing.T) {
	p := newPipeline(t, pipelineFiles("v1"))
	cmd := sandbox.StartFerry(t, buildFerry(t), writeConfig(t, p.config()))
	requireHealthy(t, p.waitDecided(t, "staging", p.tip(t, "main"), 2*time.Minute))
	requireHealthy(t, p.waitVerdict(t, "production", p.tip(t, "production"), 2*time.Minute))

	files := pipelineFiles("v1")
	files["envs/staging/kustomization.yaml"] = "resources:\n  - ../../base\n  - extra.yaml\n  - lol.yaml\nimages:\n  - name: registry.invalid/web\n    newTag: v1\n"
	files["envs/staging/lol.yaml"] = billionLaughs()
	bomb := p.pushMain(t, files, "Laugh")

	p.tip(t, "production")
	p.git(t, "checkout", "--quiet", "-B", "production", "origin/production")
	prodFiles := pipelineFiles("v1")
	prodFiles["envs/production/kustomization.yaml"] = "resources:\n  - ../../base\nimages:\n  - name: registry.invalid/web\n    newTag: v1-hotfix\n"
	hotfix := p.push(t, prodFiles, nil, "Hotfix production")

	v := p.waitVerdict(t, "staging", bomb, 2*time.Minute)
	if v.Outcome == "Healthy" || !strings.Contains(v.Reason, "envs/staging/lol.yaml") || !strings.Contains(v.Reason, "alias bomb") {
		t.Fatalf("verdict on the bomb: %s %q", v.Outcome, v.Reason)
	}
	requireHealthy(t, p.waitVerdict(t, "production", hotfix, 2*time.Minute))
	if rss := peakRSS(t, cmd.Process.Pid); rss > 300<<20 {
		t.Fatalf("ferry's peak RSS is %d MiB, want under 300 MiB", rss>>20)
	} else {
		t.Logf("ferry's peak RSS: %d MiB", rss>>20)
	}
}

// TestForkPullRequestIsNotPlanned: a pull request from a fork (a second
// user's) is not rendered: its plan status says it was skipped and how to
// allow it. The fork's author asking for a plan changes nothing; a user
// with write access asking does. A comment the fork's author planted with
// ferry's marker is never edited.
func TestForkPullRequestIsNotPlanned(t *testing.T) {
	p := newPipeline(t, pipelineFiles("v1"))
	cfg := p.config() + fmt.Sprintf("server: {addr: %q}\n", freeAddr(t)) + reportTo(p.tokenFile)
	sandbox.StartFerry(t, buildFerry(t), writeConfig(t, cfg))
	p.waitDecided(t, "staging", p.tip(t, "main"), 2*time.Minute)

	user, password := "mallory-"+randomSuffix(t), "pw-"+randomSuffix(t)
	no := false
	if _, _, err := forge.Client.AdminCreateUser(gitea.CreateUserOption{Username: user, Email: user + "@example.invalid", Password: password, MustChangePassword: &no}); err != nil {
		t.Fatal(err)
	}
	mallory, err := gitea.NewClient(strings.TrimSuffix(forge.URL, "/"), gitea.SetBasicAuth(user, password), gitea.SetGiteaVersion(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := mallory.CreateFork(forge.User, p.repo, gitea.CreateForkOption{}); err != nil {
		t.Fatal(err)
	}
	p.git(t, "checkout", "--quiet", "-B", "feature", "origin/main")
	files := pipelineFiles("v1")
	files["envs/staging/extra.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  k: from-a-fork\n"
	for name, content := range files {
		if err := p.wc.Write(name, content); err != nil {
			t.Fatal(err)
		}
	}
	head, err := p.wc.Commit(t.Context(), "A change from a fork")
	if err != nil {
		t.Fatal(err)
	}
	p.git(t, "push", "--quiet", fmt.Sprintf("%s%s/%s.git", forge.URL, user, p.repo), "HEAD:refs/heads/feature")
	pr, _, err := mallory.CreatePullRequest(forge.User, p.repo, gitea.CreatePullRequestOption{Head: user + ":feature", Base: "main", Title: "From a fork"})
	if err != nil {
		t.Fatal(err)
	}
	planted := "<!-- ferry/plan/staging -->\nplanted by " + user
	c, _, err := mallory.CreateIssueComment(forge.User, p.repo, pr.Index, gitea.CreateIssueCommentOption{Body: planted})
	if err != nil {
		t.Fatal(err)
	}
	hasStatus(t, p.repo, head, "ferry/plan/staging", "pending: skipped: from a fork, not rendered; a user with write access may comment /ferry plan")
	plans := func() (int, string) { return planComments(t, p.repo, pr.Index) }
	t.Log("the fork's author asks: still skipped")
	if _, _, err := mallory.CreateIssueComment(forge.User, p.repo, pr.Index, gitea.CreateIssueCommentOption{Body: "/ferry plan"}); err != nil {
		t.Fatal(err)
	}
	consistently(t, 5*time.Second, func() (bool, string) {
		n, body := plans()
		return n == 0, "planned on the fork author's request: " + body
	})
	t.Log("the repository's owner asks: planned")
	if _, _, err := forge.Client.CreateIssueComment(forge.User, p.repo, pr.Index, gitea.CreateIssueCommentOption{Body: "/ferry plan"}); err != nil {
		t.Fatal(err)
	}
	hasStatus(t, p.repo, head, "ferry/plan/staging", "success: 0 created, 1 changed, 0 pruned")
	eventually(t, time.Minute, func() (bool, string) {
		n, body := plans()
		return n == 1 && strings.Contains(body, "from-a-fork"), fmt.Sprintf("%d plan comments: %s", n, body)
	})
	got, _, err := forge.Client.GetIssueComment(forge.User, p.repo, c.ID)
	if err != nil || got.Body != planted {
		t.Fatalf("the planted comment was edited: %q, %v", got.Body, err)
	}
}

func randomSuffix(t *testing.T) string {
	t.Helper()
	return strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
}
