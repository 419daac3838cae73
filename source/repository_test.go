package source

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
)

func open(t *testing.T, url string, creds Credentials, cache string) *Repository {
	t.Helper()
	r, err := Open(url, creds, cache)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fileContent(t *testing.T, rev *Revision, path string) string {
	t.Helper()
	f, err := rev.Tree.File(path)
	if err != nil {
		t.Fatalf("%s: %s: %v", rev, path, err)
	}
	s, err := f.Contents()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTipDoesNotFetch(t *testing.T) {
	rem := newRemote(t)
	sha := rem.commit(map[string]string{"envs/staging/cm.yaml": "a: 1\n"}, "first")
	repo := open(t, rem.url, Credentials{}, t.TempDir())

	tip, err := repo.Tip(t.Context(), "main")
	if err != nil {
		t.Fatal(err)
	}
	if tip.String() != sha {
		t.Fatalf("tip = %s, pushed %s", tip, sha)
	}
	if n := repo.fetches.Load(); n != 0 {
		t.Fatalf("Tip fetched %d times", n)
	}
	if _, err := repo.Revision(tip); err == nil {
		t.Fatal("Revision of an unfetched commit succeeded")
	}
}

func TestFetchOnlyWhenTipMoved(t *testing.T) {
	ctx := t.Context()
	rem := newRemote(t)
	first := rem.commit(map[string]string{"envs/staging/cm.yaml": "a: 1\n"}, "first")
	repo := open(t, rem.url, Credentials{}, t.TempDir())

	rev, err := repo.Fetch(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Hash().String() != first || rev.Branch != "main" || rev.Short() != first[:7] || rev.String() != "main@"+first[:7] {
		t.Fatalf("revision %s (%s), pushed %s", rev, rev.Hash(), first)
	}
	if got := fileContent(t, rev, "envs/staging/cm.yaml"); got != "a: 1\n" {
		t.Fatalf("content %q", got)
	}
	if rev.Commit.Message != "first\n" {
		t.Fatalf("message %q", rev.Commit.Message)
	}

	// Unchanged tip: ls-remote only.
	again, err := repo.Fetch(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if again.Hash() != rev.Hash() || repo.fetches.Load() != 1 {
		t.Fatalf("second fetch: %s, %d fetches, want %s and 1", again, repo.fetches.Load(), rev)
	}

	second := rem.commit(map[string]string{"envs/staging/cm.yaml": "a: 2\n"}, "second")
	rev, err = repo.Fetch(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Hash().String() != second || repo.fetches.Load() != 2 {
		t.Fatalf("after push: %s, %d fetches, want %s and 2", rev.Hash(), repo.fetches.Load(), second)
	}
	if got := fileContent(t, rev, "envs/staging/cm.yaml"); got != "a: 2\n" {
		t.Fatalf("content %q", got)
	}
	// The earlier commit stays available, e.g. as a last healthy revision.
	old, err := repo.Revision(plumbing.NewHash(first))
	if err != nil {
		t.Fatal(err)
	}
	if old.Branch != "" || fileContent(t, old, "envs/staging/cm.yaml") != "a: 1\n" {
		t.Fatalf("old revision %s", old)
	}
}

// TestFetchIsIncremental shows that a fetch after a push transfers the new
// objects only, not the history the clone already holds.
func TestFetchIsIncremental(t *testing.T) {
	ctx := t.Context()
	rem := newRemote(t)
	for i := range 10 {
		rem.commit(map[string]string{
			fmt.Sprintf("a/%02d.yaml", i): fmt.Sprintf("a: %d\n", i),
			fmt.Sprintf("b/%02d.yaml", i): fmt.Sprintf("b: %d\n", i),
		}, fmt.Sprintf("commit %d", i))
	}
	repo := open(t, rem.url, Credentials{}, t.TempDir())
	if _, err := repo.Fetch(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	before := packObjects(t, repo.dir)
	// Per commit: the commit, three trees, two blobs.
	if total := sum(before); total < 60 {
		t.Fatalf("first fetch stored %d objects, want the whole history (≥ 60)", total)
	}

	sha := rem.commit(map[string]string{"new.yaml": "new: true\n"}, "one more")
	rev, err := repo.Fetch(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Hash().String() != sha {
		t.Fatalf("fetched %s, pushed %s", rev.Hash(), sha)
	}
	after := packObjects(t, repo.dir)
	var added []int
	for pack, n := range after {
		if _, ok := before[pack]; !ok {
			added = append(added, n)
		}
	}
	// One commit, one root tree, one blob.
	if len(added) != 1 || added[0] != 3 {
		t.Fatalf("second fetch added packs with %v objects, want one pack of 3", added)
	}
}

// packObjects counts the objects of each packfile in a bare clone.
func packObjects(t *testing.T, dir string) map[string]int {
	t.Helper()
	idxs, err := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.idx"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, p := range idxs {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		idx := idxfile.NewMemoryIndex()
		err = idxfile.NewDecoder(f).Decode(idx)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		n, err := idx.Count()
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = int(n)
	}
	return out
}

func sum(m map[string]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

// TestFetchFollowsRewrittenBranch: a force-push back to an older commit is
// followed, without fetching objects the clone has.
func TestFetchFollowsRewrittenBranch(t *testing.T) {
	ctx := t.Context()
	rem := newRemote(t)
	first := rem.commit(map[string]string{"a.yaml": "1\n"}, "first")
	rem.commit(map[string]string{"a.yaml": "2\n"}, "second")
	repo := open(t, rem.url, Credentials{}, t.TempDir())
	if _, err := repo.Fetch(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	rem.git(rem.work, "reset", "--quiet", "--hard", first)
	rem.git(rem.work, "push", "--quiet", "--force", "origin", "HEAD:refs/heads/main")
	rev, err := repo.Fetch(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Hash().String() != first {
		t.Fatalf("after force-push: %s, want %s", rev.Hash(), first)
	}
}

// TestSharedCloneAcrossOpens: two Opens of one URL share the clone on disk,
// each seeing what the other fetched.
func TestSharedCloneAcrossOpens(t *testing.T) {
	ctx := t.Context()
	rem := newRemote(t)
	first := rem.commit(map[string]string{"a.yaml": "1\n"}, "first")
	cache := t.TempDir()
	one := open(t, rem.url, Credentials{}, cache)
	if _, err := one.Fetch(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	two := open(t, rem.url, Credentials{}, cache)
	if two.dir != one.dir {
		t.Fatalf("clone dirs %s and %s", one.dir, two.dir)
	}
	if entries, _ := os.ReadDir(cache); len(entries) != 1 {
		t.Fatalf("cache holds %d entries, want 1 clone", len(entries))
	}
	rev, err := two.Fetch(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Hash().String() != first || two.fetches.Load() != 0 {
		t.Fatalf("second Open: %s after %d fetches, want %s without fetching", rev.Hash(), two.fetches.Load(), first[:7])
	}

	// one fetches a new commit after two indexed its packs.
	second := rem.commit(map[string]string{"a.yaml": "2\n"}, "second")
	if _, err := one.Fetch(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	rev, err = two.Fetch(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Hash().String() != second || two.fetches.Load() != 0 || fileContent(t, rev, "a.yaml") != "2\n" {
		t.Fatalf("second Open after the first fetched: %s after %d fetches", rev.Hash(), two.fetches.Load())
	}

	// Another URL gets its own clone.
	other := newRemote(t)
	other.commit(map[string]string{"b.yaml": "1\n"}, "other")
	if o := open(t, other.url, Credentials{}, cache); o.dir == one.dir {
		t.Fatal("two URLs share a clone directory")
	}
}

func TestOpenRefusesAForeignClone(t *testing.T) {
	cache := t.TempDir()
	repo := open(t, "file:///nonexistent/a.git", Credentials{}, cache)
	// Pretend the directory of another URL is this one's.
	other, err := Open("file:///nonexistent/b.git", Credentials{}, cache)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(other.dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(repo.dir, other.dir); err != nil {
		t.Fatal(err)
	}
	_, err = Open("file:///nonexistent/b.git", Credentials{}, cache)
	if err == nil || !strings.Contains(err.Error(), "holds another remote") {
		t.Fatalf("err = %v, want a clash of remotes", err)
	}
}

// TestErrors pins the kind and the wording of each failure a user can meet.
func TestErrors(t *testing.T) {
	rem := newRemote(t)
	rem.commit(map[string]string{"a.yaml": "1\n"}, "first")
	empty := newRemote(t)
	port := closedPort(t)

	cases := []struct {
		name   string
		url    string
		creds  Credentials
		branch string
		kind   error
		says   []string
	}{
		{"branch not found", rem.url, Credentials{}, "production", ErrBranchNotFound, []string{"branch production"}},
		{"empty repository", empty.url, Credentials{}, "main", ErrEmptyRepository, nil},
		{"no repository", "file://" + t.TempDir() + "/missing.git", Credentials{}, "main", ErrRepositoryNotFound, []string{"check the URL"}},
		{"http connection refused", fmt.Sprintf("http://127.0.0.1:%d/org/app.git", port), Credentials{}, "main", ErrUnreachable, nil},
		{"ssh connection refused", fmt.Sprintf("ssh://git@127.0.0.1:%d/org/app.git", port),
			Credentials{SSHKey: testKey(t), KnownHosts: []byte(fmt.Sprintf("[127.0.0.1]:%d %s", port, authorizedKey(t, testKey(t))))},
			"main", ErrUnreachable, nil},
		{"unknown host name", "https://ferry-no-such-host.invalid/org/app.git", Credentials{}, "main", ErrUnreachable, nil},
		{"connection reset", resettingServer(t) + "/org/app.git", Credentials{}, "main", ErrUnreachable, nil},
		{"server error 500", statusServer(t, http.StatusInternalServerError) + "/org/app.git", Credentials{}, "main", ErrUnreachable, nil},
		{"rate limited 429", statusServer(t, http.StatusTooManyRequests) + "/org/app.git", Credentials{}, "main", ErrUnreachable, nil},
		{"forbidden 403", statusServer(t, http.StatusForbidden) + "/org/app.git", Credentials{}, "main", ErrAuth, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo := open(t, tc.url, tc.creds, t.TempDir())
			for op, call := range map[string]func() error{
				"Tip":   func() error { _, err := repo.Tip(t.Context(), tc.branch); return err },
				"Fetch": func() error { _, err := repo.Fetch(t.Context(), tc.branch); return err },
			} {
				err := call()
				if !errors.Is(err, tc.kind) {
					t.Fatalf("%s: err = %v, want %v", op, err, tc.kind)
				}
				if !strings.HasPrefix(err.Error(), tc.url+" ") {
					t.Errorf("%s: %q does not start with the URL", op, err)
				}
				for _, s := range tc.says {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("%s: %q does not say %q", op, err, s)
					}
				}
			}
		})
	}
}

func TestInvalidBranchName(t *testing.T) {
	repo := open(t, "file:///nonexistent/a.git", Credentials{}, t.TempDir())
	for _, b := range []string{"", "a..b", "main~1", "bad name"} {
		if _, err := repo.Tip(t.Context(), b); err == nil || !strings.Contains(err.Error(), "invalid branch name") {
			t.Errorf("branch %q: err = %v", b, err)
		}
	}
}

// TestHTTPTokenAuth runs against git's own smart HTTP server behind basic
// auth: a wrong token is ErrAuth naming the token file and never the
// token, and a rotated file is read at the next use.
func TestHTTPTokenAuth(t *testing.T) {
	ctx := t.Context()
	rem := newRemote(t)
	sha := rem.commit(map[string]string{"a.yaml": "1\n"}, "first")
	const token = "ferry-test-token-4f1d2c"
	url := rem.serveHTTP(token)
	tokenFile := writeFile(t, filepath.Join(t.TempDir(), "token"), token+"\n")
	repo := open(t, url, Credentials{TokenFile: tokenFile}, t.TempDir())

	rev, err := repo.Fetch(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Hash().String() != sha {
		t.Fatalf("fetched %s, pushed %s", rev.Hash(), sha)
	}

	const wrong = "ferry-wrong-token-99aa"
	writeFile(t, tokenFile, wrong)
	_, err = repo.Fetch(ctx, "main")
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong token: err = %v, want ErrAuth", err)
	}
	for _, s := range []string{url, "check the token in " + tokenFile} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("wrong token: %q does not say %q", err, s)
		}
	}
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), token) {
		t.Fatalf("error shows a token: %q", err)
	}

	writeFile(t, tokenFile, token)
	if _, err := repo.Fetch(ctx, "main"); err != nil {
		t.Fatalf("rotated token: %v", err)
	}

	// Literal token, no credentials, a missing token file.
	if _, err := open(t, url, Credentials{Token: token}, t.TempDir()).Tip(ctx, "main"); err != nil {
		t.Fatalf("literal token: %v", err)
	}
	_, err = open(t, url, Credentials{}, t.TempDir()).Tip(ctx, "main")
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "no credentials are configured") {
		t.Fatalf("no credentials: err = %v", err)
	}
	missing := filepath.Join(t.TempDir(), "gone")
	_, err = open(t, url, Credentials{TokenFile: missing}, t.TempDir()).Tip(ctx, "main")
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), missing) || !strings.HasPrefix(err.Error(), url+" ") {
		t.Fatalf("missing token file: err = %v", err)
	}
}

// TestSecretsNeverInErrors: even a server that echoes the credentials in
// its refusal does not get them into ferry's error.
func TestSecretsNeverInErrors(t *testing.T) {
	const secret = "ferry-echoed-secret-77c1"
	cases := []struct {
		name  string
		creds Credentials
	}{
		{"token", Credentials{Token: secret}},
		{"password", Credentials{Username: "deploy", Password: secret}},
	}
	srv := echoServer(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := open(t, srv+"/org/app.git", tc.creds, t.TempDir()).Tip(t.Context(), "main")
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("err = %v, want ErrAuth", err)
			}
			if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "[redacted]") {
				t.Fatalf("error %q shows the secret or was not redacted", err)
			}
		})
	}
	// A password in the URL is not shown either.
	url := strings.Replace(srv, "http://", "http://deploy:"+secret+"@", 1) + "/org/app.git"
	repo := open(t, url, Credentials{}, t.TempDir())
	_, err := repo.Tip(t.Context(), "main")
	if err == nil || strings.Contains(err.Error(), secret) || strings.Contains(repo.URL(), secret) {
		t.Fatalf("URL password shows: %v, %s", err, repo.URL())
	}
}

// TestContextCancels: a remote that accepts and never answers holds a call
// only until its context ends.
func TestContextCancels(t *testing.T) {
	url := "http://" + silentServer(t) + "/org/app.git"
	repo := open(t, url, Credentials{}, t.TempDir())

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	var err error
	within(t, 5*time.Second, func() { _, err = repo.Fetch(ctx, "main") })
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnreachable) {
		t.Fatalf("canceled: err = %v", err)
	}

	ctx, cancel = context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	within(t, 5*time.Second, func() { _, err = repo.Tip(ctx, "main") })
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: err = %v", err)
	}
}

