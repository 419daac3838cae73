package e2e

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	"filippo.io/age"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"ferry.dev/ferry/internal/sopstest"
	"ferry.dev/ferry/sandbox"
	"ferry.dev/ferry/state"
)

// secretManifest is the Secret db holding password, as committed before
// encryption.
func secretManifest(password string) string {
	return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\ndata:\n  password: " +
		base64.StdEncoding.EncodeToString([]byte(password)) + "\n"
}

// TestSecretsInGit: SOPS-encrypted Secrets through the whole loop. Staging
// decrypts with an age key from a Secret in ferry's namespace, production
// with its own key from a file. An encrypted Secret is applied with its
// plaintext; a rotation goes through a pull request whose plan shows "1
// key changed" and no value; a bad rotation (its pods crash-loop) is
// reverted and the cluster's Secret holds the old value again; a commit
// that makes staging read production's file fails in staging. Then ferry's
// log, its state, its Events, the forge's comments and statuses, and the
// status page hold none of the plaintexts, in clear or base64.
func TestSecretsInGit(t *testing.T) {
	stgKey, prodKey := sopstest.AgeIdentity(t), sopstest.AgeIdentity(t)
	const v1, v2, v3, prodPW = "e2e-pw-one-7f3a9c2e41", "e2e-pw-two-b81d0e5fa2", "e2e-pw-three-c90e7d1b33", "e2e-prod-pw-5a6b7c8d9e"
	stg := sopstest.For{Age: []*age.X25519Identity{stgKey}, EncryptedRegex: "^(data|stringData)$"}
	prod := sopstest.For{Age: []*age.X25519Identity{prodKey}, EncryptedRegex: "^(data|stringData)$"}
	stagingKustomization := "resources:\n  - ../../base\n  - extra.yaml\n  - db.enc.yaml\nimages:\n  - name: registry.invalid/web\n    newTag: v1\n"

	files := pipelineFiles("v1")
	files["envs/staging/kustomization.yaml"] = stagingKustomization
	files["envs/staging/db.enc.yaml"] = sopstest.Encrypt(t, "db.enc.yaml", secretManifest(v1), stg)
	files["envs/production/kustomization.yaml"] = "resources:\n  - ../../base\n  - secrets\nimages:\n  - name: registry.invalid/web\n    newTag: v1\n"
	files["envs/production/secrets/kustomization.yaml"] = "resources: [db.enc.yaml]\n"
	files["envs/production/secrets/db.enc.yaml"] = sopstest.Encrypt(t, "db.enc.yaml", secretManifest(prodPW), prod)
	p := newPipeline(t, files)

	// Staging's key in a Secret in ferry's namespace, production's in a file.
	keySecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: p.stateNS, Name: "sops-keys-staging"},
		Data: map[string][]byte{"identity.agekey": sopstest.AgeKeyFile(stgKey)}}
	if err := p.c.Create(t.Context(), keySecret); err != nil {
		t.Fatal(err)
	}
	prodKeyFile := filepath.Join(t.TempDir(), "production.agekey")
	if err := os.WriteFile(prodKeyFile, sopstest.AgeKeyFile(prodKey), 0o600); err != nil {
		t.Fatal(err)
	}
	p.extra = "    decryption: {secretRef: {name: sops-keys-staging}}\n"
	cfg := p.config()
	i := strings.LastIndex(cfg, "    onFailure: revert\n")
	cfg = cfg[:i] + "    decryption: {keyFiles: [" + prodKeyFile + "]}\n" + cfg[i:]
	addr := freeAddr(t)
	cfg += fmt.Sprintf("server: {addr: %q}\nreport: {provider: gitea, url: %q, tokenFile: %s}\n", addr, strings.TrimSuffix(forge.URL, "/"), p.tokenFile)
	bin, cfgPath := buildFerry(t), writeConfig(t, cfg)
	ferry := sandbox.StartFerry(t, bin, cfgPath)
	logPath := ferry.Stdout.(*os.File).Name()

	first := p.tip(t, "main")
	requireHealthy(t, p.waitDecided(t, "staging", first, 2*time.Minute))
	requireHealthy(t, p.waitDecided(t, "production", first, 2*time.Minute))
	p.waitSecret(t, p.ns, v1)
	p.waitSecret(t, p.prodNS, prodPW)

	t.Log("a rotation through a pull request")
	p.git(t, "checkout", "--quiet", "-B", "rotate", "origin/main")
	head, err := p.wc.CommitAndPush(t.Context(), map[string]string{
		"envs/staging/db.enc.yaml": sopstest.Encrypt(t, "db.enc.yaml", secretManifest(v2), stg),
	}, "Rotate the staging database password")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.wc.Push(t.Context(), "rotate"); err != nil {
		t.Fatal(err)
	}
	pr, err := forge.OpenPullRequest(p.repo, "rotate", "main", "Rotate the staging database password")
	if err != nil {
		t.Fatal(err)
	}
	waitStatuses(t, p.repo, head, "ferry/plan/staging", []string{"success: 0 created, 1 changed, 0 pruned"})
	var plan string
	eventually(t, time.Minute, func() (bool, string) {
		plan = ""
		for _, c := range p.comments(t, pr.Index) {
			if strings.Contains(c, "ferry plan for") && strings.Contains(c, head[:7]) {
				plan = c
			}
		}
		return strings.Contains(plan, "| configured: 1 key changed (password) |") &&
			strings.Contains(plan, "# Secret values: 1 key changed (password)"), "plan comment: " + plan
	})
	for _, l := range strings.Split(plan, "\n") {
		if strings.Contains(l, "Secret") || strings.Contains(l, "password") {
			t.Logf("plan comment: %s", l)
		}
	}
	diff, code := ferryCLI(t, bin, cfgPath, "diff", "staging", "--ref", "rotate")
	if code != 1 || !strings.Contains(diff, "# Secret values: 1 key changed (password)") {
		t.Errorf("ferry diff staging --ref rotate: exit %d, want 1 and the key change:\n%s", code, diff)
	}
	if err := p.wc.Push(t.Context(), "rotate:main"); err != nil {
		t.Fatal(err)
	}
	requireHealthy(t, p.waitDecided(t, "staging", head, 2*time.Minute))
	p.waitSecret(t, p.ns, v2)

	t.Log("a bad rotation: the pods crash-loop on it")
	bad := withPodAnnotation("v1", sandbox.FailCrashLoop)
	bad["envs/staging/kustomization.yaml"] = stagingKustomization
	bad["envs/staging/db.enc.yaml"] = sopstest.Encrypt(t, "db.enc.yaml", secretManifest(v3), stg)
	badSHA := p.pushMain(t, bad, "Rotate the staging database password again")
	v := p.waitDecided(t, "staging", badSHA, 2*time.Minute)
	if v.Action.Kind != state.ActionReverted {
		t.Fatalf("bad rotation: %+v, want a revert", v)
	}
	p.waitSecret(t, p.ns, v2)
	revert := p.tip(t, "main")
	requireHealthy(t, p.waitDecided(t, "staging", revert, 2*time.Minute))

	t.Log("the bad rotation encrypted anew: the same plaintext, so the same digest, quarantined")
	bad["envs/staging/db.enc.yaml"] = sopstest.Encrypt(t, "db.enc.yaml", secretManifest(v3), stg)
	again := p.pushMain(t, bad, "Rotate the staging database password once more")
	v = p.waitVerdict(t, "staging", again, time.Minute)
	if v.Outcome != state.OutcomeQuarantined || !strings.Contains(v.Reason, "identical to reverted "+badSHA[:7]) {
		t.Fatalf("re-encrypted bad rotation: %+v, want it quarantined as identical to %s", v, badSHA[:7])
	}
	p.waitSecret(t, p.ns, v2)

	t.Log("staging cannot decrypt production's file")
	steal := p.pushMain(t, map[string]string{
		"envs/staging/kustomization.yaml": strings.Replace(stagingKustomization, "  - db.enc.yaml\n", "  - db.enc.yaml\n  - ../production/secrets\n", 1),
	}, "Read production's database password")
	v = p.waitVerdict(t, "staging", steal, 2*time.Minute)
	t.Logf("verdict on %s: %s: %s", steal[:7], v.Outcome, v.Reason)
	for _, w := range []string{"envs/production/secrets/db.enc.yaml", prodKey.Recipient().String(), "none of this environment's keys decrypts it"} {
		if !strings.Contains(v.Reason, w) {
			t.Errorf("verdict on %s: %q does not say %q", steal[:7], v.Reason, w)
		}
	}
	if got, _ := p.secret(t, p.ns, "db"); got == prodPW {
		t.Error("production's password reached staging")
	}

	t.Log("no plaintext anywhere")
	needles := map[string]string{}
	for _, s := range []string{v1, v2, v3, prodPW} {
		needles[s] = s
		needles[base64.StdEncoding.EncodeToString([]byte(s))] = s + " (base64)"
	}
	scan := func(what, text string) {
		t.Helper()
		if text == "" {
			t.Errorf("%s: nothing to scan", what)
		}
		for n, name := range needles {
			if strings.Contains(text, n) {
				t.Errorf("%s holds %s", what, name)
			}
		}
	}
	logData, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	scan("ferry's log", string(logData))
	var cms corev1.ConfigMapList
	if err := p.c.List(t.Context(), &cms, client.InNamespace(p.stateNS)); err != nil {
		t.Fatal(err)
	}
	scan("the state ConfigMaps", mustYAML(t, cms))
	var events corev1.EventList
	if err := p.c.List(t.Context(), &events, client.InNamespace(p.stateNS)); err != nil {
		t.Fatal(err)
	}
	scan("the Events", mustYAML(t, events))
	scan("the pull request's comments", strings.Join(p.comments(t, pr.Index), "\n"))
	scan("ferry diff", diff)
	var statuses []string
	for _, c := range []string{first, head, badSHA, revert, again, steal} {
		all, _, err := forge.Client.ListStatuses(forge.User, p.repo, c, gitea.ListStatusesOption{ListOptions: gitea.ListOptions{PageSize: 50}})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range all {
			statuses = append(statuses, s.Context+" "+string(s.State)+" "+s.Description+" "+s.TargetURL)
		}
	}
	scan("the commit statuses", strings.Join(statuses, "\n"))
	for _, path := range []string{"/environments", "/environments/staging", "/environments/production", "/api/v1/environments", "/api/v1/environments/staging"} {
		scan("the status page "+path, httpGet(t, "http://"+addr+path))
	}
}

