package server_test

import (
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"ferry.dev/ferry/server"
)

// svgDoc is what a reader of the SVG finds: the root's attributes, the
// title and description, every text line, every box's tooltip and every
// edge's path.
type svgDoc struct {
	root     map[string]string
	title    string
	desc     string
	texts    []string
	tooltips []string
	paths    []string
}

// parseSVG reads the SVG with encoding/xml, failing the test on any
// syntax error.
func parseSVG(t *testing.T, svg string) svgDoc {
	t.Helper()
	doc := svgDoc{root: map[string]string{}}
	dec := xml.NewDecoder(strings.NewReader(svg))
	var stack []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not valid XML: %v\n%s", err, svg)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if len(stack) == 0 {
				if tok.Name.Local != "svg" {
					t.Fatalf("root element is %s, want svg", tok.Name.Local)
				}
				for _, a := range tok.Attr {
					doc.root[a.Name.Local] = a.Value
				}
			}
			if tok.Name.Local == "path" && len(stack) > 0 && stack[len(stack)-1] == "svg" {
				for _, a := range tok.Attr {
					if a.Name.Local == "d" {
						doc.paths = append(doc.paths, a.Value)
					}
				}
			}
			stack = append(stack, tok.Name.Local)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			text := string(tok)
			switch {
			case len(stack) == 2 && stack[1] == "title":
				doc.title = text
			case len(stack) == 2 && stack[1] == "desc":
				doc.desc = text
			case len(stack) == 3 && stack[1] == "g" && stack[2] == "text":
				doc.texts = append(doc.texts, text)
			case len(stack) == 3 && stack[1] == "g" && stack[2] == "title":
				doc.tooltips = append(doc.tooltips, text)
			}
		}
	}
	return doc
}

func wavesGraph() ([]server.GraphNode, []server.GraphEdge) {
	nodes := []server.GraphNode{
		{Name: "dev", Revision: "1a2b3c4", Verdict: "Healthy", Phase: "Healthy", Colour: "#4c1"},
		{Name: "staging", Revision: "1a2b3c4", Verdict: "Healthy", Phase: "Verifying", Colour: "#dfb317"},
		{Name: "prod-eu", Revision: "0f0f0f0", Verdict: "Failed", Phase: "Failed", Colour: "#e05d44"},
		{Name: "prod-us", Revision: "", Verdict: "", Phase: "Waiting: prod-eu is verifying it"},
		{Name: "infra", Revision: "9e9e9e9", Verdict: "Healthy", Phase: "Healthy", Colour: "#4c1"},
		{Name: "app", Revision: "", Verdict: "", Phase: "Waiting: infra is Verifying 9e9e9e9", Colour: "red; stroke: url(javascript:x)"},
	}
	edges := []server.GraphEdge{
		{From: "dev", To: "staging", Kind: "promotes"},
		{From: "staging", To: "prod-eu", Kind: "promotes"},
		{From: "staging", To: "prod-us", Kind: "promotes"},
		{From: "prod-eu", To: "prod-us", Kind: "requires"},
		{From: "infra", To: "app", Kind: "dependsOn"},
	}
	return nodes, edges
}

