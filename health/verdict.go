package health

import (
	"fmt"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"

	"ferry.dev/ferry/internal/text"
)

// Outcome is the conclusion of a health check.
type Outcome string

const (
	// Healthy means every object reached Current and stayed there for the
	// soak period.
	Healthy Outcome = "Healthy"
	// Failed means an object failed, or regressed during the soak.
	Failed Outcome = "Failed"
	// TimedOut means some object had not reached Current when the timeout
	// passed.
	TimedOut Outcome = "TimedOut"
)

// Verdict is the result of a health check.
type Verdict struct {
	// Outcome is Healthy, Failed or TimedOut.
	Outcome Outcome
	// Reason is one line saying why: for a failure it names the object, the
	// pod, the container and the reason; for a timeout the objects that are
	// not Current yet.
	Reason string
	// Objects holds the last status seen of every object, in the order they
	// were given.
	Objects []ObjectStatus
	// HTTP holds the outcome of every HTTP check at the last poll, in the
	// order of the options; empty when that poll did not run them (some
	// object was not Current yet).
	HTTP []HTTPStatus
	// Duration is how long the check ran.
	Duration time.Duration
}

// ObjectStatus is the health of one object at one poll.
type ObjectStatus struct {
	// ID identifies the object.
	ID object.ObjMetadata
	// Status is the kstatus status: Current, InProgress, Failed, Terminating
	// or Unknown (when the object could not be read or judged).
	Status status.Status
	// Message says why the object has this status.
	Message string
}

// Limits that keep a Reason on one readable line.
const (
	maxMessage     = 160 // one object's message inside a Reason
	maxListed      = 3   // objects listed in a timeout Reason
	maxReason      = 600 // a whole Reason
	reasonSeparate = "; "
)

// describe names an object the way a person reads it:
// "Deployment staging/web", or "ClusterRole view" when cluster-scoped.
func describe(id object.ObjMetadata) string {
	if id.Namespace == "" {
		return id.GroupKind.Kind + " " + id.Name
	}
	return id.GroupKind.Kind + " " + id.Namespace + "/" + id.Name
}

// failedReason names the first failed object, and counts the others.
func failedReason(failed []ObjectStatus) string {
	reason := describe(failed[0].ID) + ": " + failed[0].Message
	if n := len(failed) - 1; n > 0 {
		reason = text.OneLine(reason, maxReason-40) + fmt.Sprintf(" (and %d more failed)", n)
	}
	return text.OneLine(reason, maxReason)
}

// timeoutReason lists the objects that are not Current with their messages,
// then the HTTP checks that failed, and the last read error if there was
// one.
func timeoutReason(after time.Duration, statuses []ObjectStatus, http []HTTPStatus, lastErr error) string {
	var pending []string
	for _, s := range statuses {
		if s.Status == status.CurrentStatus {
			continue
		}
		pending = append(pending, fmt.Sprintf("%s %s: %s", describe(s.ID), s.Status, text.OneLine(s.Message, maxMessage)))
	}
	var failing []string
	for _, h := range http {
		if !h.OK {
			failing = append(failing, h.describe())
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "timed out after %s", after.Round(time.Millisecond))
	if len(pending) > 0 {
		fmt.Fprintf(&b, ", %d of %d not Current: ", len(pending), len(statuses))
		list(&b, pending)
	}
	if len(failing) > 0 {
		fmt.Fprintf(&b, ", %d of %d HTTP checks failing: ", len(failing), len(http))
		list(&b, failing)
	}
	if lastErr == nil {
		return text.OneLine(b.String(), maxReason)
	}
	// The last error goes at the end but must survive the cut, so the
	// listing gives way to it.
	tail := "; last error: " + text.OneLine(lastErr.Error(), maxMessage)
	return text.OneLine(b.String(), maxReason-len([]rune(tail))) + tail
}

// list writes the first maxListed of items, and how many more there are.
func list(b *strings.Builder, items []string) {
	listed := items[:min(len(items), maxListed)]
	b.WriteString(strings.Join(listed, reasonSeparate))
	if more := len(items) - len(listed); more > 0 {
		fmt.Fprintf(b, "%sand %d more", reasonSeparate, more)
	}
}
