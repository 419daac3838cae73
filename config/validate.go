package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"ferry.dev/ferry/pipeline"
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
	c.validatePipeline(index, &p)
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
	if e.DriftCheckInterval < time.Minute {
		p.add(at+".driftCheckInterval", "must be at least 1m, such as %s: the watches correct drift in between", DefaultDriftCheckInterval)
	}
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

// validatePipeline checks promote, requires and dependsOn of every
// environment against the others, then the shape of the whole graph;
// index maps each environment name to its first index.
func (c *Config) validatePipeline(index map[string]int, p *problems) {
	nodes := make([]pipeline.Node, len(c.Environments))
	for i := range c.Environments {
		e := &c.Environments[i]
		at := fmt.Sprintf("environments[%d]", i)
		nodes[i] = pipeline.Node{Name: e.Name}
		nodes[i].Requires = c.checkNames(at+".requires", e, e.Requires, index, p, nil)
		nodes[i].DependsOn = c.checkNames(at+".dependsOn", e, e.DependsOn, index, p, func(path string, other *Environment) {
			if other.Cluster != e.Cluster {
				p.add(path, "%q is applied to another cluster; dependsOn needs environments of the same cluster (kubeconfig and context)", other.Name)
			}
		})
		if e.Promote == nil {
			continue
		}
		at += ".promote"
		if len(e.Promote.To) == 0 {
			p.add(at+".to", "required: the environment to promote healthy commits to, or a list of them")
		}
		nodes[i].To = c.checkNames(at+".to", e, e.Promote.To, index, p, func(path string, other *Environment) {
			if sameBranch(e.Source, other.Source) {
				p.add(path, "%q follows the same branch %q of the same repository; promotion needs a branch of its own", other.Name, e.Source.Branch)
			}
		})
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
		if w := e.Promote.Window; w != nil {
			w.validate(at+".window", p)
		}
	}
	for _, prob := range pipeline.New(nodes).Check() {
		p.add(fmt.Sprintf("environments[%d].%s", index[prob.Env], prob.Field), "%s", prob.Reason)
	}
}

// checkNames reports names in a list of e's that are empty, e itself,
// unknown or repeated, runs check on each other environment named, and
// returns the names that are fine for the graph.
func (c *Config) checkNames(at string, e *Environment, names []string, index map[string]int, p *problems, check func(path string, other *Environment)) []string {
	var ok []string
	seen := map[string]bool{}
	for j, name := range names {
		path := fmt.Sprintf("%s[%d]", at, j)
		if len(names) == 1 && strings.HasSuffix(at, ".to") {
			path = at // to: production, written as one name
		}
		other, known := index[name]
		switch {
		case name == "":
			p.add(path, "must name an environment")
		case name == e.Name:
			p.add(path, "%q is this environment; name another one", e.Name)
		case !known:
			p.add(path, "%q names no environment; known: %s", name, strings.Join(c.names(), ", "))
		case seen[name]:
			p.add(path, "%q is listed twice", name)
		default:
			seen[name] = true
			if check != nil {
				before := len(*p)
				check(path, &c.Environments[other])
				if len(*p) > before {
					continue
				}
			}
			ok = append(ok, name)
		}
	}
	return ok
}

func (w *Window) validate(at string, p *problems) {
	for j, d := range w.Days {
		if _, err := pipeline.ParseDays([]string{d}); err != nil {
			p.add(fmt.Sprintf("%s.days[%d]", at, j), "%v", err)
		}
	}
	if _, err := pipeline.ParseHours(w.Hours); err != nil {
		p.add(at+".hours", "%v", err)
	}
	if _, err := pipeline.LoadZone(w.TimeZone); err != nil {
		p.add(at+".timeZone", "%v", err)
	}
}

// Parse returns the promotion window, or nil for none; the configuration
// must be valid.
func (w *Window) Parse() (*pipeline.Window, error) {
	if w == nil {
		return nil, nil
	}
	return pipeline.ParseWindow(w.Days, w.Hours, w.TimeZone)
}

// Graph returns the environments' promotion graph.
func (c *Config) Graph() *pipeline.Graph {
	nodes := make([]pipeline.Node, len(c.Environments))
	for i, e := range c.Environments {
		nodes[i] = pipeline.Node{Name: e.Name, Requires: e.Requires, DependsOn: e.DependsOn}
		if e.Promote != nil {
			nodes[i].To = e.Promote.To
		}
	}
	return pipeline.New(nodes)
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
