package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// The chaos soak's plan: every random choice of a run (what each commit
// changes, how commits are grouped into bursts, which fault strikes when
// and how hard) is drawn here from one seed, before anything starts. The
// same seed injects the same changes and faults in the same order; how
// ferry's timing meets them still varies from run to run.

// soakSettings are the soak's knobs: FERRY_SOAK_COMMITS (default 30, the
// version `make test` runs; `make soak` sets 200) and FERRY_SOAK_SEED
// (default: a new seed, printed, so a failing run can be replayed).
type soakSettings struct {
	commits int
	seed    uint64
}

func soakSettingsFromEnv(t *testing.T) soakSettings {
	t.Helper()
	s := soakSettings{commits: 30, seed: uint64(time.Now().UnixNano())}
	if v := os.Getenv("FERRY_SOAK_COMMITS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("FERRY_SOAK_COMMITS=%q: want a number of commits, at least 10", v)
		}
		s.commits = n
	}
	if v := os.Getenv("FERRY_SOAK_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("FERRY_SOAK_SEED=%q: want an unsigned integer", v)
		}
		s.seed = seed
	}
	return s
}

// changeKind is what one commit a person pushes to main does.
type changeKind string

const (
	// changeGood bumps the application's config (and maybe its image tag):
	// a tree that is healthy.
	changeGood changeKind = "good"
	// changeBad does the same and makes the web pods crash-loop.
	changeBad changeKind = "bad"
	// changeRevert is a person's `git revert` of main's tip, when the tip
	// is a good commit of theirs on a good parent; otherwise it falls back
	// to a good change (the tip is whatever ferry and the faults left).
	changeRevert changeKind = "revert"
)

// faultKind is one kind of fault the soak injects.
type faultKind string

const (
	faultKubeLatency  faultKind = "api-server latency"
	faultKubeReset    faultKind = "api-server resets"
	faultForgeLatency faultKind = "forge latency"
	faultForgeReset   faultKind = "forge resets"
	faultControlPlane faultKind = "control-plane stop/start"
	faultGitea        faultKind = "gitea restart"
	faultKillFerry    faultKind = "ferry SIGKILL"
)

// allFaults lists every kind; each is injected at least once per run.
var allFaults = []faultKind{faultKubeLatency, faultKubeReset, faultForgeLatency, faultForgeReset, faultControlPlane, faultGitea, faultKillFerry}

// plannedFault is one fault of the plan.
type plannedFault struct {
	kind faultKind
	// at is when it strikes, after its burst's first push.
	at time.Duration
	// dur is how long it lasts (latency, resets, the control plane
	// down); for a SIGKILL, how long ferry stays down before its restart.
	dur time.Duration
	// latency is the delay of a latency fault; toxicity the share of
	// connections reset by a reset fault.
	latency  time.Duration
	toxicity float32
}

func (f plannedFault) String() string {
	switch f.kind {
	case faultKubeLatency, faultForgeLatency:
		return fmt.Sprintf("%s %s for %s", f.kind, f.latency, f.dur)
	case faultKubeReset, faultForgeReset:
		return fmt.Sprintf("%s (%.0f%% of connections) for %s", f.kind, f.toxicity*100, f.dur)
	case faultControlPlane:
		return fmt.Sprintf("%s, down %s", f.kind, f.dur)
	case faultKillFerry:
		return fmt.Sprintf("%s, restarted after %s", f.kind, f.dur)
	}
	return string(f.kind)
}

// burst is a few commits pushed in quick succession, and maybe a fault.
type burst struct {
	changes []changeKind
	tags    []int
	// gap is the pause between two pushes of the burst.
	gap time.Duration
	// hotfix: after the burst, a person pushes a hotfix straight on
	// production; mergeHotfix: before it, a person merges production's
	// pending hotfix into main (promotion is held until then).
	hotfix, mergeHotfix bool
	fault               *plannedFault
	// first is the number of commits sent before this burst.
	first int
}

// soakPlan is a whole run's plan.
type soakPlan struct {
	bursts []burst
	// baselineAt is the number of commits after which ferry's RSS and
	// goroutines are first measured: the later of min(20, N/3) and
	// min(20, N/3) commits after the last burst with a SIGKILL, so that
	// the baseline and the end are measured on the same process.
	baselineAt int
}

// newSoakPlan draws a plan of n commits from seed.
func newSoakPlan(n int, seed uint64) soakPlan {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	warm := min(20, n/3)
	// SIGKILLs only strike early enough that the process alive at the end
	// has seen min(20, N/3) commits before its baseline and as many after.
	killBefore := max(n/2-warm, 1)
	var p soakPlan
	for sent := 0; sent < n; {
		b := burst{first: sent, gap: time.Duration(100+rng.IntN(700)) * time.Millisecond}
		size := min(1+rng.IntN(4), n-sent)
		for range size {
			k := changeGood
			switch r := rng.IntN(100); {
			case r < 30:
				k = changeBad
			case r < 40:
				k = changeRevert
			}
			b.changes = append(b.changes, k)
			b.tags = append(b.tags, 1+rng.IntN(9))
		}
		sent += size
		p.bursts = append(p.bursts, b)
	}
	// Each kind of fault strikes at least once, in bursts drawn at random
	// (a SIGKILL in one that starts early enough); then about every other
	// burst gets a fault of a random kind.
	free := rng.Perm(len(p.bursts))
	used := map[int]bool{}
	for _, k := range allFaults {
		for _, i := range free {
			if used[i] || (k == faultKillFerry && p.bursts[i].first >= killBefore) {
				continue
			}
			used[i] = true
			p.bursts[i].fault = drawFault(rng, k)
			break
		}
	}
	for i := range p.bursts {
		if used[i] || rng.IntN(100) >= 50 {
			continue
		}
		k := allFaults[rng.IntN(len(allFaults))]
		if k == faultKillFerry && p.bursts[i].first >= killBefore {
			k = faultForgeReset
		}
		p.bursts[i].fault = drawFault(rng, k)
	}
	// About one burst in eight ends with a hotfix on production, at least
	// one per run; the next burst starts by merging it into main.
	hotfixes := 0
	for i := range p.bursts[:len(p.bursts)-1] {
		if rng.IntN(8) == 0 || (hotfixes == 0 && i == len(p.bursts)/2) {
			p.bursts[i].hotfix, p.bursts[i+1].mergeHotfix = true, true
			hotfixes++
		}
	}
	lastKill := 0
	for _, b := range p.bursts {
		if b.fault != nil && b.fault.kind == faultKillFerry {
			lastKill = b.first + len(b.changes)
		}
	}
	p.baselineAt = min(max(warm, lastKill+warm), n)
	return p
}

// drawFault draws the strength, timing and length of a fault of kind k.
func drawFault(rng *rand.Rand, k faultKind) *plannedFault {
	f := &plannedFault{kind: k, at: time.Duration(rng.IntN(3000)) * time.Millisecond}
	switch k {
	case faultKubeLatency, faultForgeLatency:
		f.latency = time.Duration(100+rng.IntN(500)) * time.Millisecond
		f.dur = time.Duration(2+rng.IntN(5)) * time.Second
	case faultKubeReset, faultForgeReset:
		f.toxicity = float32(3+rng.IntN(5)) / 10
		f.dur = time.Duration(1+rng.IntN(4)) * time.Second
	case faultControlPlane:
		f.dur = time.Duration(2+rng.IntN(5)) * time.Second
	case faultKillFerry:
		f.dur = time.Duration(rng.IntN(3000)) * time.Millisecond
	}
	return f
}
