package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"code.gitea.io/sdk/gitea"
	"github.com/google/go-github/v75/github"
	gitlab "gitlab.com/gitlab-org/api/client-go"

	"ferry.dev/ferry/internal/text"
)

// Provider posts commit statuses to one forge and finds the pull requests
// that brought a commit. Its errors are *ForgeError (or the context's
// error) and never carry the forge token.
type Provider interface {
	// SetStatus posts s on s.Commit of repo.
	SetStatus(ctx context.Context, repo Repo, s Status) error
	// PullRequestHeads returns the head SHAs of the merged pull requests
	// whose merge, squash or rebase produced commit; none when it came
	// another way. commit itself is never among them.
	PullRequestHeads(ctx context.Context, repo Repo, commit string) ([]string, error)
	// OpenPullRequests lists the open pull requests into branch base, so
	// plans are found by polling too, not only through webhooks.
	OpenPullRequests(ctx context.Context, repo Repo, base string) ([]PullRequest, error)
	// Comment creates, or updates in place, the one comment on pull request
	// pr that carries marker, so a new push updates the plan rather than
	// adding a comment.
	Comment(ctx context.Context, repo Repo, pr int, marker, body string) error
}

// PullRequest is an open pull (GitLab: merge) request.
type PullRequest struct {
	// Number is the number people see (GitLab: the IID).
	Number int
	// Head is the SHA of its head commit; Base the branch it merges into.
	Head, Base string
	// Branch is its head branch.
	Branch string
	// URL is its web page.
	URL string
}

// PullRequestOpener opens and closes pull requests, for promotion in
// pull-request mode. The Gitea provider implements it.
type PullRequestOpener interface {
	CreatePullRequest(ctx context.Context, repo Repo, head, base, title, body string) (PullRequest, error)
	ClosePullRequest(ctx context.Context, repo Repo, number int, comment string) error
}

// ForgeError is a request to a forge that failed.
type ForgeError struct {
	// Forge is github, gitlab, gitea or webhook.
	Forge string
	// Op says what was asked, subject first: "acme/app@abc1234 set status ferry/staging".
	Op string
	// Code is the HTTP status of the answer; 0 when none came.
	Code int
	// RetryAt is when the forge allows the next request (rate limits); zero
	// when it did not say.
	RetryAt time.Time
	// Message is the forge's answer, without secrets.
	Message string
}

// Error says the subject and the question first, then the forge's answer.
func (e *ForgeError) Error() string {
	if e.Code == 0 {
		return fmt.Sprintf("%s: %s: %s", e.Op, e.Forge, e.Message)
	}
	return fmt.Sprintf("%s: %s answered %d: %s", e.Op, e.Forge, e.Code, e.Message)
}

// Transient reports whether the same request may succeed later: no answer
// came, the forge failed (5xx), or it asked to slow down (429, or 403 with
// a rate-limit reset). Other answers (bad token, unknown repository,
// invalid field) fail the same way every time.
func (e *ForgeError) Transient() bool {
	switch {
	case e.Code == 0, e.Code >= 500, e.Code == http.StatusTooManyRequests, e.Code == http.StatusRequestTimeout:
		return true
	}
	return !e.RetryAt.IsZero()
}

// IsTransient reports whether err is worth retrying: a transient
// *ForgeError. Context errors and everything else are not.
func IsTransient(err error) bool {
	var fe *ForgeError
	return errors.As(err, &fe) && fe.Transient()
}

// forgeError turns a failed request into a *ForgeError, keeping the
// context's error as it is so callers see cancellation. resp may be nil;
// a nil err (the request succeeded) stays nil.
func forgeError(ctx context.Context, forge, op string, resp *http.Response, err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", op, ctxErr)
	}
	fe := &ForgeError{Forge: forge, Op: op}
	if resp != nil {
		fe.Code = resp.StatusCode
		if fe.Code == http.StatusTooManyRequests || fe.Code == http.StatusForbidden {
			fe.RetryAt = retryAt(resp.Header, time.Now())
		}
	}
	if err != nil {
		fe.Message = text.Scrub(err.Error(), secrets...)
	} else if resp != nil {
		fe.Message = http.StatusText(resp.StatusCode)
	}
	return fe
}

// httpResponse is the answer inside an SDK's response; nil when none came.
func httpResponse(resp any) *http.Response {
	switch r := resp.(type) {
	case *github.Response:
		if r != nil {
			return r.Response
		}
	case *gitlab.Response:
		if r != nil {
			return r.Response
		}
	case *gitea.Response:
		if r != nil {
			return r.Response
		}
	}
	return nil
}

// retryAt reads when a rate-limited forge takes requests again: Retry-After
// (seconds or an HTTP date, GitHub's secondary limits and GitLab), else the
// reset of an exhausted primary limit (GitHub X-RateLimit-*, GitLab
// RateLimit-*, in Unix seconds).
func retryAt(h http.Header, now time.Time) time.Time {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
			return now.Add(time.Duration(secs) * time.Second)
		}
		if t, err := http.ParseTime(v); err == nil {
			return t
		}
	}
	for _, prefix := range []string{"X-RateLimit-", "RateLimit-"} {
		if h.Get(prefix+"Remaining") != "0" {
			continue
		}
		if secs, err := strconv.ParseInt(h.Get(prefix+"Reset"), 10, 64); err == nil && secs > 0 {
			return time.Unix(secs, 0)
		}
	}
	return time.Time{}
}

// redactURL is scrub for a URL about to appear in an error.
func redactURL(u string) string { return text.Scrub(u) }

var markerPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9/._:-]*$`)

// markerLine is the hidden first line of a comment that carries marker.
// It is an HTML comment, invisible in rendered Markdown on every forge.
func markerLine(marker string) (string, error) {
	if !markerPattern.MatchString(marker) || strings.Contains(marker, "--") {
		return "", fmt.Errorf("comment marker %q: use letters, digits and / . _ : - without \"--\"", marker)
	}
	return "<!-- " + marker + " -->", nil
}

// markedBody is body carrying marker on its first line.
func markedBody(marker, body string) (line, full string, err error) {
	line, err = markerLine(marker)
	if err != nil {
		return "", "", err
	}
	return line, line + "\n" + body, nil
}

// hasMarker reports whether a comment's body starts with the marker line.
// Only the first line counts: a reply quoting ferry's comment is not it.
func hasMarker(body, line string) bool {
	return strings.HasPrefix(strings.TrimLeft(body, " \t\r\n"), line)
}

// httpTimeout bounds one request to a forge; the Reporter retries.
const httpTimeout = 30 * time.Second

func newHTTPClient() *http.Client { return &http.Client{Timeout: httpTimeout} }
