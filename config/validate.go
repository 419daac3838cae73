package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// FieldError is one problem with the configuration: the field's path, as
// written in the file (environments[1].source.url), and what to do about it.
type FieldError struct {
	// Path locates the field, e.g. environments[1].source.url; empty for
	// the configuration as a whole.
	Path string
	// Reason says what is wrong and how to fix it.
	Reason string
}

// Error returns "path: reason".
func (e *FieldError) Error() string {
	if e.Path == "" {
		return "configuration: " + e.Reason
	}
	return e.Path + ": " + e.Reason
}

// Validate reports every problem of c at once, each as a [*FieldError],
// joined with errors.Join so that the error prints one problem per line.
// It does not apply defaults: a Config built in Go must set every field
// that [Parse] would default.
func (c *Config) Validate() error {
	return errors.Join(c.problems()...)
}

// problems lists c's problems in the order of the fields.
func (c *Config) problems() []error {
	var p problems
	if len(c.Environments) == 0 {
		p.add("environments", "required: list at least one environment")
	}
	index := map[string]int{} // environment name → first index
	for i := range c.Environments {
		e := &c.Environments[i]
		at := fmt.Sprintf("environments[%d]", i)
		if j, dup := index[e.Name]; dup && e.Name != "" {
			p.add(at+".name", "duplicate of environments[%d].name %q; names must be unique", j, e.Name)
		} else if e.Name != "" {
			index[e.Name] = i
		}
		e.validate(at, &p)
	}
	c.validatePromotions(index, &p)
	c.validateScopes(&p)
	c.Report.validate("report", &p)
	c.Server.validate("server", &p)
	if c.Namespace == "" {
		p.add("namespace", "required: ferry's own namespace, e.g. %s", DefaultNamespace)
	} else {
		p.dns1123Label("namespace", c.Namespace)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level", "unknown level %q; use debug, info, warn or error", c.Log.Level)
	}
	return p
}

// problems collects FieldErrors.
type problems []error

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, &FieldError{Path: path, Reason: fmt.Sprintf(format, args...)})
}

func (p *problems) dns1123Label(path, value string) {
	if msgs := validation.IsDNS1123Label(value); len(msgs) > 0 {
		p.add(path, "%q is not a DNS-1123 label: %s", value, strings.Join(msgs, "; "))
	}
}

func (e *Environment) validate(at string, p *problems) {
	if e.Name == "" {
		p.add(at+".name", "required: a DNS-1123 label such as staging")
	} else {
		p.dns1123Label(at+".name", e.Name)
	}
	e.Source.validate(at+".source", p)
	// The namespace defaults to the name, whose problems are reported above.
	switch {
	case e.Namespace != "" && e.Namespace != e.Name:
		p.dns1123Label(at+".namespace", e.Namespace)
	case e.Namespace == "" && e.Name != "":
		p.add(at+".namespace", "required: the namespace for objects that name none")
	}
	e.Health.validate(at+".health", p)
	e.Decryption.validate(at+".decryption", p)
	switch e.OnFailure {
	case OnFailureRevert, OnFailureHold:
	default:
		p.add(at+".onFailure", "unknown value %q; use %s or %s", e.OnFailure, OnFailureRevert, OnFailureHold)
	}
	// Written as a negation so that NaN is out of range too.
	if !(e.MaxPruneFraction > 0 && e.MaxPruneFraction <= 1) {
		p.add(at+".maxPruneFraction", "%v is out of range: must be greater than 0 and at most 1 (0.5 prunes at most half the inventory); to turn pruning off set prune: false", e.MaxPruneFraction)
	}
	e.validateScope(at, p)
}

