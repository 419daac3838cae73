package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
)

// hookProvider is how one forge signs, names and shapes its deliveries.
type hookProvider struct {
	name           string
	eventHeader    string
	deliveryHeader string
	verify         func(h http.Header, body, secret []byte) bool
	parse          func(event string, body []byte) (hookEvent, error)
}

var hookProviders = map[string]hookProvider{
	"github": {name: "github", eventHeader: "X-GitHub-Event", deliveryHeader: "X-GitHub-Delivery",
		verify: verifyGitHub, parse: parseGitHub},
	"gitea": {name: "gitea", eventHeader: "X-Gitea-Event", deliveryHeader: "X-Gitea-Delivery",
		verify: verifyGitea, parse: parseGitea},
	"gitlab": {name: "gitlab", eventHeader: "X-Gitlab-Event", deliveryHeader: "X-Gitlab-Event-UUID",
		verify: verifyGitLab, parse: parseGitLab},
}

// verifyGitHub checks X-Hub-Signature-256: "sha256=" and the hex
// HMAC-SHA256 of the body.
func verifyGitHub(h http.Header, body, secret []byte) bool {
	sig, ok := strings.CutPrefix(h.Get("X-Hub-Signature-256"), "sha256=")
	return ok && hmacEqual(sig, body, secret)
}

// verifyGitea checks X-Gitea-Signature: the hex HMAC-SHA256 of the body.
func verifyGitea(h http.Header, body, secret []byte) bool {
	return hmacEqual(h.Get("X-Gitea-Signature"), body, secret)
}

// verifyGitLab checks X-Gitlab-Token, which GitLab sends as it is. Both
// sides are hashed first so the comparison takes the same time whatever
// the token's length.
func verifyGitLab(h http.Header, _, secret []byte) bool {
	token := h.Get("X-Gitlab-Token")
	if token == "" {
		return false
	}
	got, want := sha256.Sum256([]byte(token)), sha256.Sum256(secret)
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

func hmacEqual(hexSig string, body, secret []byte) bool {
	sig, err := hex.DecodeString(strings.TrimSpace(hexSig))
	if err != nil || len(sig) != sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(sig, m.Sum(nil))
}

// hookResult is the JSON answer to a delivery.
type hookResult struct {
	Triggered   []string `json:"triggered,omitempty"`
	PullRequest int      `json:"pullRequest,omitempty"`
	Ignored     string   `json:"ignored,omitempty"`
	Error       string   `json:"error,omitempty"`
}

// hook receives POST /hooks/{provider}. In order: the body is read up to
// the size limit (413), the signature verified (401), a replayed delivery
// ignored (202); then a push to a watched branch triggers its environments
// (503 if a request could not be recorded, so the forge shows the delivery
// failed) and a pull request event calls OnPullRequest. Nothing happens before the
// signature is verified (TestHookForgedTriggersNothing).
func (s *server) hook(w http.ResponseWriter, r *http.Request) {
	p, ok := hookProviders[r.PathValue("provider")]
	if !ok {
		writeJSON(w, http.StatusNotFound, hookResult{Error: "unknown provider; use github, gitlab or gitea"})
		return
	}
	if len(s.opts.WebhookSecret) == 0 {
		writeJSON(w, http.StatusNotFound, hookResult{Error: "webhooks are off: ferry has no webhook secret"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, hookResult{Error: "body too large"})
			return
		}
		writeJSON(w, http.StatusBadRequest, hookResult{Error: "cannot read body"})
		return
	}
	log := s.log.With("provider", p.name, "delivery", r.Header.Get(p.deliveryHeader), "event", r.Header.Get(p.eventHeader))
	if !p.verify(r.Header, body, s.opts.WebhookSecret) {
		log.Warn("webhook: bad or missing signature", "remote", r.RemoteAddr)
		writeJSON(w, http.StatusUnauthorized, hookResult{Error: "bad or missing signature"})
		return
	}
	if id := r.Header.Get(p.deliveryHeader); id != "" && !s.deliveries.Add(p.name+"\x00"+id, struct{}{}) {
		log.Info("webhook: replayed delivery ignored")
		writeJSON(w, http.StatusAccepted, hookResult{Ignored: "replayed delivery"})
		return
	}
	ev, err := p.parse(r.Header.Get(p.eventHeader), body)
	if err != nil {
		log.Warn("webhook: malformed payload", "error", err)
		writeJSON(w, http.StatusBadRequest, hookResult{Error: err.Error()})
		return
	}
	switch ev.kind {
	case "push":
		var triggered, failed []string
		for _, env := range s.src.Watches(ev.repo, ev.branch) {
			if s.src.Trigger(r.Context(), env) {
				triggered = append(triggered, env)
			} else {
				failed = append(failed, env)
			}
		}
		log.Info("webhook: push", "repository", ev.repo.String(), "branch", ev.branch, "triggered", triggered)
		if len(failed) > 0 {
			// The forge shows the delivery failed, and its redelivery
			// (same delivery ID) is taken, not ignored as a replay.
			if id := r.Header.Get(p.deliveryHeader); id != "" {
				s.deliveries.Remove(p.name + "\x00" + id)
			}
			log.Error("webhook: push: could not request a reconcile", "environments", failed)
			writeJSON(w, http.StatusServiceUnavailable, hookResult{Triggered: triggered,
				Error: "could not request a reconcile of " + strings.Join(failed, ", ") + " (see ferry's log); redeliver, or the branch's next poll takes the push"})
			return
		}
		if len(triggered) == 0 {
			writeJSON(w, http.StatusAccepted, hookResult{Ignored: "no environment follows " + ev.repo.String() + " " + ev.branch})
			return
		}
		writeJSON(w, http.StatusOK, hookResult{Triggered: triggered})
	case "pull_request":
		log.Info("webhook: pull request", "repository", ev.repo.String(), "pullRequest", ev.pr, "head", ev.head, "base", ev.base)
		if s.opts.OnPullRequest == nil {
			writeJSON(w, http.StatusAccepted, hookResult{Ignored: "pull request plans are off"})
			return
		}
		s.opts.OnPullRequest(ev.repo, ev.pr, ev.head, ev.base)
		writeJSON(w, http.StatusOK, hookResult{PullRequest: ev.pr})
	default:
		log.Debug("webhook: ignored", "why", ev.ignored)
		writeJSON(w, http.StatusAccepted, hookResult{Ignored: ev.ignored})
	}
}
