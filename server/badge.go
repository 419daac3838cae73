package server

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"

	"ferry.dev/ferry/internal/text"
	"ferry.dev/ferry/state"
)

// Badge colours, those of shields.io.
const (
	ColourHealthy = "#4c1"
	ColourFailed  = "#e05d44"
	ColourPending = "#dfb317"
	ColourUnknown = "#9f9f9f"
	colourLabel   = "#555"
)

// Badge is a shields-style badge: a grey label and a coloured message.
type Badge struct {
	Label, Message, Colour string
}

// EnvironmentBadge is the badge of env as it stands: "healthy @ abc1234"
// in green, "failed @ …" in red, "applying @ …" and the other steps in
// yellow, "stalled @ …" and "unknown" in grey.
func EnvironmentBadge(s *state.Environment) Badge {
	b := Badge{Label: s.Name}
	if s.Suspended != nil {
		b.Message, b.Colour = text.OneLine(s.Suspended.String(), 60), ColourUnknown
		return b
	}
	commit := ""
	if s.Target != nil {
		commit = s.Target.Commit
	}
	switch s.Phase {
	case "":
		b.Message, b.Colour = "unknown", ColourUnknown
		return b
	case state.PhaseHealthy:
		if s.LastHealthy != nil {
			commit = s.LastHealthy.Commit
		}
		b.Message, b.Colour = "healthy", ColourHealthy
	case state.PhaseFailed:
		b.Message, b.Colour = "failed", ColourFailed
	case state.PhaseStalled:
		b.Message, b.Colour = "stalled", ColourUnknown
	default:
		b.Message, b.Colour = strings.ToLower(string(s.Phase)), ColourPending
	}
	if commit == "" && s.LastApplied != nil {
		commit = s.LastApplied.Commit
	}
	if commit != "" {
		b.Message += " @ " + state.Short(commit)
	}
	return b
}

// CommitBadge is the badge of commit in env: its newest verdict, the step
// it is in while env reconciles it, or "unknown".
func CommitBadge(s *state.Environment, commit string) Badge {
	b := Badge{Label: s.Name}
	if e, ok := verdictFor(s, commit); ok {
		b.Message, b.Colour = outcomeWords(e.Outcome)
		b.Message += " @ " + state.Short(e.Commit)
		return b
	}
	if s.Target != nil && state.SameCommit(s.Target.Commit, commit) {
		// A final phase would have its verdict in the history; only a
		// step still running tells something here.
		if s.Phase != "" && !s.Phase.Final() {
			b.Message, b.Colour = strings.ToLower(string(s.Phase))+" @ "+state.Short(s.Target.Commit), ColourPending
			return b
		}
	}
	b.Message, b.Colour = "unknown", ColourUnknown
	return b
}

func outcomeWords(outcome state.Outcome) (string, string) {
	switch outcome {
	case state.OutcomeHealthy:
		return "healthy", ColourHealthy
	case state.OutcomeFailed:
		return "failed", ColourFailed
	case state.OutcomeTimedOut:
		return "timed out", ColourFailed
	case state.OutcomeError:
		return "error", ColourFailed
	case state.OutcomeRefused:
		return "refused", ColourFailed
	}
	return strings.ToLower(string(outcome)), ColourUnknown
}

// SVG renders the badge as a standalone SVG document. Every text is
// XML-escaped (TestBadgeEscapes).
func (b Badge) SVG() []byte {
	const pad = 10
	lw := textWidth(b.Label) + pad
	mw := textWidth(b.Message) + pad
	w := lw + mw
	label, msg := xmlText(b.Label), xmlText(b.Message)
	colour := b.Colour
	if !validColour(colour) {
		colour = ColourUnknown
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="20" role="img" aria-label="%s: %s">`, w, label, msg)
	fmt.Fprintf(&buf, `<title>%s: %s</title>`, label, msg)
	buf.WriteString(`<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>`)
	fmt.Fprintf(&buf, `<clipPath id="r"><rect width="%d" height="20" rx="3" fill="#fff"/></clipPath>`, w)
	fmt.Fprintf(&buf, `<g clip-path="url(#r)"><rect width="%d" height="20" fill="%s"/><rect x="%d" width="%d" height="20" fill="%s"/><rect width="%d" height="20" fill="url(#s)"/></g>`,
		lw, colourLabel, lw, mw, colour, w)
	buf.WriteString(`<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" text-rendering="geometricPrecision" font-size="11">`)
	for _, t := range []struct {
		x    float64
		text string
	}{{float64(lw) / 2, label}, {float64(lw) + float64(mw)/2, msg}} {
		fmt.Fprintf(&buf, `<text x="%.1f" y="15" fill="#010101" fill-opacity=".3">%s</text><text x="%.1f" y="14">%s</text>`, t.x, t.text, t.x, t.text)
	}
	buf.WriteString(`</g></svg>`)
	return buf.Bytes()
}

func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func validColour(c string) bool {
	if len(c) != 4 && len(c) != 7 || c[0] != '#' {
		return false
	}
	return text.IsHex(c[1:])
}

// textWidth estimates the width in pixels of s in 11px Verdana, close
// enough for the badge to fit its text.
func textWidth(s string) int {
	w := 0.0
	for _, c := range s {
		switch {
		case strings.ContainsRune("il.,:;'|!", c):
			w += 3.5
		case strings.ContainsRune("fjrt()[]{} -", c):
			w += 4.8
		case strings.ContainsRune("mwMW@%", c):
			w += 10.5
		case c >= 'A' && c <= 'Z':
			w += 7.8
		case c < 128:
			w += 6.9
		default:
			w += 9.5
		}
	}
	return int(w + 0.5)
}
