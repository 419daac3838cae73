package forge

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"ferry.dev/ferry/state"
)

// Plan is what merging a pull request would do to an environment: the
// render result and the server-side dry-run, shown on the pull request as
// the status ferry/plan/<env> and one comment updated in place.
type Plan struct {
	Environment string
	// Commit is the pull request's head.
	Commit string
	// Created, Changed and Pruned count the objects the dry-run would
	// create, change and prune.
	Created, Changed, Pruned int
	// Objects are the planned changes, with Secret values already masked
	// by whoever computed the diff.
	Objects []PlanObject
	// Err is the render or dry-run error; set, the plan failed.
	Err string
}

// PlanObject is the planned change of one object.
type PlanObject struct {
	// Subject is Kind/namespace/name.
	Subject string
	// Action is created, configured, unchanged or deleted.
	Action string
	// Diff is a unified diff; empty when unchanged.
	Diff string
}

// commentDiffLimit keeps a plan comment under the forges' body limits
// (GitHub: 65536 characters).
const commentDiffLimit = 50000

// Summary is the one line of the plan: "2 created, 1 changed, 0 pruned",
// or the error.
func (p Plan) Summary() string {
	if p.Err != "" {
		return p.Err
	}
	if p.Created+p.Changed+p.Pruned == 0 {
		return "no changes"
	}
	return fmt.Sprintf("%d created, %d changed, %d pruned", p.Created, p.Changed, p.Pruned)
}

// Status is the plan's commit status on the pull request's head; a plan
// that could not be made fails.
func (p Plan) Status(targetURL string) Status {
	s := Status{Environment: p.Environment, Context: PlanContext(p.Environment), Commit: p.Commit,
		State: Success, Description: p.Summary(), TargetURL: targetURL}
	if p.Err != "" {
		s.State = Failure
	}
	return s
}

// Marker is the marker of the plan's comment, one per environment and pull
// request.
func (p Plan) Marker() string { return PlanContext(p.Environment) }

// Comment is the plan's comment in Markdown: the summary, then every
// changed object's diff in a collapsed block.
func (p Plan) Comment() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### ferry plan for `%s` at %s\n\n", mdCode(p.Environment), state.Short(p.Commit))
	if p.Err != "" {
		fmt.Fprintf(&b, "**Plan failed:**\n\n%s\n", fence(p.Err, ""))
		return b.String()
	}
	fmt.Fprintf(&b, "**%s**\n", p.Summary())
	var changed []PlanObject
	for _, o := range p.Objects {
		if o.Action != "unchanged" && o.Action != "" {
			changed = append(changed, o)
		}
	}
	if len(changed) == 0 {
		return b.String()
	}
	b.WriteString("\n| object | action |\n| --- | --- |\n")
	for _, o := range changed {
		fmt.Fprintf(&b, "| `%s` | %s |\n", mdCode(o.Subject), mdCell(o.Action))
	}
	var diff strings.Builder
	for _, o := range changed {
		if o.Diff == "" {
			continue
		}
		diff.WriteString(o.Diff)
		if !strings.HasSuffix(o.Diff, "\n") {
			diff.WriteString("\n")
		}
	}
	if diff.Len() > 0 {
		d := diff.String()
		if len(d) > commentDiffLimit {
			n := commentDiffLimit
			for n > 0 && !utf8.RuneStart(d[n]) {
				n--
			}
			d = d[:n] + "\n… diff truncated\n"
		}
		fmt.Fprintf(&b, "\n<details><summary>Diff</summary>\n\n%s\n</details>\n", fence(d, "diff"))
	}
	return b.String()
}

// fence puts s in a Markdown code fence longer than any backtick run in s,
// so no content can close it early.
func fence(s, lang string) string {
	longest, run := 0, 0
	for _, c := range s {
		if c == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	f := strings.Repeat("`", max(3, longest+1))
	return f + lang + "\n" + strings.TrimRight(s, "\n") + "\n" + f
}

// mdCode makes s safe inside an inline code span.
func mdCode(s string) string { return strings.NewReplacer("`", "'", "\n", " ", "|", "\\|").Replace(s) }

// mdCell makes s safe inside a table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}
