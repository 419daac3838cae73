package forge

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"ferry.dev/ferry/internal/text"
	"ferry.dev/ferry/state"
)

// State is the state of a commit status, in the words GitHub and Gitea use;
// each provider maps it to its forge's own.
type State string

// States of a commit status.
const (
	// Pending: ferry is working on the commit (applying, verifying).
	Pending State = "pending"
	// Success: the commit is healthy in the environment.
	Success State = "success"
	// Failure: the commit was judged unhealthy, or a plan found a problem.
	Failure State = "failure"
	// Error: ferry could not judge the commit (render or apply failed).
	Error State = "error"
)

// Valid reports whether s is one of the four states.
func (s State) Valid() bool {
	switch s {
	case Pending, Success, Failure, Error:
		return true
	}
	return false
}

// Status is what ferry says about one commit in one environment.
type Status struct {
	// Environment names the environment; the default context is "ferry/<env>".
	Environment string `json:"environment"`
	// Context overrides the status context, e.g. [PlanContext] for plans.
	Context string `json:"context,omitempty"`
	// Commit is the full SHA the status is posted on.
	Commit string `json:"commit"`
	// State is pending, success, failure or error.
	State State `json:"state"`
	// Description is the one line shown next to the status; providers
	// truncate it to their forge's limit.
	Description string `json:"description"`
	// TargetURL is the link of the status, see [TargetURL].
	TargetURL string `json:"targetURL,omitempty"`
}

// StatusContext returns the context the status is posted under.
func (s Status) StatusContext() string {
	if s.Context != "" {
		return s.Context
	}
	return EnvironmentContext(s.Environment)
}

// Validate says what is missing from s before it is posted.
func (s Status) Validate() error {
	var errs []error
	if s.Environment == "" && s.Context == "" {
		errs = append(errs, errors.New("no environment or context"))
	}
	if !text.IsHex(s.Commit) || len(s.Commit) < 7 {
		errs = append(errs, fmt.Errorf("commit %q is not a hexadecimal SHA", s.Commit))
	}
	if !s.State.Valid() {
		errs = append(errs, fmt.Errorf("unknown state %q", s.State))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("status %s on %s: %w", s.StatusContext(), state.Short(s.Commit), err)
	}
	return nil
}

// op names the posting of s on repo in errors, "acme/app@abc1234 set
// status ferry/staging", once s is valid.
func (s Status) op(repo Repo) (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s@%s set status %s", repo, state.Short(s.Commit), s.StatusContext()), nil
}

// EnvironmentContext is the status context of env: "ferry/<env>".
func EnvironmentContext(env string) string { return "ferry/" + env }

// PlanContext is the status context of env's plan on pull requests:
// "ferry/plan/<env>".
func PlanContext(env string) string { return "ferry/plan/" + env }

// TargetURL is the link a status carries: ferry's page of env, scrolled to
// commit. An empty externalURL gives an empty link (statuses without one).
func TargetURL(externalURL, env, commit string) string {
	if externalURL == "" {
		return ""
	}
	u := strings.TrimRight(externalURL, "/") + "/environments/" + url.PathEscape(env)
	if commit != "" {
		u += "?commit=" + url.QueryEscape(commit)
	}
	return u
}

// Descriptions of the lifecycle of a commit in an environment, so every
// forge shows the same words.
const (
	// DescApplying is the description while the commit is applied.
	DescApplying = "applying"
)

// DescVerifying is the description while the commit's health is verified.
func DescVerifying(soak time.Duration) string {
	if soak <= 0 {
		return "verifying"
	}
	return fmt.Sprintf("verifying (soak %s)", shortDuration(soak))
}

// DescHealthy is the description of a healthy commit.
func DescHealthy(commit string) string { return "healthy at " + state.Short(commit) }

// DescPromoted is the description once a healthy commit was promoted to env.
func DescPromoted(env string) string { return "promoted to " + env }

// DescReverted is the description once a failed commit was reverted by the
// commit revert.
func DescReverted(revert string) string { return "reverted by " + state.Short(revert) }

// shortDuration prints 2m rather than 2m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
