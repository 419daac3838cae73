package server

import (
	"context"

	"ferry.dev/ferry/forge"
	"ferry.dev/ferry/internal/text"
	"ferry.dev/ferry/state"
)

// Source is what the server reads and drives; the reconciler implements it.
type Source interface {
	// Environments lists the configured environments, in configuration order.
	Environments() []string
	// Environment returns env's state as it stands; env is one of Environments.
	Environment(ctx context.Context, env string) (*state.Environment, error)
	// Trigger asks env for an immediate poll of its branch without
	// waiting for it, wherever it runs (the replica holding env may be
	// another one); false if there is no such environment or the request
	// could not be made.
	Trigger(ctx context.Context, env string) bool
	// Watches returns the environments that follow branch of repo.
	Watches(repo forge.Repo, branch string) []string
	// Edges are the arrows of the pipeline graph between environments:
	// promotions, requirements and dependencies.
	Edges() []GraphEdge
}

// verdictFor returns the newest verdict of e on commit, which may be given
// abbreviated (at least 4 hexadecimal digits).
func verdictFor(e *state.Environment, commit string) (state.Verdict, bool) {
	for _, v := range e.History {
		if state.SameCommit(v.Commit, commit) {
			return v, true
		}
	}
	return state.Verdict{}, false
}

// sanitized is a copy of e ready to be shown: URL credentials and secrets
// are removed from every free text, and the inventory, which is ferry's
// bookkeeping and may be long, is left out.
func sanitized(e *state.Environment) *state.Environment {
	out := *e
	out.Inventory = nil
	out.Message = text.Scrub(e.Message)
	out.SourceError = text.Scrub(e.SourceError)
	out.History = make([]state.Verdict, len(e.History))
	for i, v := range e.History {
		v.Reason = text.Scrub(v.Reason)
		v.Action.Reason = text.Scrub(v.Action.Reason)
		out.History[i] = v
	}
	out.Quarantine = make([]state.Quarantined, len(e.Quarantine))
	for i, q := range e.Quarantine {
		q.Reason = text.Scrub(q.Reason)
		out.Quarantine[i] = q
	}
	return &out
}
