package reconciler

import (
	"context"
	"fmt"
	"slices"
	"strings"
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

// LoadEnvironments returns the state of every configured environment, in
// configuration order, read from the clusters: what `ferry status` shows.
func LoadEnvironments(ctx context.Context, cfg *config.Config, opts Options) ([]state.Environment, error) {
	w := newWiring(cfg, opts)
	out := make([]state.Environment, 0, len(cfg.Environments))
	for _, env := range cfg.Environments {
		wd, err := w.wire(env.Name)
		if err != nil {
			return nil, err
		}
		st, err := wd.store.Load(ctx, env.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, state.Environment{Name: env.Name, Branch: env.Source.Branch, Path: env.Source.Path, State: *st})
	}
	return out, nil
}

// RequestReconcile asks whichever ferry replica runs env to poll its
// branch and reconcile now, through the state ConfigMap; it returns the
// request's value, which the state's Handled takes once a pass finished.
func RequestReconcile(ctx context.Context, cfg *config.Config, name string, opts Options) (string, error) {
	wd, err := newWiring(cfg, opts).wire(name)
	if err != nil {
		return "", err
	}
	return wd.store.Request(ctx, name, time.Now())
}

// Suspend stops env: until Resume, it applies, prunes, reverts and
// promotes nothing. The suspension is kept in the state, so it survives
// restarts and takeovers by another replica.
func Suspend(ctx context.Context, cfg *config.Config, name, reason, by string, opts Options) (string, error) {
	return changeAndRequest(ctx, cfg, name, opts, func(st *state.State) error {
		st.Suspended = &state.Suspension{Reason: reason, By: by, Time: time.Now().UTC()}
		return nil
	})
}

// Resume lifts env's suspension; the loop then reconciles the tip,
// deciding what the suspension held (a revert, a promotion).
func Resume(ctx context.Context, cfg *config.Config, name string, opts Options) (string, error) {
	return changeAndRequest(ctx, cfg, name, opts, func(st *state.State) error {
		if st.Suspended == nil {
			return fmt.Errorf("%s is not suspended", name)
		}
		st.Suspended = nil
		return nil
	})
}

// Promote asks the loop to promote env's current healthy revision by hand,
// to every target or only to, with the same rules as automatic promotion;
// now overrides the promotion window. Who asked is recorded with the
// promotion.
func Promote(ctx context.Context, cfg *config.Config, name, to string, now bool, by string, opts Options) (string, error) {
	env, ok := cfg.Environment(name)
	if !ok {
		return "", fmt.Errorf("environment %q is not configured", name)
	}
	if env.Promote == nil {
		return "", fmt.Errorf("%s promotes nowhere: it has no promote.to", name)
	}
	if to != "" && !slices.Contains(env.Promote.To, to) {
		return "", fmt.Errorf("%s does not promote to %q; its targets: %s", name, to, strings.Join(env.Promote.To, ", "))
	}
	return changeAndRequest(ctx, cfg, name, opts, func(st *state.State) error {
		if st.Suspended != nil {
			return fmt.Errorf("%s is %s; resume it first", name, st.Suspended)
		}
		st.Promote = &state.PromoteRequest{To: to, Now: now, By: by, Time: time.Now().UTC()}
		return nil
	})
}

// changeAndRequest changes env's state, then requests a reconcile so the
// replica running env acts on the change now.
func changeAndRequest(ctx context.Context, cfg *config.Config, name string, opts Options, change func(*state.State) error) (string, error) {
	wd, err := newWiring(cfg, opts).wire(name)
	if err != nil {
		return "", err
	}
	if _, err := wd.store.Update(ctx, name, change); err != nil {
		return "", err
	}
	return wd.store.Request(ctx, name, time.Now())
}
