package server

import (
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/state"
)

// TestIndexShowsPipelineGraph: the environments page carries the graph as
// inline SVG, with each environment's box and the promotion arrow.
func TestIndexShowsPipelineGraph(t *testing.T) {
	srv := testServer(t, testSource(), nil)
	resp, body := get(t, srv.URL+"/environments")
	page := string(body)
	if resp.StatusCode != 200 {
		t.Fatalf("index: %d", resp.StatusCode)
	}
	start, end := strings.Index(page, "<svg"), strings.Index(page, "</svg>")
	if start < 0 || end < start {
		t.Fatalf("index has no inline SVG:\n%s", page)
	}
	svg := page[start : end+len("</svg>")]
	for _, want := range []string{
		`role="img"`, `aria-label="Pipeline of 3 environments"`,
		">staging</text>", ">production</text>", ">fresh</text>", "staging promotes to production.",
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("graph lacks %q:\n%s", want, svg)
		}
	}
	if strings.Contains(page, "&lt;svg") {
		t.Error("the SVG was escaped as text")
	}
}

func TestSuspendedBadgeAndNode(t *testing.T) {
	e := &state.Environment{Name: "production", State: state.State{Phase: state.PhaseHealthy,
		Suspended: &state.Suspension{Reason: "incident 42", By: "alice", Time: time.Now()}}}
	b := EnvironmentBadge(e)
	if b.Message != "suspended: incident 42 (by alice)" || b.Colour != ColourUnknown {
		t.Errorf("badge = %+v", b)
	}
	if n := graphNode(e, b); n.Phase != "suspended: incident 42 (by alice)" {
		t.Errorf("node phase = %q", n.Phase)
	}
	w := &state.Environment{Name: "app", State: state.State{Phase: state.PhaseWaiting, Message: "infra is Verifying 1a2b3c4",
		Target: &state.Revision{Commit: "9e9e9e9e9e9e"}}}
	if n := graphNode(w, EnvironmentBadge(w)); n.Phase != "Waiting: infra is Verifying 1a2b3c4" || n.Revision != "9e9e9e9" {
		t.Errorf("waiting node = %+v", n)
	}
}
