package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	ferryforge "ferry.dev/ferry/forge"
	"ferry.dev/ferry/source"
	"ferry.dev/ferry/state"
)

// observer keeps every verdict ferry records, read from the state
// ConfigMaps every 300ms: a state keeps only its last 20 verdicts, the
// soak needs all of them. A read that fails (the control plane is down)
// is skipped.
type observer struct {
	mu       sync.Mutex
	verdicts map[string]map[string]state.Verdict
	store    *state.Store
}

func startObserver(t *testing.T, f *fixture) *observer {
	o := &observer{verdicts: map[string]map[string]state.Verdict{"staging": {}, "production": {}}, store: state.NewStore(f.c, f.stateNS)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			o.poll(ctx)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return o
}

// poll reads both states once and returns them (nil where a read failed).
func (o *observer) poll(ctx context.Context) map[string]*state.State {
	out := map[string]*state.State{}
	for _, env := range []string{"staging", "production"} {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := o.store.Load(rctx, env)
		cancel()
		if err != nil {
			continue
		}
		out[env] = st
		o.mu.Lock()
		// History is newest first: the oldest copy of a commit's verdict
		// is written first, the newest wins.
		for _, v := range slices.Backward(st.History) {
			o.verdicts[env][v.Commit] = v
		}
		o.mu.Unlock()
	}
	return out
}

// verdict is env's newest verdict on commit seen so far.
func (o *observer) verdict(env, commit string) (state.Verdict, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	v, ok := o.verdicts[env][commit]
	return v, ok
}

// all is every verdict seen in env.
func (o *observer) all(env string) map[string]state.Verdict {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.verdicts[env])
}

// gitCommit is one commit of the soak's repository.
type gitCommit struct {
	sha, tree string
	parents   []string
	message   string
	bad       bool
	// reverted lists the Ferry-Reverted trailers: set on ferry's reverts.
	reverted []string
}

// tipChange is one update of a branch, from the forge's reflog.
type tipChange struct {
	at  time.Time
	sha string
}

// history is what the forge holds at the end.
type history struct {
	commits map[string]*gitCommit
	// tips are each branch's updates, oldest first.
	tips map[string][]tipChange
	// first is the branch a commit was first a tip of.
	first map[string]string
}

func (c *chaos) readHistory() *history {
	t := c.t
	h := &history{commits: map[string]*gitCommit{}, tips: map[string][]tipChange{}, first: map[string]string{}}
	c.f.git(t, "fetch", "--quiet", "origin")
	out := c.f.git(t, "log", "--format=%H%x1f%T%x1f%P%x1f%B%x1e", "origin/main", "origin/production")
	badTrees := map[string]bool{}
	for _, rec := range strings.Split(out, "\x1e") {
		f := strings.Split(strings.TrimSpace(rec), "\x1f")
		if len(f) != 4 {
			continue
		}
		gc := &gitCommit{sha: f[0], tree: f[1], parents: strings.Fields(f[2]), message: f[3]}
		gc.reverted = source.Trailer(gc.message, source.TrailerReverted)
		bad, seen := badTrees[gc.tree]
		if !seen {
			var err error
			if bad, err = c.badTree(gc.sha); err != nil {
				t.Fatal(err)
			}
			badTrees[gc.tree] = bad
		}
		gc.bad = bad
		h.commits[gc.sha] = gc
	}
	type firstSeen struct {
		at     time.Time
		branch string
	}
	seen := map[string]firstSeen{}
	for _, branch := range []string{"main", "production"} {
		out := c.f.git(t, "--git-dir", c.repoDir, "reflog", "show", "--date=unix", "--format=%H %gd", "refs/heads/"+branch)
		var tips []tipChange
		for _, line := range strings.Split(out, "\n") {
			sha, sel, ok := strings.Cut(strings.TrimSpace(line), " ")
			i, j := strings.LastIndex(sel, "@{"), strings.LastIndex(sel, "}")
			if !ok || i < 0 || j < i {
				continue
			}
			sec, err := strconv.ParseInt(sel[i+2:j], 10, 64)
			if err != nil {
				t.Fatalf("reflog of %s: %q: %v", branch, line, err)
			}
			tips = append(tips, tipChange{at: time.Unix(sec, 0), sha: sha})
		}
		slices.Reverse(tips)
		h.tips[branch] = tips
		for _, tc := range tips {
			if s, ok := seen[tc.sha]; !ok || tc.at.Before(s.at) {
				seen[tc.sha] = firstSeen{tc.at, branch}
			}
		}
	}
	for sha, s := range seen {
		h.first[sha] = map[string]string{"main": "staging", "production": "production"}[s.branch]
	}
	return h
}

