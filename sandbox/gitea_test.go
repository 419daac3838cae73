package sandbox

import (
	"context"
	"testing"
)

// TestGiteaRestart: a restarted forge serves on the same URL with the same
// repositories, and the server keeps a reflog once a test asks for one.
func TestGiteaRestart(t *testing.T) {
	t.Setenv("FERRY_RUN_DIR", t.TempDir())
	g, err := StartGitea(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	if _, err := g.CreateRepo("kept"); err != nil {
		t.Fatal(err)
	}
	wc, err := g.Clone(t.Context(), "kept", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sha, err := wc.CommitAndPush(t.Context(), map[string]string{"a.txt": "a\n"}, "First")
	if err != nil {
		t.Fatal(err)
	}
	url := g.URL
	if err := g.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if g.URL != url {
		t.Fatalf("URL %s after the restart, was %s", g.URL, url)
	}
	if _, _, err := g.Client.GetRepo(g.User, "kept"); err != nil {
		t.Fatalf("repository after the restart: %v", err)
	}
	out, err := wc.Git(t.Context(), "ls-remote", "origin", "main")
	if err != nil || len(out) < 40 || out[:40] != sha {
		t.Fatalf("ls-remote after the restart: %q %v, want %s", out, err, sha)
	}
}
