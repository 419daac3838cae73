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

// TestRedeliver: a restarted ferry posts the final status of each
// environment's newest verdict again, so one that a forge outage held in
// the old process's queue is not lost.
func TestRedeliver(t *testing.T) {
	const a, b = "aaaaaaa000000000000000000000000000000000", "bbbbbbb000000000000000000000000000000000"
	for _, tc := range []struct {
		name    string
		history []state.Verdict
		want    []string
	}{
		{"nothing yet", nil, nil},
		{"promoted", []state.Verdict{{Commit: a, Outcome: state.OutcomeHealthy, Action: state.Promoted("production", "")}},
			[]string{"aaaaaaa success promoted to production"}},
		{"healthy, nowhere to go", []state.Verdict{{Commit: a, Outcome: state.OutcomeHealthy, Action: state.None()}},
			[]string{"aaaaaaa success healthy at aaaaaaa"}},
		{"reverted, newest only", []state.Verdict{
			{Commit: b, Outcome: state.OutcomeFailed, Reason: "web: CrashLoopBackOff", Action: state.Reverted("ccccccc")},
			{Commit: a, Outcome: state.OutcomeHealthy, Action: state.None()},
		}, []string{"bbbbbbb failure reverted by ccccccc"}},
		{"failed, undecided", []state.Verdict{{Commit: b, Outcome: state.OutcomeTimedOut, Reason: "1 of 3 not Current"}},
			[]string{"bbbbbbb failure 1 of 3 not Current"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).Build()
			store := state.NewStore(c, "ferry")
			if len(tc.history) > 0 {
				if _, err := store.Update(t.Context(), "staging", func(st *state.State) error { st.History = tc.history; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			p := &statusRecorder{}
			rep := forge.NewReporter(p, forge.ReporterOptions{Log: slog.New(slog.DiscardHandler)})
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { rep.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			r := New(Environment{Name: "staging"}, nil, nil, nil, nil, store, slog.New(slog.DiscardHandler))
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