// waitSecret waits until the Secret db in ns holds password.
func (f *fixture) waitSecret(t *testing.T, ns, password string) {
	t.Helper()
	eventually(t, time.Minute, func() (bool, string) {
		got, ok := f.secret(t, ns, "db")
		return ok && got == password, fmt.Sprintf("Secret %s/db: found %v, password %d bytes", ns, ok, len(got))
	})
}

// secret returns the password of the Secret name in ns.
func (f *fixture) secret(t *testing.T, ns, name string) (string, bool) {
	t.Helper()
	s := &corev1.Secret{}
	if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		return "", false
	}
	return string(s.Data["password"]), true
}

// comments returns the bodies of the pull request's comments.
func (f *fixture) comments(t *testing.T, pr int64) []string {
	t.Helper()
	cs, _, err := forge.Client.ListIssueComments(forge.User, f.repo, pr, gitea.ListIssueCommentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, c.Body)
	}
	return out
}

func mustYAML(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSecretsKeyArrivesLate: an environment whose key Secret does not exist
// yet gets no verdict, so no revert, only a phase that names the Secret;
// once the Secret is created, the same commit is applied.
func TestSecretsKeyArrivesLate(t *testing.T) {
	key := sopstest.AgeIdentity(t)
	const pw = "e2e-late-pw-3e4f5a6b7c"
	files := appFiles("v1")
	files["envs/staging/kustomization.yaml"] = "resources:\n  - ../../base\n  - extra.yaml\n  - db.enc.yaml\n"
	files["envs/staging/db.enc.yaml"] = sopstest.Encrypt(t, "db.enc.yaml", secretManifest(pw),
		sopstest.For{Age: []*age.X25519Identity{key}, EncryptedRegex: "^(data|stringData)$"})
	e := newEnv(t, files)
	e.extra = "    onFailure: revert\n    decryption: {secretRef: {name: sops-keys-late}}\n"
	first := e.head(t)
	e.start(t)

	eventually(t, time.Minute, func() (bool, string) {
		st := e.state(t, e.name)
		return st.Phase == state.PhaseFailed && strings.Contains(st.Message, "decryption Secret "+e.stateNS+"/sops-keys-late") &&
			strings.Contains(st.Message, "not found"), fmt.Sprintf("phase %s: %s", st.Phase, st.Message)
	})
	consistently(t, 2*time.Second, func() (bool, string) {
		v, ok := e.state(t, e.name).VerdictFor(first)
		return !ok, fmt.Sprintf("a verdict without keys: %+v", v)
	})

	keySecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.stateNS, Name: "sops-keys-late"},
		Data: map[string][]byte{"identity.agekey": sopstest.AgeKeyFile(key)}}
	if err := e.c.Create(t.Context(), keySecret); err != nil {
		t.Fatal(err)
	}
	requireHealthy(t, e.waitVerdict(t, e.name, first, 2*time.Minute))
	e.waitSecret(t, e.ns, pw)
}
