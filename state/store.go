package state

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/text"
)

// Store reads and writes environment state ConfigMaps with optimistic
// concurrency: an update that lost a race is retried on the fresh copy.
type Store struct {
	client    client.Client
	namespace string

	mu sync.Mutex
	// last is the copy of each environment's ConfigMap this store last
	// read or wrote; latest, when set, is the resourceVersion a watch last
	// saw of it (Follow).
	last   map[string]*corev1.ConfigMap
	latest func(env string) (resourceVersion string, ok bool)
}

// Follow lets the store answer from the copy it last read or wrote while
// latest, the resourceVersion a watch of the state ConfigMaps last saw,
// is that copy's: a pass that changes nothing then reads no state from the
// API server. A write from a stale copy fails on its resourceVersion and
// is retried on a fresh one, as without Follow.
func (s *Store) Follow(latest func(env string) (resourceVersion string, ok bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latest = latest
}

// cached returns a copy of env's ConfigMap as last read or written, if
// the watch shows that nobody changed it since.
func (s *Store) cached(env string) *corev1.ConfigMap {
	s.mu.Lock()
	defer s.mu.Unlock()
	cm, ok := s.last[env]
	if !ok || s.latest == nil {
		return nil
	}
	if rv, ok := s.latest(env); !ok || rv != cm.ResourceVersion {
		return nil
	}
	return cm.DeepCopy()
}

func (s *Store) keep(env string, cm *corev1.ConfigMap) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[string]*corev1.ConfigMap{}
	}
	s.last[env] = cm.DeepCopy()
}

// DataKey is the key of a state ConfigMap's data that holds the State as JSON.
const DataKey = "state.json"

const stateKey = DataKey

// EnvironmentLabel is on every state ConfigMap and names its environment,
// so watches narrow to the state ConfigMaps.
const EnvironmentLabel = "ferry.dev/state-of"

// NewStore keeps state in namespace through c.
func NewStore(c client.Client, namespace string) *Store {
	return &Store{client: c, namespace: namespace}
}

// ConfigMapName is the name of env's state ConfigMap.
func ConfigMapName(env string) string { return "ferry-state-" + env }

// Load returns env's state; an environment never reconciled has an empty state.
func (s *Store) Load(ctx context.Context, env string) (*State, error) {
	st, _, err := s.get(ctx, env, false)
	return st, err
}

// get reads env's state: from the copy the store holds, unless fresh or
// the copy is out of date, else from the API server.
func (s *Store) get(ctx context.Context, env string, fresh bool) (*State, *corev1.ConfigMap, error) {
	cm := (*corev1.ConfigMap)(nil)
	if !fresh {
		cm = s.cached(env)
	}
	if cm == nil {
		cm = &corev1.ConfigMap{}
		err := s.client.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: ConfigMapName(env)}, cm)
		if apierrors.IsNotFound(err) {
			return &State{}, nil, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("state of %s: read ConfigMap %s/%s: %w", env, s.namespace, ConfigMapName(env), err)
		}
		s.keep(env, cm)
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
	attempt := 0
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		attempt++
		st, cm, err := s.get(ctx, env, attempt > 1)
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
		if cm != nil && cm.Data[stateKey] == string(data) {
			out = st // nothing changed: no write (a converged pass costs reads only)
			return nil
		}
		if cm == nil {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
				Name: ConfigMapName(env), Namespace: s.namespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "ferry", EnvironmentLabel: env},
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
		s.keep(env, cm)
		out = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state of %s: write ConfigMap %s/%s: %w", env, s.namespace, ConfigMapName(env), err)
	}
	return out, nil
}

// Event records a Kubernetes Event on env's state ConfigMap, where
// `kubectl describe configmap ferry-state-<env>` shows it. An Event is
// news, not state: when the ConfigMap is not there yet or the Event cannot
// be written, it is dropped and the error returned for the caller's log.
func (s *Store) Event(ctx context.Context, env string, warning bool, reason, message string) error {
	cm := &corev1.ConfigMap{}
	if err := s.client.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: ConfigMapName(env)}, cm); err != nil {
		return fmt.Errorf("event %s on %s: %w", reason, ConfigMapName(env), err)
	}
	typ := corev1.EventTypeNormal
	if warning {
		typ = corev1.EventTypeWarning
	}
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: cm.Name + ".", Namespace: s.namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "ConfigMap", APIVersion: "v1", Namespace: s.namespace, Name: cm.Name,
			UID: cm.UID, ResourceVersion: cm.ResourceVersion},
		Reason: reason, Message: text.OneLine(message, 1000), Type: typ,
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		Source: corev1.EventSource{Component: "ferry"},
	}
	if err := s.client.Create(ctx, ev); err != nil {
		return fmt.Errorf("event %s on %s: %w", reason, cm.Name, err)
	}
	return nil
}

// RequestedAt is the annotation on a state ConfigMap by which a command on
// any machine asks the ferry replica running the environment to poll and
// reconcile now. Its value is an RFC 3339 time in UTC with nanoseconds,
// fixed width, so later requests sort after earlier ones.
const RequestedAt = "ferry.dev/requested-at"

// Request asks for a reconcile of env now: it writes the RequestedAt
// annotation (creating the ConfigMap if needed) and returns its value.
// The reconciler records the value in State.Handled once a pass finished.
func (s *Store) Request(ctx context.Context, env string, now time.Time) (string, error) {
	// Fixed width in UTC, so that later requests sort after earlier ones.
	at := now.UTC().Format("2006-01-02T15:04:05.000000000Z")
	if _, err := s.Update(ctx, env, func(*State) error { return nil }); err != nil {
		return "", err // makes sure the ConfigMap exists
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm := &corev1.ConfigMap{}
		if err := s.client.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: ConfigMapName(env)}, cm); err != nil {
			return err
		}
		if cm.Annotations == nil {
			cm.Annotations = map[string]string{}
		}
		cm.Annotations[RequestedAt] = at
		return s.client.Update(ctx, cm)
	})
	if err != nil {
		return "", fmt.Errorf("request a reconcile of %s: annotate ConfigMap %s/%s: %w", env, s.namespace, ConfigMapName(env), err)
	}
	return at, nil
}

// Requested returns the RequestedAt annotation of env's state ConfigMap,
// empty if none.
func (s *Store) Requested(ctx context.Context, env string) (string, error) {
	_, cm, err := s.get(ctx, env, false)
	if err != nil || cm == nil {
		return "", err
	}
	return cm.Annotations[RequestedAt], nil
}