// ferryReverts are ferry's revert commits (those with a Ferry-Reverted
// trailer), in SHA order.
func (h *history) ferryReverts() []*gitCommit {
	var out []*gitCommit
	for _, gc := range h.commits {
		if len(gc.reverted) > 0 {
			out = append(out, gc)
		}
	}
	slices.SortFunc(out, func(a, b *gitCommit) int { return strings.Compare(a.sha, b.sha) })
	return out
}

// invariant is one line of the report.
type invariant struct {
	name   string
	held   bool
	detail string
}

// check evaluates the invariants at the end of the run.
func (c *chaos) check() []invariant {
	h := c.readHistory()
	disturbed := c.disturbed()
	staging, production := c.obs.all("staging"), c.obs.all("production")
	verdicts := map[string]map[string]state.Verdict{"staging": staging, "production": production}
	reverts := h.ferryReverts()
	short := func(s string) string { return s[:min(7, len(s))] }
	list := func(xs []string) string {
		if len(xs) > 6 {
			return strings.Join(xs[:6], "; ") + fmt.Sprintf("; and %d more", len(xs)-6)
		}
		return strings.Join(xs, "; ")
	}
	var out []invariant

	// 1. No good commit was ever reverted: every ferry revert was written
	// on a bad tip, and none undid a commit verified healthy in its
	// environment. A good commit pushed in the same burst as a bad one
	// and never verified is undone along with it, by design: a revert
	// goes back to the last healthy tree. Those are counted, not failed.
	var bad1 []string
	collateral := 0
	for _, r := range reverts {
		env := h.first[r.sha]
		if p, ok := h.commits[r.parents[0]]; ok && !p.bad {
			bad1 = append(bad1, fmt.Sprintf("%s reverted good tip %s in %s", short(r.sha), short(p.sha), env))
		}
		for _, x := range r.reverted {
			if v, ok := verdicts[env][x]; ok && v.Outcome == state.OutcomeHealthy {
				bad1 = append(bad1, fmt.Sprintf("%s undid %s, verified healthy in %s", short(r.sha), short(x), env))
			} else if gc, ok := h.commits[x]; ok && !gc.bad && x != r.parents[0] {
				collateral++
			}
		}
	}
	out = append(out, invariant{"no good commit was ever reverted", len(bad1) == 0,
		orDetail(list(bad1), fmt.Sprintf("%d ferry reverts, each on a bad tip; %d unverified good commits undone with a bad one", len(reverts), collateral))})

	// 2. Every bad commit that stayed main's tip long enough was reverted
	// exactly once, and no commit was reverted twice.
	times := map[string]int{}
	for _, r := range reverts {
		for _, x := range r.reverted {
			times[x]++
		}
	}
	var bad2 []string
	due, badCommits, reverted := 0, 0, 0
	for sha, gc := range h.commits {
		if times[sha] > 1 {
			bad2 = append(bad2, fmt.Sprintf("%s reverted %d times", short(sha), times[sha]))
		}
		if !gc.bad || len(gc.reverted) > 0 || len(source.Trailer(gc.message, source.TrailerPromotedFrom)) > 0 {
			continue
		}
		badCommits++
		if times[sha] > 0 {
			reverted++
		}
		if q := longestQuietTip(h.tips["main"], sha, disturbed, time.Now()); q >= soakLongEnough {
			due++
			if times[sha] != 1 {
				bad2 = append(bad2, fmt.Sprintf("%s was main's tip for %s of quiet time and was reverted %d times", short(sha), q.Round(time.Second), times[sha]))
			}
		}
	}
	out = append(out, invariant{fmt.Sprintf("bad tips (≥ %s quiet) reverted exactly once", soakLongEnough), len(bad2) == 0,
		orDetail(list(bad2), fmt.Sprintf("%d bad commits, %d reverted; %d stayed tip long enough, each reverted once", badCommits, reverted, due))})

	// 3. Production ran only trees verified healthy in staging, or a
	// person's hotfix: every tip production's branch ever had.
	allowed := map[string]string{}
	for sha, v := range staging {
		if gc, ok := h.commits[sha]; ok && v.Outcome == state.OutcomeHealthy {
			allowed[gc.tree] = "healthy in staging at " + short(sha)
		}
	}
	c.mu.Lock()
	for sha := range c.hotfixes {
		if gc, ok := h.commits[sha]; ok {
			allowed[gc.tree] = "hotfix " + short(sha)
		}
	}
	c.mu.Unlock()
	var bad3 []string
	prodTips := h.tips["production"]
	for _, tc := range prodTips {
		gc, ok := h.commits[tc.sha]
		if !ok {
			bad3 = append(bad3, fmt.Sprintf("tip %s is not in the history", short(tc.sha)))
			continue
		}
		if _, ok := allowed[gc.tree]; !ok {
			bad3 = append(bad3, fmt.Sprintf("tip %s (%s) has a tree never healthy in staging", short(tc.sha), source.Subject(gc.message)))
		}
	}
	for sha := range production {
		if gc, ok := h.commits[sha]; ok {
			if _, ok := allowed[gc.tree]; !ok {
				bad3 = append(bad3, fmt.Sprintf("production applied %s, a tree never healthy in staging", short(sha)))
			}
		}
	}
	out = append(out, invariant{"production ran only trees healthy in staging (or hotfixes)", len(bad3) == 0,
		orDetail(list(bad3), fmt.Sprintf("%d production tips, %d verdicts in production, all allowed", len(prodTips), len(production)))})

	// 4. No revert of a revert: ferry never wrote a revert on a tip that
	// is its own revert, nor named one of its reverts as undone.
	var bad4 []string
	for _, r := range reverts {
		if p, ok := h.commits[r.parents[0]]; ok && len(p.reverted) > 0 {
			bad4 = append(bad4, fmt.Sprintf("%s reverts the revert %s", short(r.sha), short(p.sha)))
		}
		for _, x := range r.reverted {
			if gc, ok := h.commits[x]; ok && len(gc.reverted) > 0 && x != r.parents[0] {
				bad4 = append(bad4, fmt.Sprintf("%s names the revert %s as undone", short(r.sha), short(x)))
			}
		}
	}
	out = append(out, invariant{"no revert of a revert", len(bad4) == 0, orDetail(list(bad4), fmt.Sprintf("%d ferry reverts checked", len(reverts)))})

	// 5. No environment stuck in a non-final phase after the quiet period.
	var bad5, phases []string
	final := c.obs.poll(c.t.Context())
	tips := map[string]string{}
	for env, branch := range map[string]string{"staging": "main", "production": "production"} {
		st := final[env]
		if st == nil {
			bad5 = append(bad5, env+": state unreadable")
			continue
		}
		tip := c.f.git(c.t, "rev-parse", "origin/"+branch)
		tips[env] = tip
		phases = append(phases, fmt.Sprintf("%s %s at %s", env, st.Phase, short(tip)))
		if !st.Phase.Final() {
			bad5 = append(bad5, fmt.Sprintf("%s is %s: %s", env, st.Phase, st.Message))
		}
		if v, ok := st.VerdictFor(tip); !ok || v.Action.IsZero() {
			bad5 = append(bad5, fmt.Sprintf("%s has not decided its tip %s", env, short(tip)))
		}
	}
	slices.Sort(phases)
	out = append(out, invariant{"no environment stuck in a non-final phase", len(bad5) == 0, orDetail(list(bad5), strings.Join(phases, ", "))})

	// 6. Each verdict's final status is on the forge: ferry/<env> is
	// success on a healthy commit and failure on a failed one, never
	// left pending. The reporter retries what a forge fault held back,
	// so this waits up to 90s for it.
	var bad6 []string
	checked := 0
	waitUntil(c.t.Context(), 90*time.Second, func() bool {
		bad6, checked = nil, 0
		for env, vs := range verdicts {
			for sha, v := range vs {
				checked++
				got := ferryStatuses(c.t, c.f.repo, sha, ferryforge.EnvironmentContext(env))
				want := "success"
				if v.Outcome != state.OutcomeHealthy {
					want = "failure"
				}
				if len(got) == 0 || !strings.HasPrefix(got[len(got)-1], want+":") {
					last := "none"
					if len(got) > 0 {
						last = got[len(got)-1]
					}
					bad6 = append(bad6, fmt.Sprintf("%s on %s (%s): last status %q, want %s", ferryforge.EnvironmentContext(env), short(sha), v.Outcome, last, want))
				}
			}
		}
		return len(bad6) == 0
	})
	slices.Sort(bad6)
	out = append(out, invariant{"each verdict's final status is on the forge", len(bad6) == 0, orDetail(list(bad6), fmt.Sprintf("%d verdicts, each with its final status", checked))})

	// 7. No fault decided a verdict: no good tree failed.
	var bad7 []string
	for env, vs := range verdicts {
		for sha, v := range vs {
			if gc, ok := h.commits[sha]; ok && !gc.bad && v.Outcome != state.OutcomeHealthy {
				bad7 = append(bad7, fmt.Sprintf("%s: good %s %s: %s", env, short(sha), v.Outcome, v.Reason))
			}
		}
	}
	slices.Sort(bad7)
	out = append(out, invariant{"no good tree got a failing verdict", len(bad7) == 0, orDetail(list(bad7), fmt.Sprintf("%d verdicts in staging, %d in production", len(staging), len(production)))})

	// 8. RSS and goroutines at the end within 20% of the baseline. Both
	// are taken as steadyMetrics takes them; a floor of 8 MiB and 10
	// goroutines keeps small absolute moves of small figures from
	// failing the run.
	out = append(out, c.checkMetrics())
	return out
}

