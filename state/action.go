package state

import (
	"fmt"
	"strings"
)

// ActionKind is what ferry did after a verdict.
type ActionKind string

// Kinds of actions. Each verdict gets exactly one action; a verdict without
// one is a decision still to make, also after a restart.
const (
	// ActionNone: a healthy revision with nowhere to promote to.
	ActionNone ActionKind = "none"
	// ActionPromoted: the revision went to the environment named by Target.
	ActionPromoted ActionKind = "promoted"
	// ActionReverted: a revert commit (Target, abbreviated) undid the revision.
	ActionReverted ActionKind = "reverted"
	// ActionHeld: nothing was done, for Reason; a person decides.
	ActionHeld ActionKind = "held"
	// ActionStalled: the environment stopped, for Reason; a person must fix it.
	ActionStalled ActionKind = "stalled"
	// ActionSuperseded: a newer commit arrived before the revert was pushed.
	ActionSuperseded ActionKind = "superseded"
)

// Action is the decision ferry made on a verdict. Its text form is the one
// line people read in statuses, history and the API ("promoted to
// production", "reverted by abc1234", "held: <reason>"); it is also how
// the state ConfigMap stores it, so states written before actions were
// typed read as they are (TestActionReadsLegacyText).
type Action struct {
	Kind ActionKind
	// Target is the environment promoted into, or the revert commit.
	Target string
	// Reason says why an action was held or stalled; for a promotion, it
	// names the pull request that carries it.
	Reason string
}

// Promoted is the promotion into env; detail (e.g. "pull request #4") may
// be empty.
func Promoted(env, detail string) Action {
	return Action{Kind: ActionPromoted, Target: env, Reason: detail}
}

// Reverted is the revert by commit revert.
func Reverted(revert string) Action { return Action{Kind: ActionReverted, Target: Short(revert)} }

// Held holds a decision for reason.
func Held(reason string) Action { return Action{Kind: ActionHeld, Reason: reason} }

// Stalled stops the environment for reason.
func Stalled(reason string) Action { return Action{Kind: ActionStalled, Reason: reason} }

// None is the action on a healthy revision that goes nowhere.
func None() Action { return Action{Kind: ActionNone} }

// Superseded is the action on a revision a newer commit replaced before
// its revert was pushed.
func Superseded() Action { return Action{Kind: ActionSuperseded} }

// IsZero reports whether no action was taken yet.
func (a Action) IsZero() bool { return a.Kind == "" }

// String is the action's text form.
func (a Action) String() string {
	switch a.Kind {
	case "":
		return ""
	case ActionNone:
		return "none"
	case ActionPromoted:
		if a.Reason != "" {
			return "promoted to " + a.Target + " (" + a.Reason + ")"
		}
		return "promoted to " + a.Target
	case ActionReverted:
		return "reverted by " + a.Target
	case ActionHeld:
		return "held: " + a.Reason
	case ActionStalled:
		return "stalled: " + a.Reason
	case ActionSuperseded:
		return "superseded by a newer commit"
	}
	return string(a.Kind) + ": " + a.Reason
}

// MarshalText returns the action's text form.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads the text form, which is also the form state
// ConfigMaps have always held. Empty text is no action yet.
func (a *Action) UnmarshalText(b []byte) error {
	s := string(b)
	switch {
	case s == "":
		*a = Action{}
	case s == "none":
		*a = None()
	case s == "superseded by a newer commit":
		*a = Superseded()
	case strings.HasPrefix(s, "promoted to "):
		target := strings.TrimPrefix(s, "promoted to ")
		detail := ""
		if env, rest, ok := strings.Cut(target, " ("); ok && strings.HasSuffix(rest, ")") {
			target, detail = env, strings.TrimSuffix(rest, ")")
		}
		*a = Promoted(target, detail)
	case strings.HasPrefix(s, "reverted by "):
		*a = Action{Kind: ActionReverted, Target: strings.TrimPrefix(s, "reverted by ")}
	case strings.HasPrefix(s, "held: "):
		*a = Held(strings.TrimPrefix(s, "held: "))
	case strings.HasPrefix(s, "stalled: "):
		*a = Stalled(strings.TrimPrefix(s, "stalled: "))
	default:
		return fmt.Errorf("action %q: not one ferry writes (none, promoted to, reverted by, held:, stalled:, superseded)", s)
	}
	return nil
}
