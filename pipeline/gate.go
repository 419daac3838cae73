package pipeline

import (
	"fmt"
	"strings"
	"time"
)

// Standing is how one tree stands in one environment.
type Standing string

// Standings of a tree in an environment.
const (
	// Absent: the tree has not reached the environment.
	Absent Standing = "absent"
	// Verifying: the tree is applied or being applied and not judged yet.
	Verifying Standing = "verifying"
	// Healthy: the tree was judged healthy, soak included.
	Healthy Standing = "healthy"
	// Failed: the tree was judged failed (or reverted); it travels no
	// further from there.
	Failed Standing = "failed"
)

// Seen is what one environment knows about one tree.
type Seen struct {
	Standing Standing
	// Reason says why a Failed tree failed, or what a Verifying tree does.
	Reason string
}

// Decision is whether a tree may enter an environment now.
type Decision struct {
	Verdict GateVerdict
	// Reason says, for Wait and Stop, what the tree waits for or where it
	// stopped and why; empty for Enter.
	Reason string
	// Until, for a window, is when it opens; zero otherwise.
	Until time.Time
}

// GateVerdict is the kind of a Decision.
type GateVerdict string

// Gate verdicts.
const (
	// Enter: promote the tree now.
	Enter GateVerdict = "enter"
	// Wait: not yet; try again when a required environment decides or the
	// window opens.
	Wait GateVerdict = "wait"
	// Stop: never; a required environment failed the tree.
	Stop GateVerdict = "stop"
)

// Admit decides whether a tree may enter env now, given how it stands in
// each environment env requires (seen; a missing name is Absent) and env's
// promotion window (nil: always open) at now. A failure anywhere required
// stops the tree; otherwise every required environment must hold it
// healthy, then the window must be open.
func (g *Graph) Admit(env string, seen func(env string) Seen, window *Window, now time.Time) Decision {
	var waits []string
	for _, r := range g.Requires(env) {
		s := seen(r)
		switch s.Standing {
		case Healthy:
		case Failed:
			reason := fmt.Sprintf("stopped at %s", r)
			if s.Reason != "" {
				reason += ": " + s.Reason
			}
			return Decision{Verdict: Stop, Reason: reason}
		case Verifying:
			waits = append(waits, r+" is verifying it")
		default:
			waits = append(waits, r+" has not received it")
		}
	}
	if len(waits) > 0 {
		return Decision{Verdict: Wait, Reason: "waiting: " + strings.Join(waits, ", ")}
	}
	if !window.Open(now) {
		next := window.NextOpen(now)
		reason := "waiting for the promotion window " + window.String()
		if !next.IsZero() {
			reason += ", opens " + next.In(window.loc).Format("Mon 15:04 MST")
		}
		return Decision{Verdict: Wait, Reason: reason, Until: next}
	}
	return Decision{Verdict: Enter}
}

// Halt is where a tree stopped travelling and why.
type Halt struct {
	// At is the environment that failed the tree.
	At string
	// Reason is why it failed there.
	Reason string
	// Missed are the environments downstream that will not receive it.
	Missed []string
}

// Halts lists where a tree stopped: each environment where it failed,
// with the environments downstream of it that it will not reach. An
// environment downstream that received the tree another way (fan-in from
// a healthy branch) is not missed.
func (g *Graph) Halts(seen func(env string) Seen) []Halt {
	var out []Halt
	for _, n := range g.nodes {
		s := seen(n.Name)
		if s.Standing != Failed {
			continue
		}
		h := Halt{At: n.Name, Reason: s.Reason}
		for _, d := range g.Downstream(n.Name) {
			if seen(d).Standing == Absent {
				h.Missed = append(h.Missed, d)
			}
		}
		out = append(out, h)
	}
	return out
}

// String says where the tree stopped: "stopped at staging (health check
// failed); prod-eu, prod-us will not receive it".
func (h Halt) String() string {
	s := "stopped at " + h.At
	if h.Reason != "" {
		s += " (" + h.Reason + ")"
	}
	if len(h.Missed) > 0 {
		s += "; " + strings.Join(h.Missed, ", ") + " will not receive it"
	}
	return s
}

// Dep is the state of one environment another depends on.
type Dep struct {
	// Name is the environment.
	Name string
	// Phase is its current phase, such as Verifying or Healthy.
	Phase string
	// Tip is the commit its branch points at; Healthy is its last healthy
	// commit.
	Tip, Healthy string
}

// Ready reports whether every dependency is healthy at its current tip;
// if not, the reason names the first that is not, as "infra is Verifying
// 1a2b3c4".
func Ready(deps []Dep) (bool, string) {
	for _, d := range deps {
		if d.Phase == "Healthy" && d.Tip != "" && d.Tip == d.Healthy {
			continue
		}
		phase := d.Phase
		if phase == "" {
			phase = "not reconciled"
		}
		if d.Tip == "" {
			return false, fmt.Sprintf("%s is %s", d.Name, phase)
		}
		if phase == "Healthy" {
			// Healthy at an older commit: the tip is not applied yet.
			phase = "behind"
		}
		return false, fmt.Sprintf("%s is %s %s", d.Name, phase, short(d.Tip))
	}
	return true, ""
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
