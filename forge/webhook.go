package forge

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Headers of the generic JSON webhook.
const (
	// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the body>" under
	// the shared secret.
	SignatureHeader = "X-Ferry-Signature"
	// EventHeader names the event: "status" or "comment".
	EventHeader = "X-Ferry-Event"
	// DeliveryHeader is a random ID per request, for the receiver's logs.
	DeliveryHeader = "X-Ferry-Delivery"
)

// WebhookEvent is the JSON body the generic webhook posts.
type WebhookEvent struct {
	// Event is "status" or "comment".
	Event string `json:"event"`
	// Repository is "owner/name".
	Repository string `json:"repository"`
	// Status is set for "status" events.
	Status *Status `json:"status,omitempty"`
	// PullRequest, Marker and Body are set for "comment" events.
	PullRequest int    `json:"pullRequest,omitempty"`
	Marker      string `json:"marker,omitempty"`
	Body        string `json:"body,omitempty"`
}

type webhook struct {
	url    string
	secret []byte
	http   *http.Client
}

// NewWebhook returns a Provider that posts every status and comment as a
// WebhookEvent to url, signed with secret (see SignatureHeader). It knows
// no pull requests: PullRequestHeads and OpenPullRequests find none.
func NewWebhook(url string, secret []byte) Provider {
	return &webhook{url: url, secret: secret, http: newHTTPClient()}
}

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (w *webhook) SetStatus(ctx context.Context, repo Repo, s Status) error {
	op, err := s.op(repo)
	if err != nil {
		return err
	}
	s.Context = s.StatusContext()
	return w.post(ctx, op, WebhookEvent{Event: "status", Repository: repo.String(), Status: &s})
}

func (w *webhook) PullRequestHeads(context.Context, Repo, string) ([]string, error) {
	return nil, nil
}

func (w *webhook) OpenPullRequests(context.Context, Repo, string) ([]PullRequest, error) {
	return nil, nil
}

func (w *webhook) Comment(ctx context.Context, repo Repo, pr int, marker, body string) error {
	op := fmt.Sprintf("%s#%d comment %s", repo, pr, marker)
	if _, err := markerLine(marker); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return w.post(ctx, op, WebhookEvent{Event: "comment", Repository: repo.String(), PullRequest: pr, Marker: marker, Body: body})
}

func (w *webhook) post(ctx context.Context, op string, ev WebhookEvent) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: webhook URL %s: not a URL", op, redactURL(w.url))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ferry")
	req.Header.Set(EventHeader, ev.Event)
	req.Header.Set(DeliveryHeader, deliveryID())
	req.Header.Set(SignatureHeader, Sign(w.secret, body))
	resp, err := w.http.Do(req)
	if err != nil {
		return forgeError(ctx, "webhook", op, nil, err, string(w.secret))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return forgeError(ctx, "webhook", op, resp, fmt.Errorf("%s %s", resp.Status, bytes.TrimSpace(msg)), string(w.secret))
}

func deliveryID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
