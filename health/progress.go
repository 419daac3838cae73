package health

import (
	"fmt"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"ferry.dev/ferry/internal/faults"
	"ferry.dev/ferry/internal/text"
)

// progress is the state of one check between polls: it turns each poll's
// observations into a verdict, or into nothing yet.
type progress struct {
	opts  Options
	start time.Time
	// soakStart is when all objects were first seen Current; zero before.
	soakStart time.Time
	// baseline holds the restart count of every current-revision container
	// at soakStart.
	baseline map[containerKey]int32
	// last holds the statuses of the latest poll.
	last []ObjectStatus
	// lastErr is the latest read error of any poll.
	lastErr error
	// http holds the outcome of the HTTP checks at the latest poll; nil
	// when that poll did not run them.
	http []HTTPStatus
	// judged is when the latest poll was judged (start before the first).
	judged time.Time
	// excused is the time during which the API server could not be read
	// (a transient read error): it does not count against the timeout.
	excused time.Duration
}

// containerKey names one container of one pod, across polls.
type containerKey struct {
	pod       types.UID
	container string
}

func newProgress(opts Options, start time.Time) *progress {
	return &progress{opts: opts, start: start, judged: start}
}

// deadline is when the objects must be Current: the timeout after the
// start, plus the time the API server could not be read.
func (p *progress) deadline() time.Time { return p.start.Add(p.opts.Timeout + p.excused) }

// excuse adds the time since the previous poll to the excused time when
// this poll could not read an object for a reason that passes (the API
// server unavailable, a reset, a timeout). Errors that will not pass (a
// forbidden read, an unknown kind) still count (TestCheckExcusesOutages).
func (p *progress) excuse(now time.Time, obs []observation) {
	for _, o := range obs {
		if o.err != nil && faults.IsTransient(o.err) {
			p.excused += now.Sub(p.judged)
			break
		}
	}
	p.judged = now
}

func (p *progress) soaking() bool { return !p.soakStart.IsZero() }

func (p *progress) soakEnd() time.Time { return p.soakStart.Add(p.opts.Soak) }

// wake is the next moment a poll must happen even between ticks: the
// deadline to reach Current, the end of the soak, or the deadline to confirm
// the soak when the poll at its end could not read every object.
func (p *progress) wake() time.Time {
	switch {
	case !p.soaking():
		return p.deadline()
	case time.Now().Before(p.soakEnd()):
		return p.soakEnd()
	default:
		return p.soakEnd().Add(p.opts.Timeout + p.excused)
	}
}

// judge takes the observations of one poll made at now, and returns the
// verdict, or nil to poll again. probe runs the HTTP checks; judge calls it
// only when they count: when every object is Current, and at every poll of
// the soak.
func (p *progress) judge(now time.Time, obs []observation, probe func() []HTTPStatus) *Verdict {
	p.last, p.http = make([]ObjectStatus, len(obs)), nil
	p.excuse(now, obs)
	var failed []ObjectStatus
	clean, current := true, true
	for i, o := range obs {
		p.last[i] = o.status
		if o.err != nil {
			p.lastErr, clean = o.err, false
		}
		switch o.status.Status {
		case status.FailedStatus:
			failed = append(failed, o.status)
		case status.CurrentStatus:
		default:
			current = false
		}
	}
	if len(failed) > 0 {
		return p.verdict(now, Failed, failedReason(failed))
	}
	if p.soaking() {
		return p.judgeSoak(now, obs, clean, probe)
	}
	if current && clean && p.answered(probe) {
		p.soakStart, p.baseline = now, restarts(obs)
		if p.opts.Soak == 0 {
			return p.verdict(now, Healthy, fmt.Sprintf("%d objects Current", len(obs))+p.httpSummary())
		}
		return nil
	}
	if !now.Before(p.deadline()) {
		return p.verdict(now, TimedOut, timeoutReason(now.Sub(p.start), p.last, p.http, p.lastErr))
	}
	return nil
}

