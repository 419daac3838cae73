package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// statusRow is one environment as `ferry status` shows it. Its JSON and
// YAML form is what -o json|yaml print, with full commit SHAs; the table
// abbreviates them.
type statusRow struct {
	Name string `json:"name"`
	// Branch is the branch the environment follows; Tip is the commit it
	// points at, as ferry last saw it.
	Branch string `json:"branch,omitempty"`
	Tip    string `json:"tip,omitempty"`
	// Applied is the last revision applied without error.
	Applied string `json:"applied,omitempty"`
	// Phase is where the reconcile stands, such as Verifying or
	// "Waiting: infra is Verifying 1a2b3c4".
	Phase string `json:"phase"`
	// Verdict is the newest verdict: its outcome, and its reason if any.
	Verdict string `json:"verdict,omitempty"`
	// Healthy is the last healthy revision.
	Healthy string `json:"lastHealthy,omitempty"`
	// Next says what happens next: a promotion waiting for a requirement
	// or a window, a dependency, a suspension.
	Next string `json:"next,omitempty"`
	// SourceError is the last error reading the branch.
	SourceError string `json:"sourceError,omitempty"`
}

// Output formats of the read commands, as kubectl names them.
const (
	outputTable = ""
	outputJSON  = "json"
	outputYAML  = "yaml"
)

// checkOutput refuses an output format ferry does not write.
func checkOutput(format string) error {
	switch format {
	case outputTable, outputJSON, outputYAML:
		return nil
	}
	return fmt.Errorf("output format %q: use json or yaml, or leave -o out for a table", format)
}

// writeStatus writes rows in format: a table, or a JSON or YAML list.
func writeStatus(w io.Writer, format string, rows []statusRow) error {
	switch format {
	case outputJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rowsOrEmpty(rows))
	case outputYAML:
		out, err := yaml.Marshal(rowsOrEmpty(rows))
		if err != nil {
			return fmt.Errorf("status as YAML: %w", err)
		}
		_, err = w.Write(out)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, statusHeader)
	for _, r := range rows {
		fmt.Fprintln(tw, r.tableLine())
	}
	return tw.Flush()
}

const statusHeader = "ENVIRONMENT\tBRANCH\tTIP\tAPPLIED\tPHASE\tVERDICT\tLAST HEALTHY\tNEXT\tSOURCE ERROR"

func rowsOrEmpty(rows []statusRow) []statusRow {
	if rows == nil {
		return []statusRow{} // [] rather than null
	}
	return rows
}

// tableLine is r as one tab-separated line; empty cells read "-".
func (r statusRow) tableLine() string {
	cells := []string{r.Name, r.Branch, shortSHA(r.Tip), shortSHA(r.Applied), r.Phase, r.Verdict, shortSHA(r.Healthy), r.Next, r.SourceError}
	for i, c := range cells {
		c = oneLineCell(c)
		if c == "" {
			c = "-"
		}
		cells[i] = c
	}
	return strings.Join(cells, "\t")
}

// oneLineCell keeps a cell on one line and within 80 runes.
func oneLineCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 80 {
		return string(r[:79]) + "…"
	}
	return s
}

func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// statusWatcher prints what changed between two looks at the rows, as
// `kubectl get --watch` does: the table once, then one line per
// environment whose row changed.
type statusWatcher struct {
	last    map[string]statusRow
	started bool
}

// write writes the rows that differ from the last look (all of them the
// first time) in format; JSON and YAML write one document per change, the
// YAML ones separated by ---.
func (sw *statusWatcher) write(w io.Writer, format string, rows []statusRow) error {
	var changed []statusRow
	for _, r := range rows {
		if old, ok := sw.last[r.Name]; !ok || old != r {
			changed = append(changed, r)
		}
	}
	if sw.last == nil {
		sw.last = map[string]statusRow{}
	}
	for _, r := range rows {
		sw.last[r.Name] = r
	}
	first := !sw.started
	sw.started = true
	if len(changed) == 0 && !first {
		return nil
	}
	switch format {
	case outputJSON:
		enc := json.NewEncoder(w)
		for _, r := range changed {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	case outputYAML:
		for _, r := range changed {
			out, err := yaml.Marshal(r)
			if err != nil {
				return fmt.Errorf("status as YAML: %w", err)
			}
			if _, err := fmt.Fprintf(w, "---\n%s", out); err != nil {
				return err
			}
		}
		return nil
	}
	// One tabwriter per batch: columns line up within a batch, and the
	// first batch carries the header.
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if first {
		fmt.Fprintln(tw, statusHeader)
	}
	for _, r := range changed {
		fmt.Fprintln(tw, r.tableLine())
	}
	return tw.Flush()
}

// selectRows keeps the row of env, or all rows for "".
func selectRows(rows []statusRow, env string) ([]statusRow, error) {
	if env == "" {
		return rows, nil
	}
	i := slices.IndexFunc(rows, func(r statusRow) bool { return r.Name == env })
	if i < 0 {
		names := make([]string, len(rows))
		for j, r := range rows {
			names[j] = r.Name
		}
		return nil, fmt.Errorf("environment %q is not configured; known: %s", env, strings.Join(names, ", "))
	}
	return rows[i : i+1], nil
}