// TestConcurrentReadsDuringFetch reads trees while the same Repository
// fetches new commits; run with -race it pins lockedStorage.
func TestConcurrentReadsDuringFetch(t *testing.T) {
	ctx := t.Context()
	rem := newRemote(t)
	first := rem.commit(map[string]string{"a.yaml": "0\n"}, "first")
	repo := open(t, rem.url, Credentials{}, t.TempDir())
	if _, err := repo.Fetch(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				rev, err := repo.Revision(plumbing.NewHash(first))
				if err == nil {
					_, err = rev.Tree.File("a.yaml")
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := 1; i <= 5; i++ {
		rem.commit(map[string]string{"a.yaml": fmt.Sprintf("%d\n", i)}, fmt.Sprintf("commit %d", i))
		rev, err := repo.Fetch(ctx, "main")
		if err != nil {
			t.Fatal(err)
		}
		if got := fileContent(t, rev, "a.yaml"); got != fmt.Sprintf("%d\n", i) {
			t.Fatalf("commit %d: content %q", i, got)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestFetchAndReleaseRef: a pull request's head is fetched by its ref, and
// released afterwards: the clone keeps no reference to it.
func TestFetchAndReleaseRef(t *testing.T) {
	rem := newRemote(t)
	rem.commit(map[string]string{"a.yaml": "a: 1\n"}, "first")
	head := rem.commit(map[string]string{"a.yaml": "a: 2\n"}, "proposed")
	rem.git(rem.work, "push", "--quiet", "origin", "HEAD:refs/merge-requests/7/head")
	repo := open(t, rem.url, Credentials{}, t.TempDir())
	rev, err := repo.FetchRef(t.Context(), "refs/merge-requests/7/head")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Hash().String() != head {
		t.Fatalf("fetched %s, want %s", rev.Hash(), head)
	}
	if _, err := repo.store.Reference(fetchedRef("refs/merge-requests/7/head")); err != nil {
		t.Fatalf("fetched ref not kept: %v", err)
	}
	if err := repo.ReleaseRef("refs/merge-requests/7/head"); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.store.Reference(fetchedRef("refs/merge-requests/7/head")); err == nil {
		t.Fatal("released ref still in the clone")
	}
	if err := repo.ReleaseRef("refs/pull/9/head"); err != nil {
		t.Errorf("releasing a ref never fetched: %v", err)
	}
}
