package forge

import (
	"fmt"
	"net/url"
	"strings"
)

// Repo names a repository on a forge. Owner may hold several segments
// (GitLab groups and subgroups: "group/sub").
type Repo struct {
	Owner, Name string
}

// String returns "owner/name".
func (r Repo) String() string { return r.Owner + "/" + r.Name }

// Is reports whether r and o name the same repository. Forges compare
// owner and name without regard to case.
func (r Repo) Is(o Repo) bool {
	return strings.EqualFold(r.Owner, o.Owner) && strings.EqualFold(r.Name, o.Name)
}

// ParseRepo finds the repository in a clone URL:
//
//	https://host[:port]/owner/name[.git]
//	ssh://git@host[:port]/owner/name.git
//	git@host:owner/name.git
//
// Everything between the host and the last segment is the owner, so a
// forge served under a sub-path (https://host/gitea/owner/name) needs the
// clone URL of its own root.
func ParseRepo(cloneURL string) (Repo, error) {
	p, err := repoPath(cloneURL)
	if err != nil {
		return Repo{}, fmt.Errorf("repository of %s: %w", redactURL(cloneURL), err)
	}
	p = strings.Trim(p, "/")
	p = strings.TrimSuffix(p, ".git")
	p = strings.TrimSuffix(p, "/")
	i := strings.LastIndex(p, "/")
	if i <= 0 || i == len(p)-1 {
		return Repo{}, fmt.Errorf("repository of %s: path %q is not owner/name", redactURL(cloneURL), p)
	}
	r := Repo{Owner: p[:i], Name: p[i+1:]}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return Repo{}, fmt.Errorf("repository of %s: path %q has an empty or dot segment", redactURL(cloneURL), p)
		}
	}
	return r, nil
}

// repoPath returns the path part of a clone URL in either URL or scp form.
func repoPath(s string) (string, error) {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", fmt.Errorf("not a URL")
		}
		if u.Host == "" {
			return "", fmt.Errorf("no host")
		}
		return u.Path, nil
	}
	// scp-like: [user@]host:path, the form git itself accepts.
	colon := strings.Index(s, ":")
	if colon < 0 {
		return "", fmt.Errorf("not a URL or user@host:path")
	}
	host := s[:colon]
	if at := strings.LastIndex(host, "@"); at >= 0 {
		host = host[at+1:]
	}
	if host == "" || strings.Contains(host, "/") {
		return "", fmt.Errorf("not a URL or user@host:path")
	}
	return s[colon+1:], nil
}
