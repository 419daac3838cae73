package source

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"golang.org/x/crypto/ssh"

	"ferry.dev/ferry/internal/faults"
)

var (
	// ErrAuth reports wrong or missing credentials; the error says which
	// credential source to check.
	ErrAuth = faults.New(faults.Terminal, "authentication failed")
	// ErrBranchNotFound reports that the remote has no such branch.
	ErrBranchNotFound = faults.New(faults.Terminal, "branch not found")
	// ErrRepositoryNotFound reports that the remote has no repository at the
	// URL, or does not show it to these credentials.
	ErrRepositoryNotFound = faults.New(faults.Terminal, "repository not found")
	// ErrEmptyRepository reports a remote repository without any commit.
	ErrEmptyRepository = faults.New(faults.Terminal, "repository is empty")
	// ErrUnreachable reports that the remote could not be reached: name
	// resolution, refused or reset connections, timeouts, gateway errors.
	// It is the one transient kind: retrying may help. The other sentinels
	// are terminal: a person must fix a credential, a URL or a branch.
	ErrUnreachable = faults.New(faults.Transient, "remote unreachable")
	// ErrHostKey reports an SSH host key that known_hosts does not trust, or
	// an SSH remote without known_hosts.
	ErrHostKey = faults.New(faults.Terminal, "SSH host key not trusted")
)

// fail turns err from a git operation op on the remote into ferry's error:
// subject (the redacted URL and op) first, then the sentinel with a hint
// where one applies, then the cause, with every secret of a removed.
func (r *Repository) fail(ctx context.Context, op string, err error, a *auth) error {
	subject := r.display + " " + op
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%s: %w (timed out): %w", subject, ErrUnreachable, ctx.Err())
		}
		return fmt.Errorf("%s: %w", subject, ctx.Err())
	}
	kind, hint := classify(err, a)
	cause := redact(err, a.secrets)
	switch {
	case kind == nil:
		return fmt.Errorf("%s: %w", subject, cause)
	case hint != "":
		return fmt.Errorf("%s: %w (%s): %w", subject, kind, hint, cause)
	default:
		return fmt.Errorf("%s: %w: %w", subject, kind, cause)
	}
}

// classify maps a go-git error to a sentinel and a hint for the user, or nil
// when the cause is none of the known kinds.
func classify(err error, a *auth) (kind error, hint string) {
	var noRef git.NoMatchingRefSpecError
	var noAlgo *ssh.AlgorithmNegotiationError
	switch {
	// A server without a key of the types known_hosts holds for it fails
	// the negotiation before any key is checked (ssh.go offers only those).
	case a.hostKeyRejected.Load(), errors.As(err, &noAlgo) && noAlgo.What == "host key":
		return ErrHostKey, a.hostKeyHint
	case errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		strings.Contains(err.Error(), "ssh: unable to authenticate"):
		return ErrAuth, a.hint
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return ErrRepositoryNotFound, "check the URL and that the credentials may read it"
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return ErrEmptyRepository, ""
	case errors.As(err, &noRef):
		return ErrBranchNotFound, ""
	case unreachable(err):
		return ErrUnreachable, ""
	}
	return nil, ""
}

func unreachable(err error) bool {
	var netErr net.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch code := httpStatus(err); {
	case code >= 500, code == http.StatusTooManyRequests, code == http.StatusRequestTimeout:
		return true
	}
	// A connection the server or a proxy cut mid-answer ends in EOF, and
	// go-git sometimes passes on only the text of what failed
	// (TestUnreachableKinds).
	if faults.IsTransient(err) {
		return true
	}
	return errors.As(err, &opErr) || errors.As(err, &dnsErr) ||
		(errors.As(err, &netErr) && netErr.Timeout()) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}

// httpStatus is the status code of an unexpected HTTP answer, or 0. go-git
// wraps it in a plumbing.UnexpectedError that does not unwrap.
func httpStatus(err error) int {
	var unexpected *plumbing.UnexpectedError
	if !errors.As(err, &unexpected) {
		return 0
	}
	var httpErr *githttp.Err
	if !errors.As(unexpected.Err, &httpErr) {
		return 0
	}
	return httpErr.StatusCode()
}

// redact returns err, or a copy of its text without the secrets when any of
// them shows in it (a server may echo what it was sent).
func redact(err error, secrets []string) error {
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		if s != "" {
			clean = strings.ReplaceAll(clean, s, "[redacted]")
		}
	}
	if clean == msg {
		return err
	}
	return errors.New(clean)
}
