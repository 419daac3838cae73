package server

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"html/template"
	"regexp"
	"strings"
)

// GraphNode is one environment as the pipeline graph draws it.
type GraphNode struct {
	// Name is the environment's name.
	Name string
	// Revision is the commit it runs, abbreviated; empty for none yet.
	Revision string
	// Verdict is its last verdict, such as Healthy or Failed.
	Verdict string
	// Phase is where its reconcile stands, such as Verifying or
	// "Waiting: infra is Verifying 1a2b3c4".
	Phase string
	// Colour is the node's border colour, #rgb or #rrggbb (a badge
	// colour); anything else draws grey.
	Colour string
}

// GraphEdge is one arrow of the pipeline graph.
type GraphEdge struct {
	// From and To are environment names; the arrow points at To.
	From, To string
	// Kind is "promotes", "requires" or "dependsOn"; it sets the line's
	// style and the words of the text alternative.
	Kind string
}

// Geometry of the drawing, in SVG user units.
const (
	graphNodeW   = 210
	graphNodeH   = 84
	graphColGap  = 70
	graphRowGap  = 24
	graphMargin  = 12
	graphLineH   = 17
	graphMaxText = 30 // runes of one line inside a node
	graphGrey    = "#9f9f9f"
)

var hexColour = regexp.MustCompile(`^#(?:[0-9a-fA-F]{3}){1,2}$`)

// edgeStyles are the line styles and the words of each kind of edge.
var edgeStyles = map[string]struct{ dash, colour, words string }{
	"promotes":  {"", "#555", "promotes to"},
	"requires":  {"6 4", "#0366d6", "must be healthy before"},
	"dependsOn": {"2 4", "#8250df", "is a dependency of"},
}

