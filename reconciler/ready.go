package reconciler

import (
	"context"
	"errors"
	"fmt"
)

// Ready reports whether the manager can do its work now: it is wired (so
// every clone and client exists), the watches on the state ConfigMaps have
// synced (so reconcile requests reach the loops), and the API server of
// every environment's cluster answers a read of the environment's state.
// It is what /readyz answers, so a replica that cannot reach its API
// server takes no webhooks.
func (m *Manager) Ready(ctx context.Context) error {
	var errs []error
	for _, w := range m.watches {
		if err := w.synced(); err != nil {
			errs = append(errs, err)
		}
	}
	for name, r := range m.envs {
		if _, err := r.store.Load(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("environment %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