// answered runs the HTTP checks, if there are any, and reports whether all
// of them answered as expected.
func (p *progress) answered(probe func() []HTTPStatus) bool {
	if len(p.opts.HTTP) == 0 {
		return true
	}
	p.http = probe()
	return firstFailing(p.http) < 0
}

// httpSummary is ", n HTTP checks passed" when there are any.
func (p *progress) httpSummary() string {
	if len(p.opts.HTTP) == 0 {
		return ""
	}
	return fmt.Sprintf(", %d HTTP checks passed", len(p.opts.HTTP))
}

// firstFailing is the index of the first HTTP check that failed, or -1.
func firstFailing(http []HTTPStatus) int {
	for i, h := range http {
		if !h.OK {
			return i
		}
	}
	return -1
}

// judgeSoak fails an object that left Current or whose current-revision
// containers restarted since the soak began, and an HTTP check that stopped
// answering as expected. An object that could not be read proves nothing
// either way: the soak ends at the first poll after opts.Soak that read
// every object, and times out when none did within opts.Timeout.
func (p *progress) judgeSoak(now time.Time, obs []observation, clean bool, probe func() []HTTPStatus) *Verdict {
	for _, o := range obs {
		if o.err != nil {
			continue
		}
		if o.status.Status != status.CurrentStatus {
			return p.verdict(now, Failed, text.OneLine(fmt.Sprintf("%s: left Current during soak: %s: %s",
				describe(o.status.ID), o.status.Status, o.status.Message), maxReason))
		}
		if msg := p.restarted(o.pods); msg != "" {
			return p.verdict(now, Failed, describe(o.status.ID)+": "+msg)
		}
	}
	if !p.answered(probe) {
		return p.verdict(now, Failed, text.OneLine("during soak: "+p.http[firstFailing(p.http)].describe(), maxReason))
	}
	if now.Before(p.soakEnd()) {
		return nil
	}
	if clean {
		return p.verdict(now, Healthy, fmt.Sprintf("%d objects Current", len(obs))+p.httpSummary()+fmt.Sprintf(", soaked %s", p.opts.Soak))
	}
	if !now.Before(p.soakEnd().Add(p.opts.Timeout + p.excused)) {
		return p.verdict(now, TimedOut, text.OneLine(fmt.Sprintf("soak of %s not confirmed %s after it ended; last error: %s",
			p.opts.Soak, p.opts.Timeout, p.lastErr), maxReason))
	}
	return nil
}

// restarted says which container of pods restarted since the soak began,
// or "". A pod first seen during the soak counts from zero restarts.
func (p *progress) restarted(pods []corev1.Pod) string {
	for _, pod := range pods {
		for _, cs := range containerStatuses(&pod) {
			before := p.baseline[containerKey{pod.UID, cs.Name}]
			if cs.RestartCount > before {
				return fmt.Sprintf("pod %s container %s restarted during soak (restarts %d → %d)",
					pod.Name, cs.Name, before, cs.RestartCount)
			}
		}
	}
	return ""
}

// restarts records the restart count of every container of every pod
// observed.
func restarts(obs []observation) map[containerKey]int32 {
	counts := map[containerKey]int32{}
	for _, o := range obs {
		for _, pod := range o.pods {
			for _, cs := range containerStatuses(&pod) {
				counts[containerKey{pod.UID, cs.Name}] = cs.RestartCount
			}
		}
	}
	return counts
}

// containerStatuses lists the statuses of a pod's init and app containers.
func containerStatuses(pod *corev1.Pod) []corev1.ContainerStatus {
	return append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
}

// verdict closes the check with outcome and reason.
func (p *progress) verdict(now time.Time, outcome Outcome, reason string) *Verdict {
	return &Verdict{Outcome: outcome, Reason: reason, Objects: p.last, HTTP: p.http, Duration: now.Sub(p.start)}
}
