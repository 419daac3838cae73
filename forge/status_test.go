package forge

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseRepo(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want Repo
		bad  bool
	}{
		{url: "https://github.com/acme/app", want: Repo{"acme", "app"}},
		{url: "https://github.com/acme/app.git", want: Repo{"acme", "app"}},
		{url: "https://github.com/acme/app.git/", want: Repo{"acme", "app"}},
		{url: "http://127.0.0.1:3000/ferry/demo.git", want: Repo{"ferry", "demo"}},
		{url: "https://user:secret@git.example.com/acme/app.git", want: Repo{"acme", "app"}},
		{url: "https://gitlab.com/group/sub/app.git", want: Repo{"group/sub", "app"}},
		{url: "ssh://git@github.com/acme/app.git", want: Repo{"acme", "app"}},
		{url: "ssh://git@127.0.0.1:2222/acme/app.git", want: Repo{"acme", "app"}},
		{url: "git@github.com:acme/app.git", want: Repo{"acme", "app"}},
		{url: "github.com:acme/app", want: Repo{"acme", "app"}},
		{url: "git@gitlab.com:group/sub/app.git", want: Repo{"group/sub", "app"}},
		{url: "https://github.com/app.git", bad: true},
		{url: "https://github.com/", bad: true},
		{url: "https:///acme/app", bad: true},
		{url: "/srv/git/acme/app.git", bad: true},
		{url: "acme/app", bad: true},
		{url: "https://github.com/acme/../app", bad: true},
		{url: "", bad: true},
	} {
		got, err := ParseRepo(tc.url)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: %v, want an error", tc.url, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %v, %v; want %v", tc.url, got, err, tc.want)
		}
	}
	_, err := ParseRepo("https://user:" + testToken + "@host/x")
	if err == nil || strings.Contains(err.Error(), testToken) {
		t.Errorf("error %v shows the password", err)
	}
}

func TestDescriptionsAndLinks(t *testing.T) {
	for _, tc := range [][2]string{
		{DescVerifying(2 * time.Minute), "verifying (soak 2m)"},
		{DescVerifying(90 * time.Second), "verifying (soak 1m30s)"},
		{DescVerifying(time.Hour), "verifying (soak 1h)"},
		{DescVerifying(0), "verifying"},
		{DescHealthy(commitA), "healthy at 0123456"},
		{DescPromoted("production"), "promoted to production"},
		{DescReverted(commitD), "reverted by aaaaaaa"},
		{TargetURL("", "staging", commitA), ""},
		{TargetURL("https://f.example/", "staging", commitA), "https://f.example/environments/staging?commit=" + commitA},
		{TargetURL("https://f.example", "a b", ""), "https://f.example/environments/a%20b"},
		{(Status{Environment: "staging"}).StatusContext(), "ferry/staging"},
		{(Status{Environment: "staging", Context: PlanContext("staging")}).StatusContext(), "ferry/plan/staging"},
	} {
		if tc[0] != tc[1] {
			t.Errorf("%q, want %q", tc[0], tc[1])
		}
	}
}

func TestStatusValidate(t *testing.T) {
	ok := Status{Environment: "staging", Commit: commitA, State: Pending}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Status{
		{Commit: commitA, State: Pending},
		{Environment: "staging", Commit: "HEAD", State: Pending},
		{Environment: "staging", Commit: "abc", State: Pending},
		{Environment: "staging", Commit: commitA, State: "warning"},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
}

func TestRetryAt(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		h    http.Header
		want time.Time
	}{
		{http.Header{"Retry-After": {"30"}}, now.Add(30 * time.Second)},
		{http.Header{"Retry-After": {now.Add(time.Minute).UTC().Format(http.TimeFormat)}}, now.Add(time.Minute)},
		{http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1800000600"}}, time.Unix(1_800_000_600, 0)},
		{http.Header{"Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"1800000060"}}, time.Unix(1_800_000_060, 0)},
		{http.Header{"X-Ratelimit-Remaining": {"12"}, "X-Ratelimit-Reset": {"1800000600"}}, time.Time{}},
		{http.Header{"Retry-After": {"soon"}}, time.Time{}},
		{http.Header{}, time.Time{}},
	} {
		if got := retryAt(tc.h, now); !got.Equal(tc.want) {
			t.Errorf("%v: %v, want %v", tc.h, got, tc.want)
		}
	}
}

func TestMarker(t *testing.T) {
	line, err := markerLine("ferry/plan/staging")
	if err != nil || line != "<!-- ferry/plan/staging -->" {
		t.Fatalf("%q %v", line, err)
	}
	for _, bad := range []string{"", "a--b", "x -->", "<b>", "new\nline"} {
		if _, err := markerLine(bad); err == nil {
			t.Errorf("marker %q accepted", bad)
		}
	}
	if !hasMarker("\n<!-- m -->\nbody", "<!-- m -->") || hasMarker("> <!-- m -->", "<!-- m -->") {
		t.Error("hasMarker must look at the first line only")
	}
}

func TestPlan(t *testing.T) {
	p := Plan{Environment: "staging", Commit: commitB, Created: 1, Changed: 1, Pruned: 1, Objects: []PlanObject{
		{Subject: "Deployment/web/api", Action: "configured", Diff: "-  replicas: 1\n+  replicas: 2\n```sneaky fence\n"},
		{Subject: "ConfigMap/web/env", Action: "unchanged"},
		{Subject: "Secret/web/creds", Action: "created", Diff: "+  password: '*** (masked)'\n"},
		{Subject: "Service/web/old", Action: "deleted"},
	}}
	s := p.Status("https://f.example/environments/staging")
	if s.Context != "ferry/plan/staging" || s.State != Success || s.Description != "1 created, 1 changed, 1 pruned" || s.Commit != commitB {
		t.Fatalf("status %+v", s)
	}
	c := p.Comment()
	for _, want := range []string{"ferry plan for `staging` at 89abcde", "**1 created, 1 changed, 1 pruned**",
		"| `Deployment/web/api` | configured |", "| `Service/web/old` | deleted |", "<details><summary>Diff</summary>", "````diff\n"} {
		if !strings.Contains(c, want) {
			t.Errorf("comment lacks %q:\n%s", want, c)
		}
	}
	if strings.Contains(c, "ConfigMap/web/env") {
		t.Errorf("unchanged objects listed:\n%s", c)
	}
	failed := Plan{Environment: "staging", Commit: commitB, Err: "render envs/staging: accumulating resources: missing base"}
	if s := failed.Status(""); s.State != Failure || s.Description != failed.Err {
		t.Fatalf("failed plan status %+v", s)
	}
	if c := failed.Comment(); !strings.Contains(c, "Plan failed") || !strings.Contains(c, failed.Err) {
		t.Fatalf("failed plan comment:\n%s", c)
	}
	if (Plan{Environment: "e", Commit: commitA}).Summary() != "no changes" {
		t.Fatal("empty plan summary")
	}
}
