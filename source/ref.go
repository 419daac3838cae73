package source

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// fetchedRef is where FetchRef keeps ref in the clone.
func fetchedRef(ref string) plumbing.ReferenceName {
	return plumbing.ReferenceName("refs/ferry/fetch/" + strings.TrimPrefix(ref, "refs/"))
}

// ReleaseRef deletes what [Repository.FetchRef] kept of ref, once its
// commit is no longer needed: a pull request's head is untrusted content,
// and the clone keeps no reference to it after its plan. A ref never
// fetched is no error.
func (r *Repository) ReleaseRef(ref string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.store.RemoveReference(fetchedRef(ref))
	if err != nil && !errors.Is(err, plumbing.ErrReferenceNotFound) {
		return fmt.Errorf("%s ref %s: release: %w", r.display, ref, err)
	}
	return nil
}
