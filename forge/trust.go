package forge

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// PlanCommand is the comment with which a user who may write to the
// repository asks ferry to plan a pull request from a fork.
const PlanCommand = "/ferry plan"

// Trust tells who may have a pull request planned: whether it comes from a
// fork, who asked for its plan, and whether they may write to the
// repository. A pull request's content is untrusted; from a fork, anyone
// wrote it. The Gitea, GitHub and GitLab providers implement it.
type Trust interface {
	// PullRequest returns pull request number of repo, with Fork set.
	PullRequest(ctx context.Context, repo Repo, number int) (PullRequest, error)
	// PlanRequesters returns the users who commented PlanCommand on pull
	// request number, oldest first.
	PlanRequesters(ctx context.Context, repo Repo, number int) ([]string, error)
	// CanWrite reports whether user may push to repo.
	CanWrite(ctx context.Context, repo Repo, user string) (bool, error)
}

// maxCommentPages bounds the comments read for plan requests.
const maxCommentPages = 20

// isPlanCommand reports whether a comment asks for a plan: its first line
// is PlanCommand.
func isPlanCommand(body string) bool {
	first, _, _ := strings.Cut(strings.TrimSpace(body), "\n")
	return strings.TrimSpace(first) == PlanCommand
}

// HeadRef is the ref that holds the head of pull request number on the
// forge: refs/pull/<n>/head on GitHub and Gitea,
// refs/merge-requests/<iid>/head on GitLab.
func HeadRef(provider string, number int) string {
	if provider == "gitlab" {
		return fmt.Sprintf("refs/merge-requests/%d/head", number)
	}
	return fmt.Sprintf("refs/pull/%d/head", number)
}

// selfUser remembers the forge user ferry acts as, asked once.
type selfUser struct {
	mu   sync.Mutex
	name string
}

func (s *selfUser) get(ctx context.Context, ask func(context.Context) (string, error)) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.name != "" {
		return s.name, nil
	}
	name, err := ask(ctx)
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", fmt.Errorf("the forge names no user for ferry's token")
	}
	s.name = name
	return name, nil
}
