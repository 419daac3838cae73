package report

import (
	"context"
	"time"
)

// Source is what the server reads and drives; the reconciler implements it.
type Source interface {
	// Environments lists the configured environments, in configuration order.
	Environments() []string
	// Snapshot returns env's state as it stands; env is one of Environments.
	Snapshot(ctx context.Context, env string) (*Snapshot, error)
	// Trigger asks env for an immediate poll of its branch without
	// waiting for it; false if there is no such environment.
	Trigger(env string) bool
	// Watches returns the environments that follow branch of repo.
	Watches(repo Repo, branch string) []string
}

// Snapshot is one environment's state as the status API, page and badges
// show it.
type Snapshot struct {
	Name string `json:"name"`
	// Branch and Path are what the environment follows.
	Branch string `json:"branch,omitempty"`
	Path   string `json:"path,omitempty"`
	// Phase is the reconcile's phase: Fetching, Rendering, Applying,
	// Pruning, Verifying, Healthy, Failed or Stalled; empty before the
	// first reconcile.
	Phase   string `json:"phase"`
	Message string `json:"message,omitempty"`
	// SourceError is the last error polling the branch; empty once a poll
	// succeeds.
	SourceError string `json:"sourceError,omitempty"`
	// Target is the revision being reconciled now.
	Target *Revision `json:"target,omitempty"`
	// LastApplied is the last revision applied without error.
	LastApplied *Revision `json:"lastApplied,omitempty"`
	// LastHealthy is the last known good revision (LKG).
	LastHealthy *Revision `json:"lastHealthy,omitempty"`
	// History holds the latest verdicts, newest first.
	History []Entry `json:"history,omitempty"`
}

// Revision is a commit and the digest of its rendering.
type Revision struct {
	Commit string    `json:"commit"`
	Digest string    `json:"digest,omitempty"`
	Time   time.Time `json:"time"`
}

// Entry is the verdict on one revision.
type Entry struct {
	Commit string `json:"commit"`
	Digest string `json:"digest,omitempty"`
	// Outcome is Healthy, Failed, TimedOut or Error.
	Outcome  string    `json:"outcome"`
	Reason   string    `json:"reason,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Action is what ferry did after the verdict, e.g. "promoted to production".
	Action string `json:"action,omitempty"`
}

// Phases and outcomes as the reconciler names them; the badge colours
// follow them.
const (
	PhaseHealthy    = "Healthy"
	PhaseFailed     = "Failed"
	PhaseStalled    = "Stalled"
	OutcomeHealthy  = "Healthy"
	OutcomeFailed   = "Failed"
	OutcomeTimedOut = "TimedOut"
	OutcomeError    = "Error"
)

// VerdictFor returns the newest verdict on commit, which may be given
// abbreviated (at least 4 hexadecimal digits).
func (s *Snapshot) VerdictFor(commit string) (Entry, bool) {
	for _, e := range s.History {
		if sameCommit(e.Commit, commit) {
			return e, true
		}
	}
	return Entry{}, false
}

// sameCommit reports whether the full SHA full starts with the
// abbreviation short.
func sameCommit(full, short string) bool {
	if len(short) < 4 || len(short) > len(full) || !isHex(short) {
		return false
	}
	for i := range len(short) {
		if lower(full[i]) != lower(short[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// sanitized is a copy of s with URL credentials and secrets removed from
// every free text, ready to be shown.
func (s *Snapshot) sanitized() *Snapshot {
	out := *s
	out.Message = scrub(s.Message)
	out.SourceError = scrub(s.SourceError)
	out.History = make([]Entry, len(s.History))
	for i, e := range s.History {
		e.Reason = scrub(e.Reason)
		e.Action = scrub(e.Action)
		out.History[i] = e
	}
	return &out
}
