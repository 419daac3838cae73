// Package pipeline is the shape of ferry's environments and when trees
// may move between them: the promotion graph (who promotes to whom, who
// requires whom, who depends on whom), the gate that decides whether a
// verified tree may enter an environment, where a tree stopped and why,
// readiness of dependencies, and promotion windows. It is pure: it reads
// no cluster, no git and no clock of its own; callers pass what they know
// and the time.
package pipeline