func (s *Source) validate(at string, p *problems) {
	var kind string // the URL's transport, if it is valid
	if s.URL == "" {
		p.add(at+".url", "required: the git repository, such as https://git.example.com/org/app.git or git@git.example.com:org/app.git")
	} else if k, err := transport(s.URL); err != nil {
		p.add(at+".url", "%v", err)
	} else {
		kind = k
	}
	if s.Branch == "" {
		p.add(at+".branch", "required: the branch to follow, such as main")
	} else if err := checkBranch(s.Branch); err != nil {
		p.add(at+".branch", "%v", err)
	}
	if s.Path == "" {
		p.add(at+".path", "required: the directory to render, relative to the repository root (. for the root)")
	} else if err := checkRepoPath(s.Path); err != nil {
		p.add(at+".path", "%v", err)
	}
	if s.Interval <= 0 {
		p.add(at+".interval", "must be positive, such as %s", DefaultInterval)
	}
	s.Auth.validate(at+".auth", kind, p)
}

// Transports a source URL can use.
const (
	transportHTTP = "http"
	transportSSH  = "ssh"
)

var scpLike = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*@[A-Za-z0-9.-]+:[^\s]+$`)

// transport returns the transport of a git URL, transportHTTP or
// transportSSH, or why the URL is not accepted.
func transport(raw string) (string, error) {
	if !strings.Contains(raw, "://") {
		if scpLike.MatchString(raw) {
			return transportSSH, nil
		}
		return "", fmt.Errorf("%q is not a git URL: use https://, http://, ssh:// or git@host:path", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: use https://, http://, ssh:// or git@host:path", raw)
	}
	var kind string
	switch u.Scheme {
	case "https", "http":
		kind = transportHTTP
		if u.User != nil {
			return "", errors.New("must not hold credentials; put them in source.auth")
		}
	case "ssh":
		kind = transportSSH
		if _, hasPassword := u.User.Password(); hasPassword {
			return "", errors.New("must not hold a password; put credentials in source.auth")
		}
	default:
		return "", fmt.Errorf("scheme %q is not supported: use https://, http://, ssh:// or git@host:path", u.Scheme)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q has no host", raw)
	}
	return kind, nil
}

// checkBranch applies git's rules for ref names (git check-ref-format) to a
// branch name.
func checkBranch(b string) error {
	if strings.HasPrefix(b, "refs/") {
		return fmt.Errorf("write the branch name without refs/heads/, such as %q", strings.TrimPrefix(strings.TrimPrefix(b, "refs/"), "heads/"))
	}
	bad := b == "@" || strings.HasPrefix(b, "-") || strings.HasPrefix(b, "/") ||
		strings.HasSuffix(b, "/") || strings.HasSuffix(b, ".") || strings.HasSuffix(b, ".lock") ||
		strings.Contains(b, "..") || strings.Contains(b, "//") || strings.Contains(b, "@{") ||
		strings.Contains(b, "/.") || strings.HasPrefix(b, ".") ||
		strings.ContainsAny(b, " ~^:?*[\\\x7f") ||
		strings.ContainsFunc(b, func(r rune) bool { return r < 0x20 })
	if bad {
		return fmt.Errorf("%q is not a valid git branch name", b)
	}
	return nil
}

// checkRepoPath accepts clean paths inside the repository.
func checkRepoPath(p string) error {
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q must be relative to the repository root", p)
	}
	clean := path.Clean(p)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return fmt.Errorf("%q leaves the repository; remove the ..", p)
	}
	if clean != p {
		return fmt.Errorf("%q is not clean: write %q", p, clean)
	}
	return nil
}

func (a *Auth) validate(at, kind string, p *problems) {
	type method struct{ name, field string }
	var methods []method
	if a.TokenFile != "" {
		methods = append(methods, method{"tokenFile", "tokenFile"})
	}
	if a.Username != "" || a.PasswordFile != "" {
		methods = append(methods, method{"username+passwordFile", firstSet("username", a.Username, "passwordFile")})
	}
	if a.SSHKeyFile != "" || a.KnownHostsFile != "" {
		methods = append(methods, method{"sshKeyFile+knownHostsFile", firstSet("sshKeyFile", a.SSHKeyFile, "knownHostsFile")})
	}
	if a.SecretRef != "" {
		methods = append(methods, method{"secretRef", "secretRef"})
	}
	if len(methods) > 1 {
		names := make([]string, len(methods))
		for i, m := range methods {
			names[i] = m.name
		}
		p.add(at, "sets %s; choose one of tokenFile, username+passwordFile, sshKeyFile+knownHostsFile or secretRef", strings.Join(names, " and "))
	}
	switch {
	case a.Username != "" && a.PasswordFile == "":
		p.add(at+".passwordFile", "required with username")
	case a.PasswordFile != "" && a.Username == "":
		p.add(at+".username", "required with passwordFile")
	}
	switch {
	case a.SSHKeyFile != "" && a.KnownHostsFile == "":
		p.add(at+".knownHostsFile", "required with sshKeyFile: ferry checks the git server's host key against it")
	case a.KnownHostsFile != "" && a.SSHKeyFile == "":
		p.add(at+".sshKeyFile", "required with knownHostsFile")
	}
	if a.SecretRef != "" {
		if msgs := validation.IsDNS1123Subdomain(a.SecretRef); len(msgs) > 0 {
			p.add(at+".secretRef", "%q is not a Secret name: %s", a.SecretRef, strings.Join(msgs, "; "))
		}
	}
	for _, m := range methods {
		switch {
		case kind == transportHTTP && m.name == "sshKeyFile+knownHostsFile":
			p.add(at+"."+m.field, "is for ssh URLs but source.url is http(s); use tokenFile or username+passwordFile, or an ssh:// or git@host:path URL")
		case kind == transportSSH && (m.name == "tokenFile" || m.name == "username+passwordFile"):
			p.add(at+"."+m.field, "is for http(s) URLs but source.url is ssh; use sshKeyFile+knownHostsFile, or an https:// URL")
		}
	}
	if kind == transportSSH && len(methods) == 0 {
		p.add(at, "required for an ssh URL: set sshKeyFile and knownHostsFile, or secretRef")
	}
}

// firstSet returns field a if its value is set, else field b.
func firstSet(a, value, b string) string {
	if value != "" {
		return a
	}
	return b
}

func (h *Health) validate(at string, p *problems) {
	if h.Timeout <= 0 {
		p.add(at+".timeout", "must be positive, such as %s", DefaultHealthTimeout)
	}
	if h.Interval <= 0 {
		p.add(at+".interval", "must be positive, such as %s", DefaultHealthInterval)
	} else if h.Timeout > 0 && h.Interval >= h.Timeout {
		p.add(at+".interval", "%s must be shorter than health.timeout (%s)", h.Interval, h.Timeout)
	}
	if h.Soak < 0 {
		p.add(at+".soak", "must not be negative; 0 turns the soak off")
	} else if h.Timeout > 0 && h.Soak >= h.Timeout {
		p.add(at+".soak", "%s must be shorter than health.timeout (%s)", h.Soak, h.Timeout)
	}
	h.validateChecks(at, p)
	h.validateHTTP(at, p)
}

// validatePromotions checks promote of every environment against the
// others; index maps each environment name to its first index.
func (c *Config) validatePromotions(index map[string]int, p *problems) {
	next := make([]int, len(c.Environments)) // index promoted to, or -1
	for i := range c.Environments {
		next[i] = -1
		e := &c.Environments[i]
		if e.Promote == nil {
			continue
		}
		at := fmt.Sprintf("environments[%d].promote", i)
		to, known := index[e.Promote.To]
		switch {
		case e.Promote.To == "":
			p.add(at+".to", "required: the environment to promote healthy commits to")
		case e.Promote.To == e.Name:
			p.add(at+".to", "%q is this environment; promote to another one", e.Name)
		case !known:
			p.add(at+".to", "%q names no environment; known: %s", e.Promote.To, strings.Join(c.names(), ", "))
		case sameBranch(e.Source, c.Environments[to].Source):
			p.add(at+".to", "%q follows the same branch %q of the same repository; promotion needs a branch of its own", e.Promote.To, e.Source.Branch)
		default:
			next[i] = to
		}
		switch e.Promote.Mode {
		case PromotePush:
		case PromotePullRequest:
			if !isForge(c.Report.Provider) {
				p.add(at+".mode", "pull-request needs report.provider github, gitlab or gitea to open the pull request")
			}
		default:
			p.add(at+".mode", "unknown mode %q; use %s or %s", e.Promote.Mode, PromotePush, PromotePullRequest)
		}
		if e.Promote.RequireSoak && e.Health.Soak <= 0 {
			p.add(at+".requireSoak", "needs a soak: set health.soak, such as 2m")
		}
	}
	for _, cycle := range cycles(next) {
		names := make([]string, 0, len(cycle)+1)
		for _, i := range cycle {
			names = append(names, strconv.Quote(c.Environments[i].Name))
		}
		names = append(names, names[0])
		p.add(fmt.Sprintf("environments[%d].promote.to", cycle[0]), "promotion cycle %s; remove promote from one of them", strings.Join(names, " → "))
	}
}

// cycles returns each cycle of the graph i → next[i] (-1: no edge) once,
// starting at its lowest index.
func cycles(next []int) [][]int {
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]int, len(next))
	var out [][]int
	for start := range next {
		var walk []int
		i := start
		for i >= 0 && state[i] == unseen {
			state[i] = onPath
			walk = append(walk, i)
			i = next[i]
		}
		if i >= 0 && state[i] == onPath {
			cycle := walk[slices.Index(walk, i):]
			low := slices.Index(cycle, slices.Min(cycle))
			out = append(out, slices.Concat(cycle[low:], cycle[:low]))
		}
		for _, j := range walk {
			state[j] = done
		}
	}
	slices.SortFunc(out, func(a, b []int) int { return a[0] - b[0] })
	return out
}

func sameBranch(a, b Source) bool {
	return a.URL != "" && a.URL == b.URL && a.Branch == b.Branch
}

func isForge(provider string) bool {
	return provider == ProviderGitHub || provider == ProviderGitLab || provider == ProviderGitea
}

// names lists the environments' names in order.
func (c *Config) names() []string {
	names := make([]string, 0, len(c.Environments))
	for _, e := range c.Environments {
		names = append(names, strconv.Quote(e.Name))
	}
	return names
}

func (r *Report) validate(at string, p *problems) {
	switch r.Provider {
	case "":
		for _, f := range []struct{ name, value string }{{"url", r.URL}, {"tokenFile", r.TokenFile}} {
			if f.value != "" {
				p.add(at+".provider", "required when report.%s is set: github, gitlab, gitea or webhook", f.name)
				break
			}
		}
	case ProviderGitHub, ProviderGitLab:
		if r.TokenFile == "" {
			p.add(at+".tokenFile", "required for provider %s: the token that posts commit statuses", r.Provider)
		}
	case ProviderGitea:
		if r.URL == "" {
			p.add(at+".url", "required for provider gitea: the server's base URL, such as https://gitea.example.com")
		}
		if r.TokenFile == "" {
			p.add(at+".tokenFile", "required for provider gitea: the token that posts commit statuses")
		}
	case ProviderWebhook:
		if r.URL == "" {
			p.add(at+".url", "required for provider webhook: the URL status changes are posted to")
		}
	default:
		p.add(at+".provider", "unknown provider %q; use github, gitlab, gitea or webhook, or leave it empty to report nothing", r.Provider)
	}
	if r.URL != "" && !isHTTPURL(r.URL) {
		p.add(at+".url", "%q must be an http:// or https:// URL", r.URL)
	}
}

func (s *Server) validate(at string, p *problems) {
	if s.Addr == "" {
		p.add(at+".addr", "required: host:port to listen on, such as %s", DefaultAddr)
	} else if _, port, err := net.SplitHostPort(s.Addr); err != nil || !validPort(port) {
		p.add(at+".addr", "%q must be host:port, such as :9090 or 127.0.0.1:9090", s.Addr)
	}
	if s.ExternalURL != "" && !isHTTPURL(s.ExternalURL) {
		p.add(at+".externalURL", "%q must be an http:// or https:// URL, such as https://ferry.example.com", s.ExternalURL)
	}
}

func validPort(port string) bool {
	n, err := strconv.ParseUint(port, 10, 16)
	return err == nil && n <= 65535
}

func isHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
