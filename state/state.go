// Package state is what ferry remembers about each environment and the
// words it decides in: the State kept in the ConfigMap ferry-state-<env>
// (phase, target, last applied and last healthy revisions, history,
// quarantine, inventory), the typed Phase, Outcome and Action, and the
// Store that reads and writes it with optimistic concurrency. The
// reconciler writes it; the server, the forge reporter and the CLI read
// it. Of ferry it imports only apply, whose Inventory it keeps, and
// internal/text.
package state

import (
	"time"

	"ferry.dev/ferry/apply"
)

// Phase is where an environment's reconcile stands.
type Phase string

// Phases, in the order a reconcile passes them, then its end states.
const (
	PhaseFetching  Phase = "Fetching"
	PhaseRendering Phase = "Rendering"
	PhaseApplying  Phase = "Applying"
	PhasePruning   Phase = "Pruning"
	PhaseVerifying Phase = "Verifying"
	// PhaseRetrying: a step failed for a reason that may pass (the API
	// server or the network); the message names the step and the error.
	PhaseRetrying Phase = "Retrying"
	PhaseHealthy  Phase = "Healthy"
	PhaseFailed   Phase = "Failed"
	PhaseStalled  Phase = "Stalled"
	// PhaseWaiting: the environment waits for its dependencies before it
	// applies; Message says for which, as "infra is Verifying 1a2b3c4".
	PhaseWaiting Phase = "Waiting"
	// PhaseDrifted: a live object differs from git and ferry could not
	// correct it; the message names the object and the error. It is no
	// verdict: the revision's verdict stands.
	PhaseDrifted Phase = "Drifted"
)

// Outcome is the verdict on one revision.
type Outcome string

// Outcomes of a revision.
const (
	OutcomeHealthy  Outcome = "Healthy"
	OutcomeFailed   Outcome = "Failed"   // unhealthy after apply
	OutcomeTimedOut Outcome = "TimedOut" // not healthy within the health timeout
	OutcomeError    Outcome = "Error"    // render or apply failed; nothing or part applied
	// OutcomeRefused: the rendering writes outside the environment's scope,
	// or is over a render limit; nothing of it was applied.
	OutcomeRefused Outcome = "Refused"
	// OutcomeQuarantined: the revision renders to a digest ferry reverted
	// before; it is not applied until a person releases it.
	OutcomeQuarantined Outcome = "Quarantined"
)

// Final reports whether the phase ends a reconcile: Healthy, Failed or
// Stalled. Other phases are steps still running.
func (p Phase) Final() bool {
	return p == PhaseHealthy || p == PhaseFailed || p == PhaseStalled
}

// Failed reports whether the outcome is a failure that onFailure acts on.
func (o Outcome) Failed() bool {
	return o == OutcomeFailed || o == OutcomeTimedOut || o == OutcomeError || o == OutcomeRefused
}

// Quarantined is a rendering digest that failed and was reverted; a later
// commit rendering to it is held until a person releases it.
type Quarantined struct {
	Digest string    `json:"digest"`
	Commit string    `json:"commit"`
	Reason string    `json:"reason,omitempty"`
	Time   time.Time `json:"time"`
}

// HistoryLimit is how many verdicts the state keeps.
const HistoryLimit = 20

// Revision is a commit and the digest of its rendering.
type Revision struct {
	Commit string    `json:"commit"`
	Digest string    `json:"digest,omitempty"`
	Time   time.Time `json:"time"`
}