func TestPipelineGraphShowsEveryNode(t *testing.T) {
	nodes, edges := wavesGraph()
	doc := parseSVG(t, string(server.PipelineGraph(nodes, edges)))

	if doc.root["role"] != "img" || doc.root["aria-label"] != "Pipeline of 6 environments" || doc.title != "Pipeline of 6 environments" {
		t.Errorf("accessible name: role %q, aria-label %q, title %q", doc.root["role"], doc.root["aria-label"], doc.title)
	}
	if doc.root["aria-labelledby"] != "pipeline-title pipeline-desc" {
		t.Errorf("aria-labelledby = %q", doc.root["aria-labelledby"])
	}
	wantTexts := []string{
		"dev", "revision 1a2b3c4", "verdict Healthy", "Healthy",
		"staging", "revision 1a2b3c4", "verdict Healthy", "Verifying",
		"prod-eu", "revision 0f0f0f0", "verdict Failed", "Failed",
		"prod-us", "no revision yet", "no verdict yet", "Waiting: prod-eu is verifying…",
		"infra", "revision 9e9e9e9", "verdict Healthy", "Healthy",
		"app", "no revision yet", "no verdict yet", "Waiting: infra is Verifying 9…",
	}
	if strings.Join(doc.texts, "|") != strings.Join(wantTexts, "|") {
		t.Errorf("node texts =\n%q\nwant\n%q", doc.texts, wantTexts)
	}
	// The text alternative holds what the clipped lines leave out.
	for _, want := range []string{
		"prod-us: no revision yet, no verdict yet, phase Waiting: prod-eu is verifying it.",
		"app: no revision yet, no verdict yet, phase Waiting: infra is Verifying 9e9e9e9.",
		"dev: revision 1a2b3c4, verdict Healthy, phase Healthy.",
		"dev promotes to staging.", "staging promotes to prod-eu.", "staging promotes to prod-us.",
		"prod-eu must be healthy before prod-us.", "infra is a dependency of app.",
	} {
		if !strings.Contains(doc.desc, want) {
			t.Errorf("desc lacks %q:\n%s", want, doc.desc)
		}
	}
	if len(doc.tooltips) != len(nodes) || doc.tooltips[3] != "prod-us: no revision yet, no verdict yet, phase Waiting: prod-eu is verifying it." {
		t.Errorf("box titles = %q", doc.tooltips)
	}
}

func TestPipelineGraphArrowsPointRight(t *testing.T) {
	nodes, edges := wavesGraph()
	svg := string(server.PipelineGraph(nodes, edges))
	doc := parseSVG(t, svg)
	if len(doc.paths) != len(edges) {
		t.Fatalf("%d edge paths, want %d", len(doc.paths), len(edges))
	}
	num := regexp.MustCompile(`-?\d+`)
	for i, d := range doc.paths {
		n := num.FindAllString(d, -1)
		x1, _ := strconv.Atoi(n[0])
		x2, _ := strconv.Atoi(n[len(n)-2])
		if x1 >= x2 {
			t.Errorf("edge %v: path %q does not point right", edges[i], d)
		}
	}
	for _, want := range []string{`stroke-dasharray="6 4"`, `stroke-dasharray="2 4"`, `marker-end="url(#pipeline-arrow-promotes)"`} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %s", want)
		}
	}
	if strings.Contains(svg, "javascript") {
		t.Error("a colour that is not #hex reached the SVG")
	}
}

func TestPipelineGraphEscapesText(t *testing.T) {
	nodes := []server.GraphNode{
		{Name: `a<b>&"c"`, Phase: "Failed: </text><script>alert(1)</script>"},
		{Name: "z"},
	}
	edges := []server.GraphEdge{{From: `a<b>&"c"`, To: "z", Kind: "promotes"}, {From: "z", To: "nowhere"}}
	svg := string(server.PipelineGraph(nodes, edges))
	doc := parseSVG(t, svg)
	if strings.Contains(svg, "<script") {
		t.Fatalf("unescaped markup in the SVG:\n%s", svg)
	}
	if doc.texts[0] != `a<b>&"c"` || !strings.HasPrefix(doc.texts[3], "Failed: </text><script>") {
		t.Errorf("texts = %q", doc.texts)
	}
	if len(doc.paths) != 1 {
		t.Errorf("%d paths; an edge to an unknown node must be left out", len(doc.paths))
	}
}

func TestPipelineGraphEmpty(t *testing.T) {
	doc := parseSVG(t, string(server.PipelineGraph(nil, nil)))
	if doc.title != "Pipeline of 0 environments" {
		t.Errorf("title = %q", doc.title)
	}
}
