package health

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Options tunes a health check.
type Options struct {
	// Timeout is the deadline for every object to reach Current.
	Timeout time.Duration
	// Interval is the time between two polls.
	Interval time.Duration
	// Soak is how long the objects are watched once all are Current. An
	// object leaving Current, or a container of a current-revision pod
	// restarting, during the soak fails the check. Zero means no soak.
	Soak time.Duration
	// Checks judge the objects of their kinds with CEL expressions instead
	// of kstatus; at most one check per kind.
	Checks []*Check
	// HTTP are requests that must answer as expected once every object is
	// Current, and at every poll of the soak: a check is Healthy only when
	// all of them do. A failing one keeps the check waiting, until the
	// timeout; during the soak it fails the check.
	HTTP []HTTPCheck
}

// DefaultOptions returns the options of a check without configuration:
// 5m timeout, 2s interval, no soak.
func DefaultOptions() Options {
	return Options{
		Timeout:  5 * time.Minute,
		Interval: 2 * time.Second,
	}
}

// validate refuses options that would make a check meaningless, rather than
// quietly replacing them with defaults.
func (o Options) validate() error {
	var errs []error
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout %s: must be positive", o.Timeout))
	}
	if o.Interval <= 0 {
		errs = append(errs, fmt.Errorf("interval %s: must be positive", o.Interval))
	}
	if o.Soak < 0 {
		errs = append(errs, fmt.Errorf("soak %s: must not be negative", o.Soak))
	}
	checked := map[schema.GroupKind]bool{}
	for i, c := range o.Checks {
		switch {
		case c == nil:
			errs = append(errs, fmt.Errorf("checks[%d]: nil; compile it with CompileCheck", i))
		case checked[c.spec.GroupKind]:
			errs = append(errs, fmt.Errorf("checks[%d]: a second check of %s", i, c.spec.GroupKind))
		default:
			checked[c.spec.GroupKind] = true
		}
	}
	for _, h := range o.HTTP {
		if err := h.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("health options: %w", err)
	}
	return nil
}