// Verdict is the decision on one revision, kept in the history.
type Verdict struct {
	Commit   string    `json:"commit"`
	Digest   string    `json:"digest,omitempty"`
	Outcome  Outcome   `json:"outcome"`
	Reason   string    `json:"reason,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Action is what ferry did after the verdict; zero while undecided.
	// It is stored as its text, e.g. "promoted to production".
	Action Action `json:"action,omitzero"`
	// Hops are the promotions of a healthy revision, one per target
	// environment, each with its own result; Action is set once every hop
	// is decided.
	Hops []Hop `json:"hops,omitempty"`
	// Stopped, on a failed revision of an environment that promotes, says
	// where the tree stopped and who will not receive it: "stopped at
	// staging (<reason>); prod-eu, prod-us will not receive it".
	Stopped string `json:"stopped,omitempty"`
}

// Hop is the promotion of one revision into one target environment.
type Hop struct {
	// To is the target environment.
	To string `json:"to"`
	// Action is what ferry did for this hop (promoted, held); zero while
	// the hop waits.
	Action Action `json:"action,omitzero"`
	// Waiting says what the hop waits for while Action is zero: a required
	// environment, or the promotion window.
	Waiting string `json:"waiting,omitempty"`
	// Until is when the window opens, for a hop waiting for it.
	Until time.Time `json:"until,omitzero"`
}

// Hop returns the hop into env, if any.
func (v *Verdict) Hop(env string) (*Hop, bool) {
	for i := range v.Hops {
		if v.Hops[i].To == env {
			return &v.Hops[i], true
		}
	}
	return nil, false
}

// Suspension is a person's "hands off": a suspended environment applies,
// prunes, reverts and promotes nothing until it is resumed.
type Suspension struct {
	Reason string    `json:"reason,omitempty"`
	By     string    `json:"by,omitempty"`
	Time   time.Time `json:"time"`
}

// String is "suspended: <reason> (by <user>)".
func (s *Suspension) String() string {
	out := "suspended"
	if s.Reason != "" {
		out += ": " + s.Reason
	}
	if s.By != "" {
		out += " (by " + s.By + ")"
	}
	return out
}

// PromoteRequest is a person's request to promote an environment's last
// healthy revision now, recorded by `ferry promote`.
type PromoteRequest struct {
	// To limits the promotion to one target; empty means every target.
	To string `json:"to,omitempty"`
	// Now overrides the promotion window.
	Now bool `json:"now,omitempty"`
	// By is who asked.
	By   string    `json:"by,omitempty"`
	Time time.Time `json:"time"`
}

// Environment is one environment's state as the status API, page and
// badges show it: its State, plus what it follows.
type Environment struct {
	Name string `json:"name"`
	// Branch and Path are what the environment follows.
	Branch string `json:"branch,omitempty"`
	Path   string `json:"path,omitempty"`
	State
}

// State is everything ferry remembers about an environment. It lives in
// the ConfigMap ferry-state-<env> in ferry's namespace, so a restarted
// ferry resumes where it stopped.
type State struct {
	Phase   Phase  `json:"phase"`
	Message string `json:"message,omitempty"`
	// SourceError is the last error polling the branch; empty once a poll succeeds.
	SourceError string `json:"sourceError,omitempty"`
	// Target is the revision being reconciled now.
	Target *Revision `json:"target,omitempty"`
	// LastApplied is the last revision applied without error.
	LastApplied *Revision `json:"lastApplied,omitempty"`
	// LastHealthy is the last known good revision.
	LastHealthy *Revision `json:"lastHealthy,omitempty"`
	// Inventory is every object applied for the environment.
	Inventory apply.Inventory `json:"inventory,omitempty"`
	// History holds the latest verdicts, newest first.
	History []Verdict `json:"history,omitempty"`
	// Quarantine holds the digests of reverted renderings.
	Quarantine []Quarantined `json:"quarantine,omitempty"`
	// Suspended, when set, stops the environment until a person resumes it.
	Suspended *Suspension `json:"suspended,omitempty"`
	// Promote is a person's pending request to promote by hand.
	Promote *PromoteRequest `json:"promote,omitempty"`
	// Drift holds the latest drift seen on live objects, newest first:
	// corrected, or not and why.
	Drift []Drift `json:"drift,omitempty"`
	// Handled is the last reconcile request (the ConfigMap's
	// ferry.dev/requested-at annotation) that a reconcile pass finished.
	Handled string `json:"handled,omitempty"`
}

// DriftLimit is how many drift records the state keeps.
const DriftLimit = 20

// Drift is one live object found different from git by a watch or a
// drift pass: corrected, or the error that kept ferry from it.
type Drift struct {
	Object    string    `json:"object"`
	Corrected bool      `json:"corrected"`
	Error     string    `json:"error,omitempty"`
	Time      time.Time `json:"time"`
}

// RecordDrift puts d at the head of the drift records, keeping DriftLimit.
func (s *State) RecordDrift(d Drift) {
	s.Drift = append([]Drift{d}, s.Drift...)
	if len(s.Drift) > DriftLimit {
		s.Drift = s.Drift[:DriftLimit]
	}
}

// Quarantined returns the quarantine entry of digest, if any.
func (s *State) Quarantined(digest string) (Quarantined, bool) {
	for _, q := range s.Quarantine {
		if digest != "" && q.Digest == digest {
			return q, true
		}
	}
	return Quarantined{}, false
}

// Release removes the quarantine entries matching a digest or a commit SHA
// (or its prefix), and the Quarantined verdicts they caused, so the loop
// evaluates those commits again. It returns the released entries.
func (s *State) Release(digestOrSHA string) []Quarantined {
	var kept, released []Quarantined
	for _, q := range s.Quarantine {
		if q.Digest == digestOrSHA || (len(digestOrSHA) >= 7 && SameCommit(q.Commit, digestOrSHA)) {
			released = append(released, q)
		} else {
			kept = append(kept, q)
		}
	}
	s.Quarantine = kept
	var history []Verdict
	for _, v := range s.History {
		held := false
		for _, q := range released {
			if v.Outcome == OutcomeQuarantined && v.Digest == q.Digest {
				held = true
			}
		}
		if !held {
			history = append(history, v)
		}
	}
	s.History = history
	return released
}

// SetAction records what ferry did after the verdict on commit.
func (s *State) SetAction(commit string, action Action) {
	for i := range s.History {
		if s.History[i].Commit == commit {
			s.History[i].Action = action
			return
		}
	}
}

// Record puts v at the head of the history, keeping HistoryLimit entries.
func (s *State) Record(v Verdict) {
	s.History = append([]Verdict{v}, s.History...)
	if len(s.History) > HistoryLimit {
		s.History = s.History[:HistoryLimit]
	}
}

// VerdictFor returns the newest verdict on commit, if any.
func (s *State) VerdictFor(commit string) (Verdict, bool) {
	for _, v := range s.History {
		if v.Commit == commit {
			return v, true
		}
	}
	return Verdict{}, false
}