// checkMetrics compares ferry's figures at the end with the baseline.
func (c *chaos) checkMetrics() invariant {
	name := fmt.Sprintf("RSS and goroutines within 20%% of commit %d's", c.plan.baselineAt)
	if !c.baselineTaken {
		return invariant{name, false, "no baseline was taken"}
	}
	if c.ferry.startCount() != c.baselineStarts {
		return invariant{name, false, "ferry was restarted after the baseline (an exit the soak did not cause): the figures compare two processes"}
	}
	within := func(base, end, floor float64) bool {
		return end-base <= max(0.2*base, floor) && base-end <= max(0.2*base, floor)
	}
	okRSS := within(c.baseline.rss, c.end.rss, 8<<20)
	okG := within(c.baseline.goroutines, c.end.goroutines, 10)
	return invariant{name, okRSS && okG, fmt.Sprintf("RSS %.1f → %.1f MiB, goroutines %v → %v",
		c.baseline.rss/(1<<20), c.end.rss/(1<<20), c.baseline.goroutines, c.end.goroutines)}
}

func orDetail(problems, fine string) string {
	if problems != "" {
		return problems
	}
	return fine
}

// disturbed are the spans that are not quiet: each fault and each time
// ferry was down, plus soakRecovery after it.
func (c *chaos) disturbed() []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []span
	for _, f := range c.injected {
		out = append(out, span{f.when.from, f.when.to.Add(soakRecovery)})
	}
	for _, d := range c.ferry.downSpans() {
		out = append(out, span{d.from, d.to.Add(soakRecovery)})
	}
	return out
}

