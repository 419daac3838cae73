package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/apply"
)

// Phase is where an environment's reconcile stands.
type Phase string

// Phases, in the order a reconcile passes them, then its end states.
const (
	PhaseFetching  Phase = "Fetching"
	PhaseRendering Phase = "Rendering"
	PhaseApplying  Phase = "Applying"
	PhasePruning   Phase = "Pruning"
	PhaseVerifying Phase = "Verifying"
	PhaseHealthy   Phase = "Healthy"
	PhaseFailed    Phase = "Failed"
	PhaseStalled   Phase = "Stalled"
)

// Outcome is the verdict on one revision.
type Outcome string

// Outcomes of a revision.
const (
	OutcomeHealthy  Outcome = "Healthy"
	OutcomeFailed   Outcome = "Failed"   // unhealthy after apply
	OutcomeTimedOut Outcome = "TimedOut" // not healthy within the health timeout
	OutcomeError    Outcome = "Error"    // render or apply failed; nothing or part applied
	// OutcomeQuarantined: the revision renders to a digest ferry reverted
	// before; it is not applied until a person releases it.
	OutcomeQuarantined Outcome = "Quarantined"
)

// Failed reports whether the outcome is a failure that onFailure acts on.
func (o Outcome) Failed() bool {
	return o == OutcomeFailed || o == OutcomeTimedOut || o == OutcomeError
}

// Quarantined is a rendering digest that failed and was reverted; a later
// commit rendering to it is held until a person releases it.
type Quarantined struct {
	Digest string    `json:"digest"`
	Commit string    `json:"commit"`
	Reason string    `json:"reason,omitempty"`
	Time   time.Time `json:"time"`
}

// HistoryLimit is how many verdicts the state keeps.
const HistoryLimit = 20

// Revision is a commit and the digest of its rendering.
type Revision struct {
	Commit string    `json:"commit"`
	Digest string    `json:"digest,omitempty"`
	Time   time.Time `json:"time"`
}

