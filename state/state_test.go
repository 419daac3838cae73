package state

import (
	"strings"
	"testing"
)

func TestStateReleaseAndHistory(t *testing.T) {
	st := &State{}
	for i := range HistoryLimit + 5 {
		st.Record(Verdict{Commit: strings.Repeat(string(rune('a'+i%26)), 40), Outcome: OutcomeHealthy})
	}
	if len(st.History) != HistoryLimit {
		t.Fatalf("history holds %d, want %d", len(st.History), HistoryLimit)
	}
	st.Quarantine = []Quarantined{{Digest: "sha256:bad", Commit: "abcdef0123456789"}, {Digest: "sha256:other", Commit: "0123456789abcdef"}}
	st.Record(Verdict{Commit: "c1", Digest: "sha256:bad", Outcome: OutcomeQuarantined})
	st.Record(Verdict{Commit: "c2", Digest: "sha256:bad", Outcome: OutcomeFailed})
	if got := st.Release("abcdef0"); len(got) != 1 || got[0].Digest != "sha256:bad" {
		t.Fatalf("released %v", got)
	}
	if _, ok := st.Quarantined("sha256:bad"); ok {
		t.Fatal("still quarantined")
	}
	if _, ok := st.Quarantined("sha256:other"); !ok {
		t.Fatal("released too much")
	}
	if _, ok := st.VerdictFor("c1"); ok {
		t.Fatal("the quarantined verdict was kept; the commit would never be evaluated again")
	}
	if _, ok := st.VerdictFor("c2"); !ok {
		t.Fatal("a real verdict was dropped")
	}
	if got := st.Release("abc"); len(got) != 0 {
		t.Fatal("a short prefix released something")
	}
}

func TestPhaseFinalAndOutcomeFailed(t *testing.T) {
	for p, final := range map[Phase]bool{PhaseFetching: false, PhaseRendering: false, PhaseApplying: false, PhasePruning: false,
		PhaseVerifying: false, PhaseHealthy: true, PhaseFailed: true, PhaseStalled: true, "": false} {
		if p.Final() != final {
			t.Errorf("Phase(%q).Final() = %v", p, !final)
		}
	}
	for o, failed := range map[Outcome]bool{OutcomeHealthy: false, OutcomeFailed: true, OutcomeTimedOut: true, OutcomeError: true, OutcomeQuarantined: false} {
		if o.Failed() != failed {
			t.Errorf("Outcome(%q).Failed() = %v", o, !failed)
		}
	}
}
