package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	"github.com/go-git/go-git/v5/plumbing"
	"golang.org/x/crypto/ssh"

	"ferry.dev/ferry/sandbox"
	"ferry.dev/ferry/source"
)

// privateRepo creates a private repository with one pushed commit and
// returns a working copy and the commit.
func privateRepo(t *testing.T, name string) (*sandbox.Clone, string) {
	t.Helper()
	if _, _, err := forge.Client.CreateRepo(gitea.CreateRepoOption{Name: name, Private: true, DefaultBranch: "main"}); err != nil {
		t.Fatalf("create repo %s: %v", name, err)
	}
	wc, err := forge.Clone(t.Context(), name, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sha, err := wc.CommitAndPush(t.Context(), map[string]string{"envs/staging/cm.yaml": "v: 1\n"}, "Add staging")
	if err != nil {
		t.Fatal(err)
	}
	return wc, sha
}

// TestSourceHTTPToken follows a private repository over smart HTTP with a
// token file: a wrong token is reported as ErrAuth naming the URL and the
// file but never the token, the last good revision is kept, and the right
// token again converges on the newest commit.
func TestSourceHTTPToken(t *testing.T) {
	ctx := t.Context()
	name := "source-http"
	wc, first := privateRepo(t, name)
	url := forge.CloneURL(name)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(forge.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	repo, err := source.Open(url, source.Credentials{TokenFile: tokenFile}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rev, err := repo.Fetch(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Hash().String() != first {
		t.Fatalf("fetched %s, pushed %s", rev.Hash(), first)
	}
	f, err := rev.Tree.File("envs/staging/cm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := f.Contents(); body != "v: 1\n" {
		t.Fatalf("content %q", body)
	}

	w := source.NewWatcher(repo, "main", source.WatchOptions{Interval: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond, Timeout: 10 * time.Second})
	go func() { _ = w.Run(ctx) }()
	select {
	case got := <-w.Revisions():
		if got.Hash().String() != first {
			t.Fatalf("watcher delivered %s, want %s", got, first[:7])
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no first revision (Err %v)", w.Err())
	}

	const wrong = "0123456789abcdef0123456789abcdef01234567"
	if err := os.WriteFile(tokenFile, []byte(wrong), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() (bool, string) {
		return errors.Is(w.Err(), source.ErrAuth), fmt.Sprintf("Err = %v", w.Err())
	})
	msg := w.Err().Error()
	for _, s := range []string{url, "check the token in " + tokenFile} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not say %q", msg, s)
		}
	}
	if strings.Contains(msg, wrong) || strings.Contains(msg, forge.Token) {
		t.Fatalf("error shows a token: %q", msg)
	}
	if w.Last().Hash().String() != first {
		t.Fatalf("last good revision lost: %v", w.Last())
	}

	second, err := wc.CommitAndPush(ctx, map[string]string{"envs/staging/cm.yaml": "v: 2\n"}, "Bump staging")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte(forge.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-w.Revisions():
		if got.Hash().String() != second {
			t.Fatalf("after the right token: %s, want %s", got, second[:7])
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no revision after the right token (Err %v)", w.Err())
	}
	if w.Err() != nil {
		t.Fatalf("Err after recovery: %v", w.Err())
	}
}

func TestSourceErrors(t *testing.T) {
	name := "source-errors"
	privateRepo(t, name)
	if _, err := forge.CreateRepo("source-empty"); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := fmt.Sprintf("http://%s/ferry/app.git", l.Addr())
	l.Close()
	token := source.Credentials{Token: forge.Token}

	cases := []struct {
		name   string
		url    string
		creds  source.Credentials
		branch string
		kind   error
		says   string
	}{
		{"unknown branch", forge.CloneURL(name), token, "production", source.ErrBranchNotFound, "branch production"},
		{"empty repository", forge.CloneURL("source-empty"), token, "main", source.ErrEmptyRepository, ""},
		{"no such repository", forge.CloneURL("source-none"), token, "main", source.ErrRepositoryNotFound, ""},
		{"no credentials", forge.CloneURL(name), source.Credentials{}, "main", source.ErrAuth, "no credentials are configured"},
		{"unreachable", closed, token, "main", source.ErrUnreachable, "connection refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo, err := source.Open(tc.url, tc.creds, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			_, err = repo.Fetch(t.Context(), tc.branch)
			if !errors.Is(err, tc.kind) || !strings.HasPrefix(err.Error(), tc.url+" ") || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want %v naming %s and saying %q", err, tc.kind, tc.url, tc.says)
			}
			if strings.Contains(err.Error(), forge.Token) {
				t.Fatalf("error shows the token: %v", err)
			}
		})
	}
}

// TestSourceSSH fetches over Gitea's built-in SSH server with a read-only
// deploy key, checking the host key against known_hosts built from the key
// Gitea generated; a wrong host key or a key Gitea does not know fails.
func TestSourceSSH(t *testing.T) {
	name := "source-ssh"
	_, sha := privateRepo(t, name)
	dir := t.TempDir()
	deployKey, deployPub := sshKey(t)
	if _, _, err := forge.Client.CreateDeployKey(forge.User, name, gitea.CreateKeyOption{Title: "ferry", Key: deployPub, ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	keyFile := writeSecret(t, filepath.Join(dir, "deploy_key"), deployKey)
	hosts, err := forge.KnownHosts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	knownHosts := writeSecret(t, filepath.Join(dir, "known_hosts"), hosts)
	// Gitea's host key is RSA: one wrong known_hosts line has another RSA
	// key, one a key of another type.
	_, otherPub := sshKey(t)
	wrongHosts := writeSecret(t, filepath.Join(dir, "wrong_hosts"), []byte(fmt.Sprintf("[127.0.0.1]:%s %s\n", port(forge.SSHAddr), rsaPub(t))))
	otherType := writeSecret(t, filepath.Join(dir, "other_type"), []byte(fmt.Sprintf("[127.0.0.1]:%s %s\n", port(forge.SSHAddr), otherPub)))
	strangerKey, _ := sshKey(t)
	url := forge.SSHURL(name)

	repo, err := source.Open(url, source.Credentials{SSHKeyFile: keyFile, KnownHostsFile: knownHosts}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rev, err := repo.Fetch(t.Context(), "main")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Hash().String() != sha {
		t.Fatalf("fetched %s over SSH, pushed %s", rev.Hash(), sha)
	}

	cases := []struct {
		name  string
		creds source.Credentials
		kind  error
		says  string
	}{
		{"wrong host key", source.Credentials{SSHKeyFile: keyFile, KnownHostsFile: wrongHosts}, source.ErrHostKey, "check the known_hosts in " + wrongHosts},
		{"host key of another type", source.Credentials{SSHKeyFile: keyFile, KnownHostsFile: otherType}, source.ErrHostKey, "check the known_hosts in " + otherType},
		{"unknown key", source.Credentials{SSHKey: strangerKey, KnownHosts: hosts}, source.ErrAuth, "check that the configured SSH key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo, err := source.Open(url, tc.creds, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			_, err = repo.Fetch(t.Context(), "main")
			if !errors.Is(err, tc.kind) || !strings.HasPrefix(err.Error(), url+" ") || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want %v naming %s and saying %q", err, tc.kind, url, tc.says)
			}
		})
	}
}

// sshKey is a fresh ed25519 key: the private key in PEM form and the public
// key in authorized_keys form.
func sshKey(t *testing.T) ([]byte, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
}

// rsaPub is a fresh RSA public key in authorized_keys form.
func rsaPub(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}

func writeSecret(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func port(hostPort string) string {
	_, p, _ := net.SplitHostPort(hostPort)
	return p
}

// TestSourcePushCompareAndSwap: ferry's push moves a branch only from the
// tip it expects; a branch someone moved meanwhile is left as it is.
func TestSourcePushCompareAndSwap(t *testing.T) {
	ctx := t.Context()
	name := "push-cas"
	wc, _ := newRepo(t, name, map[string]string{"a.txt": "1\n"}, "First")
	repo, err := source.Open(forge.CloneURL(name), source.Credentials{Token: forge.Token}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base, err := repo.Fetch(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	mine, err := repo.CommitTree(base.Commit.TreeHash, []plumbing.Hash{base.Hash()}, "Mine\n", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Someone pushes first.
	theirs, err := wc.CommitAndPush(ctx, map[string]string{"b.txt": "2\n"}, "Theirs")
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Push(ctx, "main", mine.Hash(), base.Hash()); !errors.Is(err, source.ErrRejected) {
		t.Fatalf("push over a moved branch: %v, want ErrRejected", err)
	}
	if tip, _ := repo.Tip(ctx, "main"); tip.String() != theirs {
		t.Fatalf("main at %s, want their commit %s kept", tip, theirs[:7])
	}
	fresh, err := repo.Fetch(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	again, err := repo.CommitTree(fresh.Commit.TreeHash, []plumbing.Hash{fresh.Hash()}, "Mine, again\n", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Push(ctx, "main", again.Hash(), fresh.Hash()); err != nil {
		t.Fatalf("push from the fresh tip: %v", err)
	}
	if tip, _ := repo.Tip(ctx, "main"); tip != again.Hash() {
		t.Fatalf("main at %s, want %s", tip, again.Short())
	}
}
