// Package health decides whether the objects ferry applied are healthy.
//
// A check polls every object, computes its kstatus status and, for
// workloads, looks at the pods of the revision being rolled out. It ends in
// one of three verdicts:
//
//   - Healthy: every object reached Current, every HTTP check answered as
//     expected, and both stayed so, without a container restart, for the
//     soak period;
//   - Failed: an object is kstatus Failed, a Deployment exceeded its progress
//     deadline, a Job failed, or a pod of the current revision shows a state
//     it will not recover from on its own (CrashLoopBackOff, ImagePullBackOff,
//     ErrImagePull, CreateContainerConfigError, InvalidImageName, phase
//     Failed, a container terminated with a non-zero exit code). These fail
//     at once, not at the timeout. During the soak, an object leaving
//     Current, a restart or a failing HTTP check fails the check too;
//   - TimedOut: some object did not reach Current, or some HTTP check did
//     not answer as expected, within the timeout.
//
// Pods of older revisions never fail a check: while a fix rolls out, the
// crashing pods of the broken revision are still there.
//
// Three kinds of checks come from configuration, through [Options]:
//
//   - CEL checks ([CheckSpec], compiled once by [CompileCheck]) judge the
//     objects of one kind, custom resources mostly, in place of kstatus. The
//     expressions see the object's metadata, spec and status, and the whole
//     object as object;
//   - HTTP checks ([HTTPCheck]) are requests that must answer with a status
//     and, optionally, a body matching a regular expression;
//   - verification Jobs: a Job annotated ferry.dev/verify: "true"
//     ([VerifyAnnotation]) must complete; its failure fails the check at
//     once.
//
// Evaluate is the pure, single-pass judgement of one object; Checker.Check
// is the polling loop around it.
package health
