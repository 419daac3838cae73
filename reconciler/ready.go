package reconciler

import (
	"context"
	"errors"
	"fmt"
)

// Ready reports whether the manager can do its work now: it is wired (so
// every clone and client exists), and the API server of every
// environment's cluster answers a read of the environment's state. It is
// what /readyz answers, so a replica that cannot reach its API server
// takes no webhooks.
func (m *Manager) Ready(ctx context.Context) error {
	var errs []error
	for name, r := range m.envs {
		if _, err := r.store.Load(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("environment %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
