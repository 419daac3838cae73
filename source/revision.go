package source

import (
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Revision is one commit of a remote, fetched into its Repository: what an
// environment renders and applies. Commit and Tree read their objects from
// the Repository on demand, safely while it fetches; one Revision's objects
// are meant for one goroutine at a time (go-git trees cache lazily).
type Revision struct {
	// Branch is the branch the commit was the tip of, or "" for a
	// revision looked up by hash.
	Branch string
	// Commit is the commit.
	Commit *object.Commit
	// Tree is the commit's root tree.
	Tree *object.Tree
}

// Hash is the commit's hash.
func (r *Revision) Hash() plumbing.Hash { return r.Commit.Hash }

// Short is the commit's abbreviated hash, 7 hex digits as git shows it.
func (r *Revision) Short() string { return r.Commit.Hash.String()[:7] }

// String is "<branch>@<short hash>", or the short hash without a branch.
func (r *Revision) String() string {
	if r.Branch == "" {
		return r.Short()
	}
	return r.Branch + "@" + r.Short()
}
