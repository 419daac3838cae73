// Package server is ferry's way in: the HTTP endpoints people and forges
// call. It serves badges, the status page and the JSON API from the
// environments' [state.Environment], receives webhooks (HMAC-verified,
// replays ignored) that trigger an immediate poll or a pull request plan,
// serves Prometheus metrics and the liveness and readiness probes.
//
// It reads environments through a [Source] (the reconciler implements it)
// and never shows a secret: URLs in messages lose their user information.
package server
