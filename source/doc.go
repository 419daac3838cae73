// Package source keeps ferry's view of git remotes: it asks a remote for a
// branch's tip (ls-remote), fetches it into a persistent bare clone only when
// the tip moved, and hands out the commit and its tree as a Revision. A
// Watcher polls one branch and delivers each new tip.
//
// One Repository is one remote URL, cloned once under a cache directory and
// shared by every environment that follows a branch of that URL. Fetches are
// incremental and serialised; reads of fetched objects are safe while a fetch
// runs.
//
// Errors name the remote URL (never a secret) and wrap one of the sentinel
// errors below when the cause is known, so callers can tell a wrong token
// from a missing branch from a network outage with errors.Is.
package source
