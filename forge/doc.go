// Package forge is ferry's way out to the forge (GitHub, GitLab, Gitea or
// a generic JSON webhook): commit statuses, plan comments on pull
// requests, and promotion pull requests.
//
// One input type travels: a [Status] says what ferry says about one commit
// in one environment. The reconciler hands it to a [Reporter], which posts
// it through a [Provider] without ever blocking the reconcile loop: on the
// environment's commit and on the head commits of the pull requests that
// brought it in, each identical status once, forge errors retried with
// jittered backoff and rate limits honoured. [Propose] opens a promotion
// pull request and closes the ones it supersedes.
//
// Tokens stay inside the providers; errors never carry them.
package forge
