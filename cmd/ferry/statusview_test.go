package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func sampleRows() []statusRow {
	return []statusRow{
		{Name: "staging", Branch: "main", Tip: "1a2b3c4d5e6f", Applied: "1a2b3c4d5e6f", Phase: "Healthy", Verdict: "Healthy",
			Healthy: "1a2b3c4d5e6f", Next: "promoted to prod-eu, prod-us"},
		{Name: "prod-us", Branch: "prod-us", Tip: "0f0f0f0f0f0f", Applied: "0f0f0f0f0f0f", Phase: "Healthy", Verdict: "Healthy",
			Healthy: "0f0f0f0f0f0f", Next: "promote 1a2b3c4 when prod-eu is healthy"},
		{Name: "app", Branch: "app", Tip: "9e9e9e9e9e9e", Phase: "Waiting: infra is Verifying 1a2b3c4",
			SourceError: "fetch: connection refused\nretrying"},
	}
}

func TestStatusTable(t *testing.T) {
	var b bytes.Buffer
	if err := writeStatus(&b, outputTable, sampleRows()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want a header and 3 rows:\n%s", len(lines), b.String())
	}
	fields := func(line string) []string {
		// Columns are separated by two spaces or more.
		var out []string
		for _, f := range strings.Split(line, "  ") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
		return out
	}
	want := [][]string{
		{"ENVIRONMENT", "BRANCH", "TIP", "APPLIED", "PHASE", "VERDICT", "LAST HEALTHY", "NEXT", "SOURCE ERROR"},
		{"staging", "main", "1a2b3c4", "1a2b3c4", "Healthy", "Healthy", "1a2b3c4", "promoted to prod-eu, prod-us", "-"},
		{"prod-us", "prod-us", "0f0f0f0", "0f0f0f0", "Healthy", "Healthy", "0f0f0f0", "promote 1a2b3c4 when prod-eu is healthy", "-"},
		{"app", "app", "9e9e9e9", "-", "Waiting: infra is Verifying 1a2b3c4", "-", "-", "-", "fetch: connection refused retrying"},
	}
	for i, w := range want {
		if got := fields(lines[i]); strings.Join(got, "|") != strings.Join(w, "|") {
			t.Errorf("line %d = %q, want %q", i, got, w)
		}
	}
	// Columns line up: each column starts at the same offset in every line.
	col := strings.Index(lines[0], "PHASE")
	for _, l := range lines[1:] {
		if l[col-2:col] != "  " || l[col] == ' ' {
			t.Errorf("PHASE column not aligned in %q", l)
		}
	}
}

func TestStatusJSONAndYAML(t *testing.T) {
	for _, format := range []string{outputJSON, outputYAML} {
		var b bytes.Buffer
		if err := writeStatus(&b, format, sampleRows()); err != nil {
			t.Fatal(err)
		}
		var got []map[string]string
		var err error
		if format == outputJSON {
			err = json.Unmarshal(b.Bytes(), &got)
		} else {
			err = yaml.Unmarshal(b.Bytes(), &got)
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", format, err, b.String())
		}
		if len(got) != 3 || got[0]["name"] != "staging" || got[0]["tip"] != "1a2b3c4d5e6f" || got[0]["lastHealthy"] != "1a2b3c4d5e6f" ||
			got[2]["phase"] != "Waiting: infra is Verifying 1a2b3c4" || got[2]["sourceError"] != "fetch: connection refused\nretrying" {
			t.Errorf("%s = %v", format, got)
		}
		if _, ok := got[2]["applied"]; ok {
			t.Errorf("%s: an empty field is printed: %v", format, got[2])
		}
	}
	var b bytes.Buffer
	if err := writeStatus(&b, outputJSON, nil); err != nil || strings.TrimSpace(b.String()) != "[]" {
		t.Errorf("no rows as JSON = %q, %v; want []", b.String(), err)
	}
}

func TestStatusWatchPrintsChanges(t *testing.T) {
	var sw statusWatcher
	var b bytes.Buffer
	rows := sampleRows()
	if err := sw.write(&b, outputTable, rows); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "\n"); n != 4 {
		t.Fatalf("first look: %d lines, want header and 3 rows:\n%s", n, b.String())
	}
	b.Reset()
	if err := sw.write(&b, outputTable, rows); err != nil || b.Len() != 0 {
		t.Fatalf("nothing changed, printed %q, %v", b.String(), err)
	}
	rows[2].Phase, rows[2].Applied = "Verifying", "9e9e9e9e9e9e"
	if err := sw.write(&b, outputTable, rows); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "app ") || !strings.Contains(got, "Verifying") {
		t.Errorf("one change printed as %q, want one line for app", got)
	}
	b.Reset()
	rows[0].Phase = "Applying"
	if err := sw.write(&b, outputJSON, rows); err != nil {
		t.Fatal(err)
	}
	var r statusRow
	if err := json.Unmarshal(b.Bytes(), &r); err != nil || r.Name != "staging" || r.Phase != "Applying" {
		t.Errorf("JSON change = %q (%v)", b.String(), err)
	}
}

func TestSelectRows(t *testing.T) {
	rows := sampleRows()
	got, err := selectRows(rows, "prod-us")
	if err != nil || len(got) != 1 || got[0].Name != "prod-us" {
		t.Errorf("selectRows(prod-us) = %v, %v", got, err)
	}
	if all, _ := selectRows(rows, ""); len(all) != 3 {
		t.Errorf("selectRows(\"\") = %d rows, want all", len(all))
	}
	if _, err := selectRows(rows, "qa"); err == nil || !strings.Contains(err.Error(), `"qa" is not configured; known: staging, prod-us, app`) {
		t.Errorf("selectRows(qa) error = %v", err)
	}
	if err := checkOutput("wide"); err == nil {
		t.Error("checkOutput(wide) accepted")
	}
}
