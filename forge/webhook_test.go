package forge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWebhookProvider(t *testing.T) {
	secret := []byte("webhook-secret")
	var got []WebhookEvent
	code := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, secret)
		m.Write(body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
			r.Header.Get(SignatureHeader) != "sha256="+hex.EncodeToString(m.Sum(nil)) || r.Header.Get(DeliveryHeader) == "" {
			t.Errorf("request %s %v not a signed JSON POST", r.Method, r.Header)
		}
		var ev WebhookEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("body %s: %v", body, err)
		}
		if r.Header.Get(EventHeader) != ev.Event {
			t.Errorf("%s %q, event %q", EventHeader, r.Header.Get(EventHeader), ev.Event)
		}
		got = append(got, ev)
		w.WriteHeader(code)
	}))
	defer srv.Close()
	p := NewWebhook(srv.URL, secret)
	ctx := testContext(t)
	s := Status{Environment: "staging", Commit: commitA, State: Success, Description: "promoted to production"}
	if err := p.SetStatus(ctx, Repo{"acme", "app"}, s); err != nil {
		t.Fatal(err)
	}
	if err := p.Comment(ctx, Repo{"acme", "app"}, 4, "ferry/plan/staging", "plan"); err != nil {
		t.Fatal(err)
	}
	if heads, err := p.PullRequestHeads(ctx, Repo{"acme", "app"}, commitA); err != nil || heads != nil {
		t.Fatalf("heads %v, %v; want none", heads, err)
	}
	if len(got) != 2 || got[0].Event != "status" || got[0].Status == nil || got[0].Status.Context != "ferry/staging" ||
		got[0].Repository != "acme/app" || got[1].Event != "comment" || got[1].PullRequest != 4 || got[1].Body != "plan" {
		t.Fatalf("events %+v", got)
	}

	code = http.StatusBadGateway
	err := p.SetStatus(ctx, Repo{"acme", "app"}, s)
	if fe := forgeErr(t, err); fe.Code != 502 || !fe.Transient() {
		t.Fatalf("502: %v", err)
	}
	if strings.Contains(err.Error(), string(secret)) {
		t.Fatalf("error shows the secret: %v", err)
	}
}
