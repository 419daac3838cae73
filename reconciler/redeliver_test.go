package reconciler

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"ferry.dev/ferry/forge"
	"ferry.dev/ferry/health"
	"ferry.dev/ferry/state"
)

// statusRecorder is a forge that records the statuses posted on it.
type statusRecorder struct {
	mu  sync.Mutex
	got []string
}

func (p *statusRecorder) SetStatus(_ context.Context, _ forge.Repo, s forge.Status) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, s.Commit[:7]+" "+string(s.State)+" "+s.Description)
	return nil
}
func (p *statusRecorder) PullRequestHeads(context.Context, forge.Repo, string) ([]string, error) {
	return nil, nil
}
func (p *statusRecorder) OpenPullRequests(context.Context, forge.Repo, string) ([]forge.PullRequest, error) {
	return nil, nil
}
func (p *statusRecorder) Comment(context.Context, forge.Repo, int, string, string) error { return nil }

// TestRedeliver: a replica that starts running an environment (a restart,
// or taking over its lease) posts again every status its state says should
// stand on the forge, so one that a forge outage held in the old process's
// queue is not lost; a commit's newest verdict is posted last, so it stands.
func TestRedeliver(t *testing.T) {
	const a, b, c = "aaaaaaa000000000000000000000000000000000", "bbbbbbb000000000000000000000000000000000", "ccccccc000000000000000000000000000000000"
	started := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		st   state.State
		want []string
	}{
		{"nothing yet", state.State{}, nil},
		{"promoted", state.State{History: []state.Verdict{{Commit: a, Outcome: state.OutcomeHealthy, Action: state.Promoted("production", "")}}},
			[]string{"aaaaaaa success promoted to production"}},
		{"healthy, nowhere to go", state.State{History: []state.Verdict{{Commit: a, Outcome: state.OutcomeHealthy, Action: state.None()}}},
			[]string{"aaaaaaa success healthy at aaaaaaa"}},
		{"every verdict, oldest first", state.State{History: []state.Verdict{
			{Commit: b, Outcome: state.OutcomeFailed, Reason: "web: CrashLoopBackOff", Action: state.Reverted("ccccccc")},
			{Commit: a, Outcome: state.OutcomeHealthy, Action: state.None()},
		}}, []string{"aaaaaaa success healthy at aaaaaaa", "bbbbbbb failure reverted by ccccccc"}},
		{"failed, undecided", state.State{History: []state.Verdict{{Commit: b, Outcome: state.OutcomeTimedOut, Reason: "1 of 3 not Current"}}},
			[]string{"bbbbbbb failure 1 of 3 not Current"}},
		{"one commit twice: the newest verdict stands", state.State{History: []state.Verdict{
			{Commit: a, Outcome: state.OutcomeHealthy, Action: state.Promoted("production", "")},
			{Commit: a, Outcome: state.OutcomeFailed, Reason: "apply: boom"},
		}}, []string{"aaaaaaa failure apply: boom", "aaaaaaa success promoted to production"}},
		{"verifying the next commit", state.State{Phase: state.PhaseVerifying, Target: &state.Revision{Commit: c, Time: started},
			History: []state.Verdict{{Commit: a, Outcome: state.OutcomeHealthy, Action: state.None()}}},
			[]string{"aaaaaaa success healthy at aaaaaaa", "ccccccc pending verifying (soak 1m)"}},
		{"applying", state.State{Phase: state.PhaseApplying, Target: &state.Revision{Commit: c}},
			[]string{"ccccccc pending applying"}},
		{"waiting for a dependency", state.State{Phase: state.PhaseWaiting, Message: "infra is Verifying 1a2b3c4", Target: &state.Revision{Commit: c}},
			[]string{"ccccccc pending waiting: infra is Verifying 1a2b3c4"}},
		{"the target already decided", state.State{Phase: state.PhaseHealthy, Target: &state.Revision{Commit: a},
			History: []state.Verdict{{Commit: a, Outcome: state.OutcomeHealthy, Action: state.None()}}},
			[]string{"aaaaaaa success healthy at aaaaaaa"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).Build()
			store := state.NewStore(cl, "ferry")
			if _, err := store.Update(t.Context(), "staging", func(st *state.State) error { *st = tc.st; return nil }); err != nil {
				t.Fatal(err)
			}
			p := &statusRecorder{}
			rep := forge.NewReporter(p, forge.ReporterOptions{Log: slog.New(slog.DiscardHandler)})
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { rep.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			r := New(Environment{Name: "staging", Health: health.Options{Soak: time.Minute}}, nil, nil, nil, nil, store, slog.New(slog.DiscardHandler))
			r.notify = notifier{reporter: rep, repo: forge.Repo{Owner: "acme", Name: "app"}, hasRepo: true}
			r.redeliver(t.Context())
			fctx, fcancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer fcancel()
			if err := rep.Flush(fctx); err != nil {
				t.Fatal(err)
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			if !slices.Equal(p.got, tc.want) {
				t.Fatalf("posted %q, want %q", p.got, tc.want)
			}
		})
	}
}