// longestQuietTip is the longest stretch of quiet time during which sha
// was the tip, by the branch's updates; the last tip lasts until end.
func longestQuietTip(tips []tipChange, sha string, disturbed []span, end time.Time) time.Duration {
	var best time.Duration
	for i, tc := range tips {
		if tc.sha != sha {
			continue
		}
		to := end
		if i+1 < len(tips) {
			to = tips[i+1].at
		}
		best = max(best, longestQuiet(span{tc.at, to}, disturbed))
	}
	return best
}

// longestQuiet is the longest piece of s that no disturbed span covers.
func longestQuiet(s span, disturbed []span) time.Duration {
	pieces := []span{s}
	for _, d := range disturbed {
		var next []span
		for _, p := range pieces {
			if !d.to.After(p.from) || !d.from.Before(p.to) {
				next = append(next, p)
				continue
			}
			if d.from.After(p.from) {
				next = append(next, span{p.from, d.from})
			}
			if d.to.Before(p.to) {
				next = append(next, span{d.to, p.to})
			}
		}
		pieces = next
	}
	var best time.Duration
	for _, p := range pieces {
		best = max(best, p.to.Sub(p.from))
	}
	return best
}

// report prints the table of faults and invariants, and fails the test
// with the seed that replays the run when an invariant failed.
func (c *chaos) report(invs []invariant) {
	t := c.t
	var b strings.Builder
	fmt.Fprintf(&b, "chaos soak: %d commits in %d bursts, seed %d, %s\n", c.settings.commits, len(c.plan.bursts), c.settings.seed, time.Since(c.started).Round(time.Second))
	kinds := map[string]int{}
	c.mu.Lock()
	for _, k := range c.person {
		kinds[string(k)]++
	}
	fmt.Fprintf(&b, "commits by a person: %d good, %d bad, %d reverts by hand, %d merges of a hotfix; %d hotfixes on production\n",
		kinds[string(changeGood)], kinds[string(changeBad)], kinds[string(changeRevert)], kinds["merge"], len(c.hotfixes))
	counts := map[faultKind]int{}
	failedInjections := 0
	for _, f := range c.injected {
		counts[f.kind]++
		if f.err != nil {
			failedInjections++
		}
	}
	notes := slices.Clone(c.notes)
	c.mu.Unlock()
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\nFAULT\tINJECTED")
	for _, k := range allFaults {
		fmt.Fprintf(w, "%s\t%d\n", k, counts[k])
	}
	exits := c.ferry.unexpectedExits()
	fmt.Fprintf(w, "(ferry exits not caused by the soak)\t%d\n", len(exits))
	fmt.Fprintln(w, "\nINVARIANT\tRESULT\tDETAIL")
	failed := false
	for _, inv := range invs {
		res := "held"
		if !inv.held {
			res, failed = "FAILED", true
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", inv.name, res, inv.detail)
	}
	_ = w.Flush()
	for _, e := range exits {
		fmt.Fprintf(&b, "ferry exited on its own at %s\n", e)
	}
	for _, n := range notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if failed {
		fmt.Fprintf(&b, "\nreplay this run: FERRY_SOAK_SEED=%d FERRY_SOAK_COMMITS=%d make soak\n", c.settings.seed, c.settings.commits)
	}
	table := b.String()
	fmt.Print("\n" + table)
	if err := writeTable(table); err != nil {
		t.Errorf("FERRY_SOAK_TABLE: %v", err)
	}
	if failed {
		t.Errorf("an invariant failed; replay with FERRY_SOAK_SEED=%d FERRY_SOAK_COMMITS=%d make soak", c.settings.seed, c.settings.commits)
	}
	if failedInjections > 0 {
		t.Errorf("%d faults could not be injected", failedInjections)
	}
}
