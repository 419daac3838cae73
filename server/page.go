package server

import (
	"bytes"
	"html/template"
	"net/http"
	"time"

	"ferry.dev/ferry/state"
)

// pageFuncs are the helpers of the status pages' templates.
var pageFuncs = template.FuncMap{
	"short": state.Short,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"took": func(from, to time.Time) string {
		if from.IsZero() || to.IsZero() || to.Before(from) {
			return ""
		}
		return to.Sub(from).Round(time.Second).String()
	},
	"outcomeClass": func(outcome state.Outcome) string {
		_, c := outcomeWords(outcome)
		return colourClass(c)
	},
	"same": state.SameCommit,
}

func colourClass(c string) string {
	switch c {
	case ColourHealthy:
		return "ok"
	case ColourFailed:
		return "bad"
	case ColourPending:
		return "busy"
	}
	return "unknown"
}

const pageStyle = `body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:72rem}
h1{font-size:1.5rem}a{color:#0366d6}table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}
code{font-family:ui-monospace,monospace}.pill{padding:.1rem .5rem;border-radius:.6rem;color:#fff}
.ok{background:#4c1}.bad{background:#e05d44}.busy{background:#dfb317}.unknown{background:#9f9f9f}
tr.selected{background:#fff8c5}dl{display:grid;grid-template-columns:max-content auto;gap:.3rem 1rem}dt{font-weight:600}
figure.graph{margin:1rem 0;overflow-x:auto}figure.graph svg{max-width:100%;height:auto}figcaption{font-size:.8rem;color:#555}`

var environmentPage = template.Must(template.New("environment").Funcs(pageFuncs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ferry · {{.Env.Name}}</title>
<style>` + pageStyle + `</style></head><body>
<p><a href="/environments">environments</a> · <a href="/api/v1/environments/{{.Env.Name}}">JSON</a></p>
<h1>{{.Env.Name}} <span class="pill {{.Class}}">{{.Badge.Message}}</span></h1>
<dl>
<dt>Phase</dt><dd>{{with .Env.Phase}}{{.}}{{else}}not reconciled yet{{end}}</dd>
{{with .Env.Suspended}}<dt>Suspended</dt><dd>{{.}}</dd>{{end}}
{{with .Env.Branch}}<dt>Branch</dt><dd><code>{{.}}</code>{{with $.Env.Path}} at <code>{{.}}</code>{{end}}</dd>{{end}}
{{with .Env.Message}}<dt>Message</dt><dd>{{.}}</dd>{{end}}
{{with .Env.SourceError}}<dt>Source error</dt><dd>{{.}}</dd>{{end}}
{{with .Env.Target}}<dt>Reconciling</dt><dd><code title="{{.Commit}}">{{short .Commit}}</code> since {{when .Time}}</dd>{{end}}
{{with .Env.LastApplied}}<dt>Last applied</dt><dd><code title="{{.Commit}}">{{short .Commit}}</code> at {{when .Time}}</dd>{{end}}
<dt>Last healthy</dt><dd>{{with .Env.LastHealthy}}<code title="{{.Commit}}">{{short .Commit}}</code> at {{when .Time}}{{else}}none yet{{end}}</dd>
</dl>
<h2>History</h2>
{{if .Env.History}}<table>
<thead><tr><th>Commit</th><th>Outcome</th><th>Reason</th><th>Action</th><th>Finished</th><th>Took</th></tr></thead>
<tbody>{{range .Env.History}}
<tr id="{{.Commit}}"{{if same .Commit $.Commit}} class="selected"{{end}}><td><code title="{{.Commit}}">{{short .Commit}}</code></td>
<td><span class="pill {{outcomeClass .Outcome}}">{{.Outcome}}</span></td><td>{{.Reason}}</td><td>{{.Action}}</td>
<td>{{when .Finished}}</td><td>{{took .Started .Finished}}</td></tr>{{end}}
</tbody></table>{{else}}<p>No verdict yet.</p>{{end}}
</body></html>
`))

var indexPage = template.Must(template.New("index").Funcs(pageFuncs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ferry</title>
<style>` + pageStyle + `</style></head><body>
<h1>ferry environments</h1>
<figure class="graph">{{.Graph}}<figcaption>Promotions are solid arrows, requirements dashed, dependencies dotted.</figcaption></figure>
<table><thead><tr><th>Environment</th><th>State</th><th>Badge</th></tr></thead><tbody>
{{range .Rows}}<tr><td><a href="/environments/{{.Name}}">{{.Name}}</a></td><td>{{.Badge.Message}}</td>
<td><img alt="{{.Name}} badge" src="/badge/{{.Name}}.svg"></td></tr>{{end}}
</tbody></table></body></html>
`))

type pageData struct {
	Env    *state.Environment
	Badge  Badge
	Class  string
	Commit string
}

func (s *server) environmentPage(w http.ResponseWriter, r *http.Request) {
	e, ok := s.environment(w, r, r.PathValue("env"), func(code int, msg string) { writeText(w, code, msg+"\n") })
	if !ok {
		return
	}
	b := EnvironmentBadge(e)
	writePage(w, environmentPage, pageData{Env: e, Badge: b, Class: colourClass(b.Colour), Commit: r.URL.Query().Get("commit")})
}

type indexRow struct {
	Name  string
	Badge Badge
}

type indexData struct {
	Rows  []indexRow
	Graph template.HTML
}

func (s *server) indexPage(w http.ResponseWriter, r *http.Request) {
	var rows []indexRow
	var nodes []GraphNode
	for _, env := range s.src.Environments() {
		row := indexRow{Name: env, Badge: Badge{Message: "unavailable"}}
		node := GraphNode{Name: env, Phase: "unavailable"}
		if e, err := s.src.Environment(r.Context(), env); err == nil && e != nil {
			e = sanitized(e)
			row.Badge = EnvironmentBadge(e)
			node = graphNode(e, row.Badge)
		} else {
			s.log.Error("report: read environment state", "environment", env, "error", err)
		}
		rows = append(rows, row)
		nodes = append(nodes, node)
	}
	writePage(w, indexPage, indexData{Rows: rows, Graph: PipelineGraph(nodes, s.src.Edges())})
}

func writePage(w http.ResponseWriter, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		writeText(w, http.StatusInternalServerError, "cannot render the page\n")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// graphNode is e as a box of the pipeline graph: the revision it runs,
// its newest verdict and its phase (with the message when it waits or is
// suspended), in its badge's colour.
func graphNode(e *state.Environment, b Badge) GraphNode {
	n := GraphNode{Name: e.Name, Phase: string(e.Phase), Colour: b.Colour}
	switch {
	case e.LastApplied != nil:
		n.Revision = state.Short(e.LastApplied.Commit)
	case e.Target != nil:
		n.Revision = state.Short(e.Target.Commit)
	}
	if len(e.History) > 0 {
		n.Verdict = string(e.History[0].Outcome)
	}
	switch {
	case e.Suspended != nil:
		n.Phase = e.Suspended.String()
	case e.Phase == state.PhaseWaiting && e.Message != "":
		n.Phase = string(e.Phase) + ": " + e.Message
	}
	return n
}
