package reconciler

import (
	"context"
	"fmt"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/source"
	"ferry.dev/ferry/state"
)

// LoadState returns the state of a configured environment.
func LoadState(ctx context.Context, cfg *config.Config, name string, opts Options) (*state.State, error) {
	wd, err := newWiring(cfg, opts).wire(name)
	if err != nil {
		return nil, err
	}
	return wd.store.Load(ctx, name)
}

// Release lifts the quarantine of a digest (or of the commit that was
// reverted for it), so the loop evaluates the commits rendering to it again.
func Release(ctx context.Context, cfg *config.Config, name, digestOrSHA string, opts Options) ([]state.Quarantined, error) {
	wd, err := newWiring(cfg, opts).wire(name)
	if err != nil {
		return nil, err
	}
	var released []state.Quarantined
	_, err = wd.store.Update(ctx, name, func(st *state.State) error {
		released = st.Release(digestOrSHA)
		if len(released) == 0 {
			return fmt.Errorf("%s: nothing quarantined matches %q", name, digestOrSHA)
		}
		return nil
	})
	return released, err
}

// Rollback is a person's one-command rollback: a revert commit on the
// environment's branch whose tree is the last healthy revision's (or to's,
// which must have been healthy), naming every commit it undoes, pushed as
// a compare-and-swap on the current tip. It returns the new commit.
func Rollback(ctx context.Context, cfg *config.Config, name, to string, opts Options) (*source.Revision, error) {
	wd, repo, err := newWiring(cfg, opts).wireWithRepository(ctx, name)
	if err != nil {
		return nil, err
	}
	st, err := wd.store.Load(ctx, name)
	if err != nil {
		return nil, err
	}
	tip, err := repo.Fetch(ctx, wd.env.Source.Branch)
	if err != nil {
		return nil, err
	}
	target := ""
	switch {
	case to == "" && st.LastHealthy == nil:
		return nil, fmt.Errorf("%s has no healthy revision to roll back to; name one with --to", name)
	case to == "":
		target = st.LastHealthy.Commit
	default:
		for _, v := range st.History {
			if v.Outcome == state.OutcomeHealthy && len(to) >= 7 && state.SameCommit(v.Commit, to) {
				target = v.Commit
				break
			}
		}
		if target == "" {
			return nil, fmt.Errorf("%s: %s is not a healthy revision in the history (see `ferry history %s`)", name, to, name)
		}
	}
	if target == tip.Hash().String() {
		return nil, fmt.Errorf("%s is already at %s", name, state.Short(target))
	}
	undone, err := repo.FirstParents(tip.Hash(), plumbing.NewHash(target), 500)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	targetRev, err := repo.Revision(plumbing.NewHash(target))
	if err != nil {
		return nil, err
	}
	msg := revertMessage(undone, "rolled back by a person to "+state.Short(target)+" (ferry rollback)")
	rev, err := repo.CommitTree(targetRev.Commit.TreeHash, []plumbing.Hash{tip.Hash()}, msg, time.Now())
	if err != nil {
		return nil, err
	}
	if err := repo.Push(ctx, wd.env.Source.Branch, rev.Hash(), tip.Hash()); err != nil {
		return nil, err
	}
	return rev, nil
}
