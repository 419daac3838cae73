package server

import (
	"strings"
	"testing"

	"ferry.dev/ferry/internal/text"
)

// fuzzHookParser checks what any payload may give: no panic, and an event
// ferry acts on is complete.
func fuzzHookParser(f *testing.F, parse func(event string, body []byte) (hookEvent, error), seeds []string, events ...string) {
	for _, s := range seeds {
		for _, ev := range events {
			f.Add(ev, []byte(s))
		}
	}
	f.Add("push", []byte(`{"ref":"refs/heads/","repository":{"full_name":"/"}}`))
	f.Add("push", []byte(`null`))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		ev, err := parse(event, body)
		if err != nil {
			if ev.kind != "" {
				t.Fatalf("error %v with event %+v", err, ev)
			}
			return
		}
		switch ev.kind {
		case "push":
			if ev.branch == "" || ev.repo.Owner == "" || ev.repo.Name == "" || strings.Contains(ev.repo.Name, "/") {
				t.Fatalf("incomplete push %+v", ev)
			}
		case "pull_request":
			if ev.pr <= 0 || !text.IsHex(ev.head) || ev.base == "" || ev.repo.Owner == "" || ev.repo.Name == "" {
				t.Fatalf("incomplete pull request %+v", ev)
			}
		case "":
			if ev.ignored == "" {
				t.Fatalf("ignored without a reason: %+v", ev)
			}
		default:
			t.Fatalf("unknown kind %q", ev.kind)
		}
	})
}

func FuzzParseGitHub(f *testing.F) {
	fuzzHookParser(f, parseGitHub, []string{githubLikePush("acme/app", "refs/heads/main"),
		githubLikePR("acme/app", 3, "synchronize", commitA, "main")}, "push", "pull_request", "ping")
}

func FuzzParseGitea(f *testing.F) {
	fuzzHookParser(f, parseGitea, []string{githubLikePush("acme/app", "refs/heads/main"),
		githubLikePR("acme/app", 3, "synchronized", commitA, "main")}, "push", "pull_request")
}

func FuzzParseGitLab(f *testing.F) {
	g := hookFormats["gitlab"]
	fuzzHookParser(f, parseGitLab, []string{g.push("group/sub/app", "refs/heads/main"),
		g.pr("acme/app", 3, "update", commitA, "main")}, "Push Hook", "Merge Request Hook")
}
