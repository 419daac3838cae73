// Package report shows ferry's progress where people look: commit statuses
// on the forge (GitHub, GitLab, Gitea or a generic JSON webhook), badges, a
// status page and a JSON API, Prometheus metrics, and the webhook receiver
// that turns a push into an immediate reconcile.
//
// One input type travels: a [Status] says what ferry says about one commit
// in one environment. The reconciler hands it to a [Reporter], which posts
// it through a [Provider] without ever blocking the reconcile loop: on the
// environment's commit and on the head commits of the pull requests that
// brought it in, each identical status once, forge errors retried with
// jittered backoff and rate limits honoured.
//
// The HTTP side, [NewServer], reads environments through a [Source] (the
// reconciler implements it) and never shows a secret: tokens stay inside the
// providers, and URLs in messages lose their user information.
package report
