package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"ferry.dev/ferry/e2e/harness"
	"ferry.dev/ferry/reconciler"
	"ferry.dev/ferry/state"
)

// devStory is the scripted part of ferry dev: a good change is promoted,
// a bad change is reverted.
type devStory struct {
	s *sandbox
	m *reconciler.Manager
}

func (d *devStory) play(ctx context.Context) error {
	s := d.s
	first, err := s.clone.Git(ctx, "rev-parse", "HEAD")
	if err != nil {
		return err
	}
	s.say("step 1: ferry deploys %s to staging, verifies it, and promotes it to production", first[:7])
	if _, err := d.wait(ctx, "staging", first); err != nil {
		return err
	}
	if _, err := d.wait(ctx, "production", first); err != nil {
		return err
	}

	base, err := s.clone.Git(ctx, "show", "HEAD:base/deployment.yaml")
	if err != nil {
		return err
	}
	good, err := s.clone.CommitAndPush(ctx, map[string]string{
		"base/deployment.yaml": strings.Replace(base, "shop:1.0.0", "shop:1.1.0", 1),
	}, "Release shop 1.1.0")
	if err != nil {
		return err
	}
	s.say("step 2: a good change, %s \"Release shop 1.1.0\", is pushed to main", good[:7])
	if _, err := d.wait(ctx, "staging", good); err != nil {
		return err
	}
	if _, err := d.wait(ctx, "production", good); err != nil {
		return err
	}

	bad, err := s.clone.CommitAndPush(ctx, map[string]string{
		"base/deployment.yaml": strings.Replace(strings.Replace(base, "shop:1.0.0", "shop:1.2.0", 1),
			"      labels: {app: shop}\n", fmt.Sprintf("      labels: {app: shop}\n      annotations: {%s: %s}\n", harness.FailAnnotation, harness.FailCrashLoop), 1),
	}, "Release shop 1.2.0")
	if err != nil {
		return err
	}
	s.say("step 3: a bad change, %s \"Release shop 1.2.0\" (its pods crash-loop), is pushed to main", bad[:7])
	v, err := d.wait(ctx, "staging", bad)
	if err != nil {
		return err
	}
	if v.Action.Kind == state.ActionReverted {
		if _, err := d.wait(ctx, "staging", d.full(ctx, v.Action.Target)); err != nil {
			return err
		}
	}
	s.say("production never saw %s", bad[:7])

	if _, err := s.clone.Git(ctx, "fetch", "--quiet", "origin"); err != nil {
		return err
	}
	graph, err := s.clone.Git(ctx, "log", "--graph", "--oneline", "--decorate", "origin/main", "origin/production")
	if err != nil {
		return err
	}
	s.say("git log --graph of main and production:")
	for _, line := range strings.Split(graph, "\n") {
		fmt.Fprintln(s.out, "    "+line)
	}
	_, _ = s.clone.Git(ctx, "checkout", "--quiet", "-B", "main", "origin/main")
	return nil
}

// full expands a short SHA ferry reported to the full one.
func (d *devStory) full(ctx context.Context, short string) string {
	_, _ = d.s.clone.Git(ctx, "fetch", "--quiet", "origin")
	sha, err := d.s.clone.Git(ctx, "rev-parse", short)
	if err != nil {
		return short
	}
	return sha
}

// wait prints env's progress on commit until ferry decided on it.
func (d *devStory) wait(ctx context.Context, env, commit string) (state.Verdict, error) {
	store, _ := d.m.Store(env)
	last := ""
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		st, err := store.Load(ctx, env)
		if err == nil {
			if v, ok := st.VerdictFor(commit); ok && !v.Action.IsZero() {
				msg := fmt.Sprintf("  %s @ %s: %s", env, commit[:7], v.Outcome)
				if v.Reason != "" && v.Outcome != state.OutcomeHealthy {
					msg += " (" + v.Reason + ")"
				}
				if v.Action.Kind != state.ActionNone {
					msg += " → " + v.Action.String()
				}
				d.s.say("%s", msg)
				return v, nil
			}
			if st.Target != nil && st.Target.Commit == commit {
				if now := fmt.Sprintf("  %s @ %s: %s %s", env, commit[:7], st.Phase, st.Message); now != last {
					d.s.say("%s", now)
					last = now
				}
			}
		}
		select {
		case <-ctx.Done():
			return state.Verdict{}, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return state.Verdict{}, fmt.Errorf("%s: no decision on %s within 3 minutes", env, commit[:7])
}
