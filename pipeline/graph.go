package pipeline

import (
	"fmt"
	"slices"
	"strings"
)

// Node is one environment as the graph sees it.
type Node struct {
	// Name is the environment's name.
	Name string
	// To are the environments its healthy trees are promoted to.
	To []string
	// Requires are the environments a tree must be healthy in before it
	// enters this one.
	Requires []string
	// DependsOn are the environments that must be healthy at their tip
	// before this one applies.
	DependsOn []string
}

// EdgeKind says what an edge of the graph means.
type EdgeKind string

// Kinds of edges.
const (
	// EdgePromotes: From promotes its healthy trees to To.
	EdgePromotes EdgeKind = "promotes"
	// EdgeRequires: a tree enters To only once healthy in From.
	EdgeRequires EdgeKind = "requires"
	// EdgeDependsOn: To applies only while From is healthy.
	EdgeDependsOn EdgeKind = "dependsOn"
)

// Edge is one arrow of the graph, always pointing the way things flow or
// wait: from the environment that goes first to the one that follows.
type Edge struct {
	From, To string
	Kind     EdgeKind
}

// Graph is the environments and their edges. The configuration is
// validated before a Graph is built; the Graph trusts its names.
type Graph struct {
	nodes []Node
	index map[string]int
}

// New returns the graph of nodes, in their order.
func New(nodes []Node) *Graph {
	g := &Graph{nodes: slices.Clone(nodes), index: map[string]int{}}
	for i, n := range g.nodes {
		if _, dup := g.index[n.Name]; !dup {
			g.index[n.Name] = i // a duplicate name is the caller's to report
		}
	}
	return g
}

// Names lists the environments in order.
func (g *Graph) Names() []string {
	names := make([]string, len(g.nodes))
	for i, n := range g.nodes {
		names[i] = n.Name
	}
	return names
}

func (g *Graph) node(name string) Node {
	if i, ok := g.index[name]; ok {
		return g.nodes[i]
	}
	return Node{Name: name}
}

// Targets are the environments env promotes to.
func (g *Graph) Targets(env string) []string { return g.node(env).To }

// Requires are the environments a tree must be healthy in before it
// enters env.
func (g *Graph) Requires(env string) []string { return g.node(env).Requires }

// DependsOn are the environments env waits for before it applies.
func (g *Graph) DependsOn(env string) []string { return g.node(env).DependsOn }

// Sources are the environments that promote to env.
func (g *Graph) Sources(env string) []string {
	return g.names(func(n Node) bool { return slices.Contains(n.To, env) })
}

// Waiting lists the environments whose promotions wait on env: those that
// require it, with the environments that promote to them. When env becomes
// healthy, those sources try their promotions again.
func (g *Graph) Waiting(env string) []string {
	return g.names(func(n Node) bool { return slices.Contains(n.Requires, env) })
}

// Dependents are the environments that depend on env.
func (g *Graph) Dependents(env string) []string {
	return g.names(func(n Node) bool { return slices.Contains(n.DependsOn, env) })
}

// names lists, in configuration order, the environments whose node
// matches.
func (g *Graph) names(match func(Node) bool) []string {
	var out []string
	for _, n := range g.nodes {
		if match(n) {
			out = append(out, n.Name)
		}
	}
	return out
}

// Edges lists every edge: promotions, then requirements, then
// dependencies, each in the order of the nodes.
func (g *Graph) Edges() []Edge {
	var out []Edge
	for _, n := range g.nodes {
		for _, to := range n.To {
			out = append(out, Edge{From: n.Name, To: to, Kind: EdgePromotes})
		}
	}
	for _, n := range g.nodes {
		for _, r := range n.Requires {
			out = append(out, Edge{From: r, To: n.Name, Kind: EdgeRequires})
		}
	}
	for _, n := range g.nodes {
		for _, d := range n.DependsOn {
			out = append(out, Edge{From: d, To: n.Name, Kind: EdgeDependsOn})
		}
	}
	return out
}

// Upstream lists every environment a tree passes before it reaches env
// by promotion, nearest first.
func (g *Graph) Upstream(env string) []string {
	return g.walk(env, g.Sources)
}

// Downstream lists every environment env's trees reach by promotion,
// nearest first.
func (g *Graph) Downstream(env string) []string {
	return g.walk(env, g.Targets)
}

// walk is a breadth-first walk from env along next, without env itself.
func (g *Graph) walk(env string, next func(string) []string) []string {
	seen := map[string]bool{env: true}
	var out []string
	queue := []string{env}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, n := range next(cur) {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
				queue = append(queue, n)
			}
		}
	}
	return out
}

