package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"ferry.dev/ferry/forge"
	"ferry.dev/ferry/internal/text"
)

// hookEvent is what ferry takes from a forge's webhook delivery.
type hookEvent struct {
	// kind is "push", "pull_request", or "" for an event ferry ignores
	// (then ignored says why).
	kind    string
	ignored string
	repo    forge.Repo
	// branch is the pushed branch of a push.
	branch string
	// pr, head and base describe a pull request event.
	pr   int
	head string
	base string
}

// hookRepo turns "owner/name" (GitLab: "group/sub/name") into a forge.Repo.
func hookRepo(fullName string) (forge.Repo, error) {
	i := strings.LastIndex(fullName, "/")
	if i <= 0 || i == len(fullName)-1 {
		return forge.Repo{}, fmt.Errorf("repository %q is not owner/name", fullName)
	}
	return forge.Repo{Owner: fullName[:i], Name: fullName[i+1:]}, nil
}

// pushEvent builds the push of ref to repo; pushes of anything but a
// branch (tags) are ignored.
func pushEvent(fullName, ref string) (hookEvent, error) {
	branch, ok := strings.CutPrefix(ref, "refs/heads/")
	if !ok || branch == "" {
		return hookEvent{ignored: fmt.Sprintf("push of %q, not a branch", ref)}, nil
	}
	repo, err := hookRepo(fullName)
	if err != nil {
		return hookEvent{}, fmt.Errorf("push: %w", err)
	}
	return hookEvent{kind: "push", repo: repo, branch: branch}, nil
}

// prEvent builds a pull request event, or ignores actions that change
// neither its head nor its base.
func prEvent(action string, replan map[string]bool, fullName string, number int, head, base string) (hookEvent, error) {
	if !replan[action] {
		return hookEvent{ignored: fmt.Sprintf("pull request action %q", action)}, nil
	}
	repo, err := hookRepo(fullName)
	if err != nil {
		return hookEvent{}, fmt.Errorf("pull request: %w", err)
	}
	if number <= 0 || !text.IsHex(head) || base == "" {
		return hookEvent{}, errors.New("pull request: number, head SHA or base branch missing")
	}
	return hookEvent{kind: "pull_request", repo: repo, pr: number, head: head, base: base}, nil
}

// decodePayload decodes body, a delivery of one of the events ferry reads,
// into P; any other event comes back as an ignored hookEvent.
func decodePayload[P any](event string, body []byte, events ...string) (P, hookEvent, error) {
	var p P
	if !slices.Contains(events, event) {
		return p, hookEvent{ignored: fmt.Sprintf("event %q", event)}, nil
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return p, hookEvent{}, fmt.Errorf("%s payload: %w", event, err)
	}
	return p, hookEvent{}, nil
}

// githubPayload holds the fields ferry reads of GitHub's and Gitea's push
// and pull_request payloads (Gitea's follow GitHub's).
type githubPayload struct {
	Ref        string `json:"ref"`
	Action     string `json:"action"`
	Number     int    `json:"number"`
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	PullRequest struct {
		Number int `json:"number"`
		Head   struct {
			SHA string `json:"sha"`
		} `json:"head"`
		Base struct {
			Ref string `json:"ref"`
		} `json:"base"`
	} `json:"pull_request"`
}

var (
	githubReplan = map[string]bool{"opened": true, "reopened": true, "synchronize": true, "edited": true}
	giteaReplan  = map[string]bool{"opened": true, "reopened": true, "synchronized": true, "edited": true}
	gitlabReplan = map[string]bool{"open": true, "reopen": true, "update": true}
)

// parseGitHub reads a GitHub delivery of event (X-GitHub-Event).
func parseGitHub(event string, body []byte) (hookEvent, error) {
	return parseGitHubLike(event, body, githubReplan)
}

// parseGitea reads a Gitea delivery of event (X-Gitea-Event). Gitea names
// every pull request event, synchronisation included, "pull_request".
func parseGitea(event string, body []byte) (hookEvent, error) {
	return parseGitHubLike(event, body, giteaReplan)
}

func parseGitHubLike(event string, body []byte, replan map[string]bool) (hookEvent, error) {
	p, ev, err := decodePayload[githubPayload](event, body, "push", "pull_request")
	if err != nil || ev.ignored != "" {
		return ev, err
	}
	if event == "push" {
		return pushEvent(p.Repository.FullName, p.Ref)
	}
	number := p.PullRequest.Number
	if number == 0 {
		number = p.Number
	}
	return prEvent(p.Action, replan, p.Repository.FullName, number, p.PullRequest.Head.SHA, p.PullRequest.Base.Ref)
}

// gitlabPayload holds the fields ferry reads of GitLab's push and merge
// request payloads.
type gitlabPayload struct {
	ObjectKind string `json:"object_kind"`
	Ref        string `json:"ref"`
	Project    struct {
		PathWithNamespace string `json:"path_with_namespace"`
	} `json:"project"`
	ObjectAttributes struct {
		IID          int    `json:"iid"`
		Action       string `json:"action"`
		TargetBranch string `json:"target_branch"`
		LastCommit   struct {
			ID string `json:"id"`
		} `json:"last_commit"`
	} `json:"object_attributes"`
}

// parseGitLab reads a GitLab delivery of event (X-Gitlab-Event).
func parseGitLab(event string, body []byte) (hookEvent, error) {
	p, ev, err := decodePayload[gitlabPayload](event, body, "Push Hook", "Merge Request Hook")
	if err != nil || ev.ignored != "" {
		return ev, err
	}
	if event == "Push Hook" {
		if p.ObjectKind != "push" {
			return hookEvent{}, fmt.Errorf("%s payload: object_kind %q", event, p.ObjectKind)
		}
		return pushEvent(p.Project.PathWithNamespace, p.Ref)
	}
	if p.ObjectKind != "merge_request" {
		return hookEvent{}, fmt.Errorf("%s payload: object_kind %q", event, p.ObjectKind)
	}
	a := p.ObjectAttributes
	return prEvent(a.Action, gitlabReplan, p.Project.PathWithNamespace, a.IID, a.LastCommit.ID, a.TargetBranch)
}