// Verdict is the decision on one revision, kept in the history.
type Verdict struct {
	Commit   string    `json:"commit"`
	Digest   string    `json:"digest,omitempty"`
	Outcome  Outcome   `json:"outcome"`
	Reason   string    `json:"reason,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Action is what ferry did after the verdict, e.g. "promoted to production".
	Action string `json:"action,omitempty"`
}

// State is everything ferry remembers about an environment. It lives in
// the ConfigMap ferry-state-<env> in ferry's namespace, so a restarted
// ferry resumes where it stopped.
type State struct {
	Phase   Phase  `json:"phase,omitempty"`
	Message string `json:"message,omitempty"`
	// SourceError is the last error polling the branch; empty once a poll succeeds.
	SourceError string `json:"sourceError,omitempty"`
	// Target is the revision being reconciled now.
	Target *Revision `json:"target,omitempty"`
	// LastApplied is the last revision applied without error.
	LastApplied *Revision `json:"lastApplied,omitempty"`
	// LastHealthy is the last known good revision.
	LastHealthy *Revision `json:"lastHealthy,omitempty"`
	// Inventory is every object applied for the environment.
	Inventory apply.Inventory `json:"inventory,omitempty"`
	// History holds the latest verdicts, newest first.
	History []Verdict `json:"history,omitempty"`
	// Quarantine holds the digests of reverted renderings.
	Quarantine []Quarantined `json:"quarantine,omitempty"`
}

// Quarantined returns the quarantine entry of digest, if any.
func (s *State) Quarantined(digest string) (Quarantined, bool) {
	for _, q := range s.Quarantine {
		if digest != "" && q.Digest == digest {
			return q, true
		}
	}
	return Quarantined{}, false
}

// Release removes the quarantine entries matching a digest or a commit SHA
// (or its prefix), and the Quarantined verdicts they caused, so the loop
// evaluates those commits again. It returns the released entries.
func (s *State) Release(digestOrSHA string) []Quarantined {
	var kept, released []Quarantined
	for _, q := range s.Quarantine {
		if q.Digest == digestOrSHA || (len(digestOrSHA) >= 7 && strings.HasPrefix(q.Commit, digestOrSHA)) {
			released = append(released, q)
		} else {
			kept = append(kept, q)
		}
	}
	s.Quarantine = kept
	var history []Verdict
	for _, v := range s.History {
		held := false
		for _, q := range released {
			if v.Outcome == OutcomeQuarantined && v.Digest == q.Digest {
				held = true
			}
		}
		if !held {
			history = append(history, v)
		}
	}
	s.History = history
	return released
}

// SetAction records what ferry did after the verdict on commit.
func (s *State) SetAction(commit, action string) {
	for i := range s.History {
		if s.History[i].Commit == commit {
			s.History[i].Action = action
			return
		}
	}
}

// Record puts v at the head of the history, keeping HistoryLimit entries.
func (s *State) Record(v Verdict) {
	s.History = append([]Verdict{v}, s.History...)
	if len(s.History) > HistoryLimit {
		s.History = s.History[:HistoryLimit]
	}
}

// VerdictFor returns the newest verdict on commit, if any.
func (s *State) VerdictFor(commit string) (Verdict, bool) {
	for _, v := range s.History {
		if v.Commit == commit {
			return v, true
		}
	}
	return Verdict{}, false
}

// Store reads and writes environment state ConfigMaps with optimistic
// concurrency: an update that lost a race is retried on the fresh copy.
type Store struct {
	client    client.Client
	namespace string
}

const stateKey = "state.json"

// NewStore keeps state in namespace through c.
func NewStore(c client.Client, namespace string) *Store {
	return &Store{client: c, namespace: namespace}
}

// ConfigMapName is the name of env's state ConfigMap.
func ConfigMapName(env string) string { return "ferry-state-" + env }

// Load returns env's state; an environment never reconciled has an empty state.
func (s *Store) Load(ctx context.Context, env string) (*State, error) {
	st, _, err := s.get(ctx, env)
	return st, err
}

func (s *Store) get(ctx context.Context, env string) (*State, *corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	err := s.client.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: ConfigMapName(env)}, cm)
	if apierrors.IsNotFound(err) {
		return &State{}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("state of %s: read ConfigMap %s/%s: %w", env, s.namespace, ConfigMapName(env), err)
	}
	st := &State{}
	if data := cm.Data[stateKey]; data != "" {
		if err := json.Unmarshal([]byte(data), st); err != nil {
			return nil, nil, fmt.Errorf("state of %s: ConfigMap %s/%s holds invalid %s: %w", env, s.namespace, cm.Name, stateKey, err)
		}
	}
	return st, cm, nil
}

// Update applies mutate to env's current state and writes it back, retrying
// on conflicts with a fresh copy. It returns the state as written.
func (s *Store) Update(ctx context.Context, env string, mutate func(*State) error) (*State, error) {
	var out *State
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		st, cm, err := s.get(ctx, env)
		if err != nil {
			return err
		}
		if err := mutate(st); err != nil {
			return err
		}
		data, err := json.Marshal(st)
		if err != nil {
			return err
		}
		if cm == nil {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
				Name: ConfigMapName(env), Namespace: s.namespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "ferry", "ferry.dev/state-of": env},
			}}
			cm.Data = map[string]string{stateKey: string(data)}
			err = s.client.Create(ctx, cm)
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(corev1.Resource("configmaps"), cm.Name, err)
			}
		} else {
			cm.Data = map[string]string{stateKey: string(data)}
			err = s.client.Update(ctx, cm)
		}
		if err != nil {
			return err
		}
		out = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state of %s: write ConfigMap %s/%s: %w", env, s.namespace, ConfigMapName(env), err)
	}
	return out, nil
}

// timeNow is the clock of one-shot commands.
var timeNow = time.Now