// Problem is something wrong with the graph's shape: an environment, the
// field at fault and the reason.
type Problem struct {
	// Env is the environment whose field is at fault.
	Env string
	// Field is "promote.to", "requires" or "dependsOn".
	Field string
	// Reason says what is wrong.
	Reason string
}

// Check lists what can never work in the graph: cycles of promotions, of
// requirements (a tree that would wait for itself) and of dependencies,
// and requirements no tree can meet. Unknown names and self-references are
// for the caller, which knows the configuration's paths; Check skips
// edges to unknown names.
func (g *Graph) Check() []Problem {
	var out []Problem
	known := func(name string) bool { _, ok := g.index[name]; return ok }
	// Promotion cycles.
	for _, c := range g.cycles(func(n Node) []string { return n.To }) {
		out = append(out, Problem{Env: c[0], Field: "promote.to", Reason: "promotion cycle " + arrows(c) + "; remove one of these promotions"})
	}
	// Dependency cycles.
	for _, c := range g.cycles(func(n Node) []string { return n.DependsOn }) {
		out = append(out, Problem{Env: c[0], Field: "dependsOn", Reason: "dependency cycle " + arrows(c) + "; each would wait for the other"})
	}
	// Requirements.
	for _, n := range g.nodes {
		if len(n.Requires) == 0 {
			continue
		}
		sources := g.Sources(n.Name)
		if len(sources) == 0 {
			out = append(out, Problem{Env: n.Name, Field: "requires", Reason: fmt.Sprintf("%q receives no promotions, so there is no tree to gate; add it to another environment's promote.to", n.Name)})
			continue
		}
		up := g.Upstream(n.Name)
		down := g.Downstream(n.Name)
		for _, r := range n.Requires {
			if !known(r) || r == n.Name {
				continue
			}
			switch {
			case slices.Contains(down, r):
				out = append(out, Problem{Env: n.Name, Field: "requires", Reason: fmt.Sprintf("%q receives trees only after %q, so %q would wait forever", r, n.Name, n.Name)})
			case slices.Contains(up, r):
				// Upstream: the tree passed it on its way here.
			default:
				// A sibling: it must receive the same trees, from a
				// common upstream environment.
				rUp := append(g.Upstream(r), r)
				if !slices.ContainsFunc(up, func(u string) bool { return slices.Contains(rUp, u) }) {
					out = append(out, Problem{Env: n.Name, Field: "requires", Reason: fmt.Sprintf("%q never receives the trees %q receives (they share no upstream environment)", r, n.Name)})
				}
			}
		}
	}
	// Requirement cycles between siblings: a requires b, b requires a.
	for _, c := range g.cycles(func(n Node) []string { return g.requiredBy(n.Name) }) {
		out = append(out, Problem{Env: c[0], Field: "requires", Reason: "requirement cycle " + arrows(c) + "; each would wait for the other"})
	}
	return out
}

// requiredBy lists the environments that require env.
func (g *Graph) requiredBy(env string) []string { return g.Waiting(env) }

// cycles returns each cycle along next once, starting at its first node
// in the graph's order; edges to unknown names are skipped.
func (g *Graph) cycles(next func(Node) []string) [][]string {
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]int, len(g.nodes))
	var out [][]string
	var path []int
	var visit func(i int)
	visit = func(i int) {
		state[i] = onPath
		path = append(path, i)
		for _, name := range next(g.nodes[i]) {
			j, ok := g.index[name]
			if !ok {
				continue
			}
			switch state[j] {
			case unseen:
				visit(j)
			case onPath:
				cycle := slices.Clone(path[slices.Index(path, j):])
				low := slices.Index(cycle, slices.Min(cycle))
				cycle = slices.Concat(cycle[low:], cycle[:low])
				names := make([]string, len(cycle))
				for k, c := range cycle {
					names[k] = g.nodes[c].Name
				}
				out = append(out, names)
			}
		}
		path = path[:len(path)-1]
		state[i] = done
	}
	for i := range g.nodes {
		if state[i] == unseen {
			visit(i)
		}
	}
	slices.SortFunc(out, func(a, b []string) int { return g.index[a[0]] - g.index[b[0]] })
	return out
}

// arrows writes a cycle as "a" → "b" → "a".
func arrows(cycle []string) string {
	quoted := make([]string, 0, len(cycle)+1)
	for _, n := range cycle {
		quoted = append(quoted, fmt.Sprintf("%q", n))
	}
	quoted = append(quoted, quoted[0])
	return strings.Join(quoted, " → ")
}
