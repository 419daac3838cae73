package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"ferry.dev/ferry/source"
)

// Observer reports ferry's progress on commit in env: a line for a person,
// and whether ferry has decided what to do about the commit.
type Observer func(ctx context.Context, env, commit string) (line string, decided bool, err error)

// Story is the scripted part of `ferry dev`, played on a Sample that ferry
// reconciles: a good change is promoted from staging to production, a bad
// change is reverted in staging and never reaches production.
type Story struct {
	// Sample is the repository the story pushes to.
	Sample *Sample
	// Observe reports ferry's progress.
	Observe Observer
	// Out receives the story, one line per step.
	Out io.Writer
	// Timeout bounds the wait for each of ferry's decisions.
	Timeout time.Duration
	// Poll is how often Observe is asked.
	Poll time.Duration
}

// DefaultStoryTimeout is how long a Story waits for one decision by default.
const DefaultStoryTimeout = 3 * time.Minute

// Say prints one line of the story.
func (s *Story) Say(format string, args ...any) {
	fmt.Fprintf(s.Out, "ferry dev │ "+format+"\n", args...)
}

// Play runs the story to its end, or until ctx ends or ferry takes longer
// than Timeout to decide on a commit.
func (s *Story) Play(ctx context.Context) error {
	clone := s.Sample.Clone
	first, err := clone.Git(ctx, "rev-parse", "HEAD")
	if err != nil {
		return err
	}
	s.Say("step 1: ferry deploys %s to staging, verifies it, and promotes it to production", short(first))
	if err := s.waitAll(ctx, first, "staging", "production"); err != nil {
		return err
	}

	base, err := clone.Git(ctx, "show", "HEAD:base/deployment.yaml")
	if err != nil {
		return err
	}
	good, err := clone.CommitAndPush(ctx, map[string]string{
		"base/deployment.yaml": strings.Replace(base, "shop:1.0.0", "shop:1.1.0", 1),
	}, "Release shop 1.1.0")
	if err != nil {
		return err
	}
	s.Say("step 2: a good change, %s \"Release shop 1.1.0\", is pushed to main", short(good))
	if err := s.waitAll(ctx, good, "staging", "production"); err != nil {
		return err
	}

	bad, err := clone.CommitAndPush(ctx, map[string]string{
		"base/deployment.yaml": strings.Replace(strings.Replace(base, "shop:1.0.0", "shop:1.2.0", 1),
			"      labels: {app: shop}\n", fmt.Sprintf("      labels: {app: shop}\n      annotations: {%s: %s}\n", FailAnnotation, FailCrashLoop), 1),
	}, "Release shop 1.2.0")
	if err != nil {
		return err
	}
	s.Say("step 3: a bad change, %s \"Release shop 1.2.0\" (its pods crash-loop), is pushed to main", short(bad))
	if err := s.waitAll(ctx, bad, "staging"); err != nil {
		return err
	}
	revert, err := s.revertOf(ctx, bad)
	if err != nil {
		return err
	}
	s.Say("main has %s, whose %s trailer names %s", short(revert), source.TrailerReverted, short(bad))
	if err := s.waitAll(ctx, revert, "staging"); err != nil {
		return err
	}
	s.Say("production never saw %s", short(bad))

	graph, err := clone.Git(ctx, "log", "--graph", "--oneline", "--decorate", "origin/main", "origin/production")
	if err != nil {
		return err
	}
	s.Say("git log --graph of main and production:")
	for _, line := range strings.Split(graph, "\n") {
		fmt.Fprintln(s.Out, "    "+line)
	}
	if _, err := clone.Git(ctx, "checkout", "--quiet", "-B", "main", "origin/main"); err != nil {
		return err
	}
	return nil
}

// errNoRevert reports that no commit on main reverts a commit ferry failed.
var errNoRevert = errors.New("no revert in git")

// revertOf fetches main and returns the commit after bad whose
// Ferry-Reverted trailer names bad. Ferry records its decision after the
// push, so the revert is already in git when the decision is seen.
func (s *Story) revertOf(ctx context.Context, bad string) (string, error) {
	clone := s.Sample.Clone
	if _, err := clone.Git(ctx, "fetch", "--quiet", "origin"); err != nil {
		return "", err
	}
	log, err := clone.Git(ctx, "log", "--format="+revertLogFormat, bad+"..origin/main")
	if err != nil {
		return "", err
	}
	if sha, ok := findRevert(log, bad); ok {
		return sha, nil
	}
	return "", fmt.Errorf("%s: no commit on main carries %s: %s: %w", short(bad), source.TrailerReverted, bad, errNoRevert)
}

// revertLogFormat is the git log format findRevert reads: per commit, the
// SHA, a unit separator, the message, a record separator.
const revertLogFormat = "%H%x1f%B%x1e"

// findRevert returns the first commit in log (revertLogFormat) whose
// Ferry-Reverted trailer names bad. A message that merely mentions bad
// does not count.
func findRevert(log, bad string) (string, bool) {
	for _, record := range strings.Split(log, "\x1e") {
		sha, msg, ok := strings.Cut(strings.TrimSpace(record), "\x1f")
		if ok && slices.Contains(source.Trailer(msg, source.TrailerReverted), bad) {
			return sha, true
		}
	}
	return "", false
}

// waitAll waits until ferry decided on commit in each env, in order.
func (s *Story) waitAll(ctx context.Context, commit string, envs ...string) error {
	for _, env := range envs {
		if err := s.wait(ctx, env, commit); err != nil {
			return err
		}
	}
	return nil
}

// wait prints env's progress on commit until ferry decided on it.
func (s *Story) wait(ctx context.Context, env, commit string) error {
	timeout, poll := s.Timeout, s.Poll
	if timeout <= 0 {
		timeout = DefaultStoryTimeout
	}
	if poll <= 0 {
		poll = 300 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		line, decided, err := s.Observe(ctx, env, commit)
		if err == nil && line != "" && line != last {
			s.Say("%s", line)
			last = line
		}
		if err == nil && decided {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("%s: no decision on %s within %s: %w", env, short(commit), timeout, errors.Join(ctx.Err(), err))
			}
			return fmt.Errorf("%s: no decision on %s within %s: %w", env, short(commit), timeout, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// short is the seven-character abbreviation of a commit SHA.
func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
