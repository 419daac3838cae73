package source

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrRejected reports a push refused because the branch is no longer where
// the caller expected it: someone pushed in between. Fetch and decide again.
var ErrRejected = errors.New("push rejected: the branch moved")

// Signature is who ferry's commits are by.
func Signature(when time.Time) object.Signature {
	return object.Signature{Name: "ferry", Email: "ferry@ferry.invalid", When: when}
}

// Trailers ferry writes on its commits.
const (
	TrailerPromotedFrom = "Ferry-Promoted-From"
	TrailerReverted     = "Ferry-Reverted"
	TrailerReason       = "Ferry-Reason"
	TrailerOverride     = "Ferry-Override"
)

// CommitTree writes a commit of tree with parents and message into the
// local clone, by ferry, and returns it. Nothing is pushed.
func (r *Repository) CommitTree(tree plumbing.Hash, parents []plumbing.Hash, message string, when time.Time) (*Revision, error) {
	sig := Signature(when)
	c := &object.Commit{Author: sig, Committer: sig, Message: message, TreeHash: tree, ParentHashes: parents}
	obj := r.store.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return nil, fmt.Errorf("%s commit: %w", r.display, err)
	}
	h, err := r.store.SetEncodedObject(obj)
	if err != nil {
		return nil, fmt.Errorf("%s commit: %w", r.display, err)
	}
	return r.revision("", h)
}

// Push moves branch on the remote from expected to commit: a
// compare-and-swap. commit must descend from expected (or expected is zero
// for a new branch). If the remote branch is anywhere but expected, nothing
// changes and the error wraps ErrRejected.
func (r *Repository) Push(ctx context.Context, branch string, commit, expected plumbing.Hash) error {
	ref, a, err := r.prepare(ctx, branch)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	tip, err := r.tip(ctx, branch, ref, a)
	switch {
	case errors.Is(err, ErrBranchNotFound) && expected.IsZero():
	case err != nil:
		return err
	case tip != expected:
		return fmt.Errorf("%s push %s: %w (at %s, expected %s)", r.display, branch, ErrRejected, short(tip), short(expected))
	}
	src := plumbing.ReferenceName("refs/ferry/push/" + branch)
	if err := r.store.SetReference(plumbing.NewHashReference(src, commit)); err != nil {
		return fmt.Errorf("%s push %s: %w", r.display, branch, err)
	}
	defer func() { _ = r.store.RemoveReference(src) }()
	remote := git.NewRemote(r.store, &config.RemoteConfig{Name: "origin", URLs: []string{r.url}})
	err = remote.PushContext(ctx, &git.PushOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{config.RefSpec(fmt.Sprintf("%s:%s", src, ref))},
		Auth:       a.method,
	})
	switch {
	case errors.Is(err, git.NoErrAlreadyUpToDate):
	case err != nil && (errors.Is(err, git.ErrNonFastForwardUpdate) || strings.Contains(err.Error(), "non-fast-forward") ||
		strings.Contains(err.Error(), "rejected") || strings.Contains(err.Error(), "failed to lock")):
		return fmt.Errorf("%s push %s: %w: %w", r.display, branch, ErrRejected, err)
	case err != nil:
		return r.fail(ctx, "push "+branch, err, a)
	}
	// The clone mirrors the remote's branches; keep it in step.
	return r.store.SetReference(plumbing.NewHashReference(ref, commit))
}

func short(h plumbing.Hash) string {
	if h.IsZero() {
		return "nothing"
	}
	return h.String()[:7]
}

// IsAncestor reports whether commit a is an ancestor of (or equal to) b,
// both in the local clone.
func (r *Repository) IsAncestor(a, b plumbing.Hash) (bool, error) {
	if a == b {
		return true, nil
	}
	ca, err := object.GetCommit(r.store, a)
	if err != nil {
		return false, fmt.Errorf("%s commit %s: %w", r.display, a, err)
	}
	cb, err := object.GetCommit(r.store, b)
	if err != nil {
		return false, fmt.Errorf("%s commit %s: %w", r.display, b, err)
	}
	return ca.IsAncestor(cb)
}

// FirstParents returns the commits from tip back along first parents until
// stop (excluded), newest first. It fails if stop is not found within limit
// commits: then stop is not on tip's first-parent history.
func (r *Repository) FirstParents(tip, stop plumbing.Hash, limit int) ([]*object.Commit, error) {
	var out []*object.Commit
	h := tip
	for range limit {
		if h == stop {
			return out, nil
		}
		c, err := object.GetCommit(r.store, h)
		if err != nil {
			return nil, fmt.Errorf("%s commit %s: %w", r.display, h, err)
		}
		out = append(out, c)
		if c.NumParents() == 0 {
			break
		}
		h = c.ParentHashes[0]
	}
	return nil, fmt.Errorf("%s: %s is not on the first-parent history of %s", r.display, short(stop), short(tip))
}

// Missing returns the commits reachable from tip that are not reachable
// from base, newest first: what a branch at tip has that base lacks.
func (r *Repository) Missing(tip, base plumbing.Hash) ([]*object.Commit, error) {
	have := map[plumbing.Hash]bool{}
	bc, err := object.GetCommit(r.store, base)
	if err != nil {
		return nil, fmt.Errorf("%s commit %s: %w", r.display, base, err)
	}
	if err := object.NewCommitPreorderIter(bc, nil, nil).ForEach(func(c *object.Commit) error {
		have[c.Hash] = true
		return nil
	}); err != nil {
		return nil, err
	}
	tc, err := object.GetCommit(r.store, tip)
	if err != nil {
		return nil, fmt.Errorf("%s commit %s: %w", r.display, tip, err)
	}
	var out []*object.Commit
	err = object.NewCommitPreorderIter(tc, have, nil).ForEach(func(c *object.Commit) error {
		if !have[c.Hash] {
			out = append(out, c)
		}
		return nil
	})
	return out, err
}

// Trailer returns the values of the git trailer key in message.
func Trailer(message, key string) []string {
	var out []string
	for _, line := range strings.Split(message, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), key) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// Subject is the first line of a commit message.
func Subject(message string) string {
	s, _, _ := strings.Cut(strings.TrimSpace(message), "\n")
	return s
}

// FetchRef fetches one ref that is not a branch, such as a pull request's
// head (refs/pull/<n>/head, refs/merge-requests/<iid>/head), into
// refs/ferry/fetch/… of the clone and returns its commit. Release it with
// [Repository.ReleaseRef] once done.
func (r *Repository) FetchRef(ctx context.Context, ref string) (*Revision, error) {
	name := plumbing.ReferenceName(ref)
	if !strings.HasPrefix(ref, "refs/") || name.Validate() != nil {
		return nil, fmt.Errorf("%s ref %q: invalid ref name", r.display, ref)
	}
	deadline, _ := ctx.Deadline()
	a, err := r.creds.resolve(r.url, deadline)
	if err != nil {
		return nil, fmt.Errorf("%s credentials: %w", r.display, err)
	}
	local := fetchedRef(ref)
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", name, local))
	r.mu.Lock()
	defer r.mu.Unlock()
	remote := git.NewRemote(r.store, &config.RemoteConfig{Name: "origin", URLs: []string{r.url}, Fetch: []config.RefSpec{spec}})
	err = remote.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{spec}, Auth: a.method, Tags: git.NoTags})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, r.fail(ctx, "fetch "+ref, err, a)
	}
	got, err := r.store.Reference(local)
	if err != nil {
		return nil, fmt.Errorf("%s ref %s: %w", r.display, ref, ErrBranchNotFound)
	}
	return r.revision("", got.Hash())
}
