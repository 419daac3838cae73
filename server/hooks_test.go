package server

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"ferry.dev/ferry/forge"
)

// delivery is one webhook delivery as a forge sends it.
type delivery struct {
	provider string
	event    string
	id       string
	body     []byte
	// sign is the secret to sign with; "" sends no signature.
	sign string
}

// hookFormat is how each forge shapes its deliveries, from its
// documentation.
type hookFormat struct {
	push     func(repo, ref string) string
	pr       func(repo string, number int, action, head, base string) string
	pushName string
	prName   string
	replan   string // an action that asks for a new plan
	headers  func(d delivery) http.Header
}

func hmacHex(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func githubLikePush(repo, ref string) string {
	owner, name, _ := strings.Cut(repo, "/")
	return fmt.Sprintf(`{"ref":%q,"before":"%s","after":"%s","repository":{"id":1,"name":%q,"full_name":%q,"owner":{"login":%q},"clone_url":"https://forge.example/%s.git"},"pusher":{"name":"dev"}}`,
		ref, commitA, commitB, name, repo, owner, repo)
}

func githubLikePR(repo string, number int, action, head, base string) string {
	return fmt.Sprintf(`{"action":%q,"number":%d,"pull_request":{"number":%d,"state":"open","head":{"ref":"feature","sha":%q},"base":{"ref":%q,"sha":"%s"}},"repository":{"full_name":%q}}`,
		action, number, number, head, base, commitA, repo)
}

var hookFormats = map[string]hookFormat{
	"github": {
		push: githubLikePush, pr: githubLikePR, pushName: "push", prName: "pull_request", replan: "synchronize",
		headers: func(d delivery) http.Header {
			h := http.Header{"X-Github-Event": {d.event}, "X-Github-Delivery": {d.id}}
			if d.sign != "" {
				h.Set("X-Hub-Signature-256", "sha256="+hmacHex(d.sign, d.body))
			}
			return h
		},
	},
	"gitea": {
		push: githubLikePush, pr: githubLikePR, pushName: "push", prName: "pull_request", replan: "synchronized",
		headers: func(d delivery) http.Header {
			h := http.Header{"X-Gitea-Event": {d.event}, "X-Gitea-Delivery": {d.id}}
			if d.sign != "" {
				h.Set("X-Gitea-Signature", hmacHex(d.sign, d.body))
			}
			return h
		},
	},
	"gitlab": {
		push: func(repo, ref string) string {
			return fmt.Sprintf(`{"object_kind":"push","event_name":"push","ref":%q,"before":"%s","after":"%s","project":{"id":15,"path_with_namespace":%q,"git_http_url":"https://forge.example/%s.git"}}`,
				ref, commitA, commitB, repo, repo)
		},
		pr: func(repo string, number int, action, head, base string) string {
			return fmt.Sprintf(`{"object_kind":"merge_request","event_type":"merge_request","project":{"path_with_namespace":%q},"object_attributes":{"iid":%d,"action":%q,"state":"opened","target_branch":%q,"source_branch":"feature","last_commit":{"id":%q}}}`,
				repo, number, action, base, head)
		},
		pushName: "Push Hook", prName: "Merge Request Hook", replan: "update",
		headers: func(d delivery) http.Header {
			h := http.Header{"X-Gitlab-Event": {d.event}, "X-Gitlab-Event-Uuid": {d.id}}
			if d.sign != "" {
				h.Set("X-Gitlab-Token", d.sign)
			}
			return h
		},
	},
}

type prCall struct {
	repo       forge.Repo
	number     int
	head, base string
}

func send(t *testing.T, url string, d delivery) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/hooks/"+d.provider, bytes.NewReader(d.body))
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := hookFormats[d.provider]; ok {
		req.Header = f.headers(d)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestHooks(t *testing.T) {
	for provider, f := range hookFormats {
		t.Run(provider, func(t *testing.T) {
			n := 0
			id := func() string { n++; return fmt.Sprintf("%s-delivery-%d", provider, n) }
			push := func(repo, ref, sign string) delivery {
				return delivery{provider: provider, event: f.pushName, id: id(), body: []byte(f.push(repo, ref)), sign: sign}
			}
			for _, tc := range []struct {
				name      string
				d         delivery
				code      int
				triggered []string
			}{
				{"push to a watched branch", push("acme/app", "refs/heads/main", hookSecret), 200, []string{"staging"}},
				{"repository names ignore case", push("ACME/App", "refs/heads/production", hookSecret), 200, []string{"production"}},
				{"forged signature", push("acme/app", "refs/heads/main", "guessed"), 401, nil},
				{"missing signature", push("acme/app", "refs/heads/main", ""), 401, nil},
				{"push to an unwatched branch", push("acme/app", "refs/heads/feature", hookSecret), 202, nil},
				{"push to another repository", push("acme/other", "refs/heads/main", hookSecret), 202, nil},
				{"tag push", push("acme/app", "refs/tags/v1", hookSecret), 202, nil},
				{"unknown event", delivery{provider: provider, event: "issues", id: id(), body: []byte(`{}`), sign: hookSecret}, 202, nil},
				{"malformed payload", delivery{provider: provider, event: f.pushName, id: id(), body: []byte(`{"ref":`), sign: hookSecret}, 400, nil},
				{"oversized body", delivery{provider: provider, event: f.pushName, id: id(),
					body: []byte(f.push("acme/app", "refs/heads/main") + strings.Repeat(" ", 1<<20)), sign: hookSecret}, 413, nil},
			} {
				t.Run(tc.name, func(t *testing.T) {
					src := testSource()
					srv := testServer(t, src, nil)
					code, body := send(t, srv.URL, tc.d)
					if code != tc.code {
						t.Errorf("status %d (%s), want %d", code, body, tc.code)
					}
					if got := src.Triggered(); fmt.Sprint(got) != fmt.Sprint(tc.triggered) {
						t.Errorf("triggered %v, want %v", got, tc.triggered)
					}
				})
			}
		})
	}
}

func TestHookReplayIgnored(t *testing.T) {
	for provider, f := range hookFormats {
		src := testSource()
		srv := testServer(t, src, nil)
		d := delivery{provider: provider, event: f.pushName, id: "same-id", body: []byte(f.push("acme/app", "refs/heads/main")), sign: hookSecret}
		if code, body := send(t, srv.URL, d); code != 200 {
			t.Fatalf("%s: first delivery %d %s", provider, code, body)
		}
		if code, body := send(t, srv.URL, d); code != 202 || !strings.Contains(body, "replayed") {
			t.Fatalf("%s: replay %d %s, want 202 replayed", provider, code, body)
		}
		// A forged replay does not even reach the replay check.
		d.sign = "guessed"
		if code, _ := send(t, srv.URL, d); code != 401 {
			t.Fatalf("%s: forged replay %d, want 401", provider, code)
		}
		d.id, d.sign = "other-id", hookSecret
		send(t, srv.URL, d)
		if got := src.Triggered(); fmt.Sprint(got) != "[staging staging]" {
			t.Fatalf("%s: triggered %v, want once per delivery ID", provider, got)
		}
	}
}

// TestHookFailedTriggerIsAFailedDelivery: a push whose reconcile request
// could not be recorded answers 503, so the forge shows the delivery
// failed, and its redelivery, with the same delivery ID, is taken.
func TestHookFailedTriggerIsAFailedDelivery(t *testing.T) {
	for provider, f := range hookFormats {
		src := testSource()
		srv := testServer(t, src, nil)
		d := delivery{provider: provider, event: f.pushName, id: "retried-id", body: []byte(f.push("acme/app", "refs/heads/main")), sign: hookSecret}
		src.mu.Lock()
		src.refuse = true
		src.mu.Unlock()
		if code, body := send(t, srv.URL, d); code != 503 || !strings.Contains(body, "staging") {
			t.Fatalf("%s: delivery whose request failed: %d %s, want 503 naming staging", provider, code, body)
		}
		src.mu.Lock()
		src.refuse = false
		src.mu.Unlock()
		if code, body := send(t, srv.URL, d); code != 200 {
			t.Fatalf("%s: redelivery %d %s, want 200", provider, code, body)
		}
		if got := src.Triggered(); fmt.Sprint(got) != "[staging]" {
			t.Fatalf("%s: triggered %v, want staging once", provider, got)
		}
	}
}

func TestHookPullRequest(t *testing.T) {
	for provider, f := range hookFormats {
		var mu sync.Mutex
		var calls []prCall
		src := testSource()
		srv := testServer(t, src, func(o *ServerOptions) {
			o.OnPullRequest = func(repo forge.Repo, number int, head, base string) {
				mu.Lock()
				defer mu.Unlock()
				calls = append(calls, prCall{repo, number, head, base})
			}
		})
		pr := func(id, action string) (int, string) {
			return send(t, srv.URL, delivery{provider: provider, event: f.prName, id: id,
				body: []byte(f.pr("acme/app", 12, action, commitC, "main")), sign: hookSecret})
		}
		if code, body := pr("1", f.replan); code != 200 {
			t.Fatalf("%s: %d %s", provider, code, body)
		}
		if code, _ := pr("2", "closed"); code != 202 {
			t.Fatalf("%s: closed pull request: %d, want 202", provider, code)
		}
		if code, _ := send(t, srv.URL, delivery{provider: provider, event: f.prName, id: "3",
			body: []byte(f.pr("acme/app", 12, f.replan, commitC, "main")), sign: "forged"}); code != 401 {
			t.Fatalf("%s: forged pull request event: %d, want 401", provider, code)
		}
		want := []prCall{{forge.Repo{Owner: "acme", Name: "app"}, 12, commitC, "main"}}
		if fmt.Sprint(calls) != fmt.Sprint(want) || len(src.Triggered()) != 0 {
			t.Fatalf("%s: calls %v, want %v; triggered %v", provider, calls, want, src.Triggered())
		}
	}
}

func TestHooksOffWithoutSecret(t *testing.T) {
	src := testSource()
	srv := testServer(t, src, func(o *ServerOptions) { o.WebhookSecret = nil })
	f := hookFormats["github"]
	// Signed with the empty key: still refused, hooks are off.
	code, _ := send(t, srv.URL, delivery{provider: "github", event: "push", id: "x", body: []byte(f.push("acme/app", "refs/heads/main")), sign: ""})
	if code != 404 || len(src.Triggered()) != 0 {
		t.Fatalf("hooks without a secret: %d, triggered %v", code, src.Triggered())
	}
	srv = testServer(t, src, nil)
	if code, _ := send(t, srv.URL, delivery{provider: "bitbucket", event: "push", body: []byte(`{}`)}); code != 404 {
		t.Fatalf("unknown provider: %d, want 404", code)
	}
}
