package bootstrap

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-billy/v5/util"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// remote is the repository bootstrap commits to. Everything happens in
// memory: nothing is cloned to disk.
type remote struct {
	url  string
	auth transport.AuthMethod
	// secrets never appear in errors (a server may echo what it got).
	secrets []string
}

func newRemote(url string, c Credentials) *remote {
	// A token goes with the user name "git", as ferry's source package
	// sends it, so that the preflight checks what ferry will use.
	user := c.Username
	if c.Token != "" || user == "" {
		user = "git"
	}
	secret := c.Token
	if secret == "" {
		secret = c.Password
	}
	return &remote{url: url, auth: &githttp.BasicAuth{Username: user, Password: secret}, secrets: []string{secret}}
}

// tip asks the remote for the tip of branch (ls-remote). It returns the
// zero hash when the branch does not exist or the repository is empty.
func (r *remote) tip(ctx context.Context, branch string) (plumbing.Hash, error) {
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{r.url}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: r.auth})
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, r.redact(err)
	}
	want := plumbing.NewBranchReferenceName(branch)
	for _, ref := range refs {
		if ref.Name() == want {
			return ref.Hash(), nil
		}
	}
	return plumbing.ZeroHash, nil
}

// probePush checks that the credentials may push, by pushing a commit of
// the empty tree to refs/ferry/preflight-<random> and deleting that ref
// again. It leaves no branch, tag or commit behind on the branch, and
// triggers no branch webhooks.
func (r *remote) probePush(ctx context.Context, author Author) error {
	store := memory.NewStorage()
	repo, err := git.Init(store, nil)
	if err != nil {
		return err
	}
	tree := store.NewEncodedObject()
	if err := (&object.Tree{}).Encode(tree); err != nil {
		return err
	}
	treeHash, err := store.SetEncodedObject(tree)
	if err != nil {
		return err
	}
	sig := object.Signature{Name: author.Name, Email: author.Email, When: time.Now()}
	commit := store.NewEncodedObject()
	c := &object.Commit{Author: sig, Committer: sig, TreeHash: treeHash,
		Message: "ferry bootstrap preflight: checks that pushing is allowed, deleted at once\n"}
	if err := c.Encode(commit); err != nil {
		return err
	}
	commitHash, err := store.SetEncodedObject(commit)
	if err != nil {
		return err
	}
	ref := plumbing.ReferenceName("refs/ferry/preflight-" + randomHex())
	if err := store.SetReference(plumbing.NewHashReference(ref, commitHash)); err != nil {
		return err
	}
	rem, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{r.url}})
	if err != nil {
		return err
	}
	push := func(spec string) error {
		err := rem.PushContext(ctx, &git.PushOptions{RemoteName: "origin", Auth: r.auth,
			RefSpecs: []config.RefSpec{config.RefSpec(spec)}})
		if errors.Is(err, git.NoErrAlreadyUpToDate) {
			return nil
		}
		return r.redact(err)
	}
	if err := push(ref.String() + ":" + ref.String()); err != nil {
		return err
	}
	if err := push(":" + ref.String()); err != nil {
		return fmt.Errorf("pushed %s but could not delete it (delete it by hand: git push <remote> :%s): %w", ref, ref, err)
	}
	return nil
}

// checkout is the branch in memory, with a worktree to write into.
type checkout struct {
	repo   *git.Repository
	fs     billy.Filesystem
	branch plumbing.ReferenceName
	tip    plumbing.Hash // zero: the branch is new
}

// checkout clones branch at tip into memory, or, when tip is zero, starts
// the branch with no commits.
func (r *remote) checkout(ctx context.Context, branch string, tip plumbing.Hash) (*checkout, error) {
	ref := plumbing.NewBranchReferenceName(branch)
	store, fs := memory.NewStorage(), memfs.New()
	co := &checkout{fs: fs, branch: ref, tip: tip}
	var err error
	if tip.IsZero() {
		if co.repo, err = git.InitWithOptions(store, fs, git.InitOptions{DefaultBranch: ref}); err != nil {
			return nil, err
		}
		_, err = co.repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{r.url}})
		return co, err
	}
	co.repo, err = git.CloneContext(ctx, store, fs, &git.CloneOptions{URL: r.url, Auth: r.auth,
		ReferenceName: ref, SingleBranch: true, Tags: git.NoTags})
	if err != nil {
		return nil, r.redact(err)
	}
	head, err := co.repo.Head()
	if err != nil {
		return nil, err
	}
	// The branch may have moved since ls-remote; what was cloned is what
	// the commit goes on.
	co.tip = head.Hash()
	return co, nil
}

// read returns the content of the slash path rel, and whether it exists.
func (co *checkout) read(rel string) ([]byte, bool, error) {
	data, err := util.ReadFile(co.fs, rel)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	return data, err == nil, err
}

// commit writes files into dir and commits them, only when that changes
// anything; it returns the new commit and the paths changed, or the zero
// hash when nothing changed. Files in dir that are not in files are kept.
func (co *checkout) commit(dir string, files map[string][]byte, message string, author Author) (plumbing.Hash, []string, error) {
	wt, err := co.repo.Worktree()
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	if err := co.fs.MkdirAll(dir, 0o755); err != nil {
		return plumbing.ZeroHash, nil, err
	}
	for name, data := range files {
		rel := path.Join(dir, name)
		if err := util.WriteFile(co.fs, rel, data, 0o644); err != nil {
			return plumbing.ZeroHash, nil, err
		}
		if _, err := wt.Add(rel); err != nil {
			return plumbing.ZeroHash, nil, fmt.Errorf("git add %s: %w", rel, err)
		}
	}
	status, err := wt.Status()
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	var changed []string
	for name, s := range status {
		if s.Staging != git.Unmodified {
			changed = append(changed, name)
		}
	}
	if len(changed) == 0 {
		return plumbing.ZeroHash, nil, nil
	}
	slices.Sort(changed)
	message += "\n\nFiles:\n  " + strings.Join(changed, "\n  ") + "\n"
	sig := &object.Signature{Name: author.Name, Email: author.Email, When: time.Now()}
	hash, err := wt.Commit(message, &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	return hash, changed, nil
}

// push pushes the branch; it fails, without forcing, when the remote
// branch moved since the checkout.
func (co *checkout) push(ctx context.Context, r *remote) error {
	spec := config.RefSpec(co.branch.String() + ":" + co.branch.String())
	err := co.repo.PushContext(ctx, &git.PushOptions{RemoteName: "origin", Auth: r.auth, RefSpecs: []config.RefSpec{spec}})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil
	}
	return r.redact(err)
}

// redact returns err without any secret in its text.
func (r *remote) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, s := range r.secrets {
		if s != "" {
			clean = strings.ReplaceAll(clean, s, "[redacted]")
		}
	}
	if clean == msg {
		return err
	}
	return errors.New(clean)
}

func randomHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
