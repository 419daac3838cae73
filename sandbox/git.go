package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"code.gitea.io/sdk/gitea"
)

// Clone is a working copy of a Gitea repository, driven with the git CLI as
// a person would: edit files, commit, push.
type Clone struct {
	// Dir is the working tree.
	Dir string
	g   *Gitea
}

// Clone clones repo into dir with the git CLI over smart HTTP. An empty
// repository gives a working copy on branch main with no commits.
func (g *Gitea) Clone(ctx context.Context, repo, dir string) (*Clone, error) {
	c := &Clone{Dir: dir, g: g}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := c.Git(ctx, "clone", "--quiet", g.CloneURL(repo), "."); err != nil {
		return nil, err
	}
	if _, err := c.Git(ctx, "checkout", "--quiet", "-B", "main"); err != nil {
		// A clone of an empty repository already sits on an unborn main.
		if _, err2 := c.Git(ctx, "symbolic-ref", "HEAD", "refs/heads/main"); err2 != nil {
			return nil, err
		}
	}
	return c, nil
}

// Git runs git in the working tree, authenticated as the admin without
// putting the token in any URL or config file.
func (c *Clone) Git(ctx context.Context, args ...string) (string, error) {
	full := append([]string{
		"-c", "http.extraHeader=Authorization: " + c.g.BasicAuthHeader(),
		"-c", "user.name=Ferry Tester", "-c", "user.email=tester@ferry.invalid",
		"-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false",
	}, args...)
	cmd := exec.CommandContext(ctx, "git", full...)
	cmd.Dir = c.Dir
	cmd.Env = toolEnv(c.g.bin, "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "HOME="+c.g.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Write writes content to the slash path rel in the working tree.
func (c *Clone) Write(rel, content string) error {
	p := filepath.Join(c.Dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}

// WriteFiles writes every slash path → content of files.
func (c *Clone) WriteFiles(files map[string]string) error {
	for rel, content := range files {
		if err := c.Write(rel, content); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes the slash path rel from the working tree.
func (c *Clone) Remove(rel string) error {
	return os.RemoveAll(filepath.Join(c.Dir, filepath.FromSlash(rel)))
}

// Commit stages everything and commits it; it returns the new commit's SHA.
func (c *Clone) Commit(ctx context.Context, message string) (string, error) {
	if _, err := c.Git(ctx, "add", "-A"); err != nil {
		return "", err
	}
	if _, err := c.Git(ctx, "commit", "--quiet", "-m", message); err != nil {
		return "", err
	}
	return c.Git(ctx, "rev-parse", "HEAD")
}

// Push pushes the current branch, or the given refspecs, to origin.
func (c *Clone) Push(ctx context.Context, refspecs ...string) error {
	if len(refspecs) == 0 {
		refspecs = []string{"HEAD"}
	}
	_, err := c.Git(ctx, append([]string{"push", "--quiet", "origin"}, refspecs...)...)
	return err
}

// CommitAndPush writes files, commits them with message and pushes HEAD.
func (c *Clone) CommitAndPush(ctx context.Context, files map[string]string, message string) (string, error) {
	if err := c.WriteFiles(files); err != nil {
		return "", err
	}
	sha, err := c.Commit(ctx, message)
	if err != nil {
		return "", err
	}
	return sha, c.Push(ctx)
}

// OpenPullRequest opens a pull request from head into base of repo.
func (g *Gitea) OpenPullRequest(repo, head, base, title string) (*gitea.PullRequest, error) {
	pr, _, err := g.Client.CreatePullRequest(g.User, repo, gitea.CreatePullRequestOption{Head: head, Base: base, Title: title})
	if err != nil {
		return nil, fmt.Errorf("gitea open pull request %s→%s in %s: %w", head, base, repo, err)
	}
	return pr, nil
}

// MergePullRequest merges pull request index of repo with style (merge,
// squash or rebase) and returns the pull request as merged.
func (g *Gitea) MergePullRequest(repo string, index int64, style gitea.MergeStyle) (*gitea.PullRequest, error) {
	ok, _, err := g.Client.MergePullRequest(g.User, repo, index, gitea.MergePullRequestOption{Style: style})
	if err != nil {
		return nil, fmt.Errorf("gitea merge pull request %s#%d (%s): %w", repo, index, style, err)
	}
	if !ok {
		return nil, fmt.Errorf("gitea merge pull request %s#%d (%s): not merged", repo, index, style)
	}
	pr, _, err := g.Client.GetPullRequest(g.User, repo, index)
	return pr, err
}