// PipelineGraph draws the environments as an inline SVG: one box per node
// with its name, revision, verdict and phase, and an arrow per edge
// (promotions solid, requirements dashed, dependencies dotted), laid out
// left to right so that every arrow points right. It is accessible: the
// SVG has role="img", an aria-label, and a <title> and <desc> that say in
// words what the picture shows; each box has a <title> of its own. Edges
// naming unknown nodes are left out.
func PipelineGraph(nodes []GraphNode, edges []GraphEdge) template.HTML {
	index := make(map[string]int, len(nodes))
	for i, n := range nodes {
		if _, dup := index[n.Name]; !dup {
			index[n.Name] = i
		}
	}
	var kept []GraphEdge
	for _, e := range edges {
		_, okFrom := index[e.From]
		_, okTo := index[e.To]
		if okFrom && okTo && e.From != e.To {
			kept = append(kept, e)
		}
	}
	col := layers(len(nodes), index, kept)
	var rows []int // nodes per column so far
	x := make([]int, len(nodes))
	y := make([]int, len(nodes))
	for i := range nodes {
		for len(rows) <= col[i] {
			rows = append(rows, 0)
		}
		x[i] = graphMargin + col[i]*(graphNodeW+graphColGap)
		y[i] = graphMargin + rows[col[i]]*(graphNodeH+graphRowGap)
		rows[col[i]]++
	}
	width, height := 2*graphMargin, 2*graphMargin
	for c, r := range rows {
		width = max(width, graphMargin+(c+1)*(graphNodeW+graphColGap)-graphColGap+graphMargin)
		height = max(height, graphMargin+r*(graphNodeH+graphRowGap)-graphRowGap+graphMargin)
	}

	label := fmt.Sprintf("Pipeline of %d environments", len(nodes))
	var desc []string
	for _, n := range nodes {
		desc = append(desc, nodeSentence(n))
	}
	for _, e := range kept {
		desc = append(desc, fmt.Sprintf("%s %s %s.", e.From, edgeStyles[kindOf(e)].words, e.To))
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="pipeline" role="img" aria-labelledby="pipeline-title pipeline-desc" aria-label="%s" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui,sans-serif" font-size="13">`,
		esc(label), width, height, width, height)
	fmt.Fprintf(&b, `<title id="pipeline-title">%s</title><desc id="pipeline-desc">%s</desc>`, esc(label), esc(strings.Join(desc, " ")))
	b.WriteString(`<defs>`)
	for _, kind := range []string{"promotes", "requires", "dependsOn"} {
		fmt.Fprintf(&b, `<marker id="pipeline-arrow-%s" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="%s"/></marker>`,
			kind, edgeStyles[kind].colour)
	}
	b.WriteString(`</defs>`)
	for _, e := range kept {
		from, to := index[e.From], index[e.To]
		kind := kindOf(e)
		st := edgeStyles[kind]
		x1, y1 := x[from]+graphNodeW, y[from]+graphNodeH/2
		x2, y2 := x[to], y[to]+graphNodeH/2
		mid := (x1 + x2) / 2
		dash := ""
		if st.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, st.dash)
		}
		fmt.Fprintf(&b, `<path class="edge %s" d="M%d,%d C%d,%d %d,%d %d,%d" fill="none" stroke="%s" stroke-width="1.5"%s marker-end="url(#pipeline-arrow-%s)"><title>%s</title></path>`,
			kind, x1, y1, mid, y1, mid, y2, x2, y2, st.colour, dash, kind, esc(fmt.Sprintf("%s %s %s", e.From, st.words, e.To)))
	}
	for i, n := range nodes {
		colour := n.Colour
		if !hexColour.MatchString(colour) {
			colour = graphGrey
		}
		fmt.Fprintf(&b, `<g class="node" id="pipeline-node-%s"><title>%s</title>`, esc(n.Name), esc(nodeSentence(n)))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="#fff" stroke="%s" stroke-width="3"/>`, x[i], y[i], graphNodeW, graphNodeH, colour)
		lines := []struct{ text, attrs string }{
			{n.Name, ` font-weight="600" font-size="14"`},
			{orNone("revision ", n.Revision, "no revision yet"), ` font-family="ui-monospace,monospace"`},
			{orNone("verdict ", n.Verdict, "no verdict yet"), ""},
			{orNone("", n.Phase, "not reconciled yet"), ` fill="#444"`},
		}
		for j, l := range lines {
			fmt.Fprintf(&b, `<text x="%d" y="%d"%s>%s</text>`, x[i]+10, y[i]+20+j*graphLineH, l.attrs, esc(clip(l.text)))
		}
		b.WriteString(`</g>`)
	}
	b.WriteString(`</svg>`)
	// Every piece of text above went through esc, and every attribute value
	// is a number, a fixed word or an escaped string.
	return template.HTML(b.String()) //nolint:gosec // built from escaped text
}

// nodeSentence is a node in words: "staging: revision 1a2b3c4, verdict
// Healthy, phase Healthy."
func nodeSentence(n GraphNode) string {
	return fmt.Sprintf("%s: %s, %s, phase %s.", n.Name,
		orNone("revision ", n.Revision, "no revision yet"),
		orNone("verdict ", n.Verdict, "no verdict yet"),
		orNone("", n.Phase, "not reconciled yet"))
}

func orNone(prefix, value, none string) string {
	if value == "" {
		return none
	}
	return prefix + value
}

func kindOf(e GraphEdge) string {
	if _, ok := edgeStyles[e.Kind]; ok {
		return e.Kind
	}
	return "promotes"
}

// layers gives each node a column: one more than the largest column of
// the nodes with an edge into it, so arrows point right. A cycle (the
// configuration refuses them) is cut by bounding the passes.
func layers(n int, index map[string]int, edges []GraphEdge) []int {
	col := make([]int, n)
	for pass := 0; pass < n; pass++ {
		changed := false
		for _, e := range edges {
			from, to := index[e.From], index[e.To]
			if col[to] < col[from]+1 {
				col[to] = col[from] + 1
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	return col
}

// clip shortens s to one line of graphMaxText runes.
func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > graphMaxText {
		return string(r[:graphMaxText-1]) + "…"
	}
	return s
}

// esc escapes s for XML text and attribute values.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
