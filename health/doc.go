// Package health decides whether the objects ferry applied are healthy.
//
// A check polls every object, computes its kstatus status and, for
// workloads, looks at the pods of the revision being rolled out. It ends in
// one of three verdicts:
//
//   - Healthy: every object reached Current and stayed there, without a
//     container restart, for the soak period;
//   - Failed: an object is kstatus Failed, a Deployment exceeded its progress
//     deadline, a Job failed, or a pod of the current revision shows a state
//     it will not recover from on its own (CrashLoopBackOff, ImagePullBackOff,
//     ErrImagePull, CreateContainerConfigError, InvalidImageName, phase
//     Failed, a container terminated with a non-zero exit code). These fail
//     at once, not at the timeout;
//   - TimedOut: some object did not reach Current within the timeout.
//
// Pods of older revisions never fail a check: while a fix rolls out, the
// crashing pods of the broken revision are still there.
//
// Evaluate is the pure, single-pass judgement of one object; Checker.Check
// is the polling loop around it.
package health
