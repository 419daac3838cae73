// Package config loads and validates ferry's one YAML configuration file.
//
// The file is the base; FERRY_* environment variables override some of its
// top-level settings and flags override both (see [AddFlags] for the list).
// Defaults fill what none of them set. The result is validated as a whole:
// an invalid configuration is refused with every problem listed, each as a
// [*FieldError] naming the field path and the fix.
package config

import (
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Values accepted by [Environment.OnFailure].
const (
	// OnFailureRevert writes a revert commit for a failed commit.
	OnFailureRevert = "revert"
	// OnFailureHold keeps the cluster as it is and reports the failure.
	OnFailureHold = "hold"
)

// Values accepted by [Promote.Mode].
const (
	// PromotePush moves the target branch to the verified tree directly.
	PromotePush = "push"
	// PromotePullRequest opens a pull request into the target branch.
	PromotePullRequest = "pull-request"
)

// Values accepted by [Report.Provider]; an empty provider reports nothing
// outside the cluster.
const (
	// ProviderGitHub posts commit statuses through the GitHub API.
	ProviderGitHub = "github"
	// ProviderGitLab posts commit statuses through the GitLab API.
	ProviderGitLab = "gitlab"
	// ProviderGitea posts commit statuses through the Gitea API.
	ProviderGitea = "gitea"
	// ProviderWebhook posts status changes as JSON to a URL.
	ProviderWebhook = "webhook"
)

// Defaults applied to settings the file leaves out.
const (
	// DefaultAddr is where ferry serves badges, the status API, metrics and
	// webhooks. It listens on every interface because ferry normally runs in
	// a pod behind a Service; set 127.0.0.1:9090 to keep it local.
	DefaultAddr = ":9090"
	// DefaultNamespace is ferry's own namespace, home of its state ConfigMaps.
	DefaultNamespace = "ferry-system"
	// DefaultLogLevel is the level of ferry's structured logs.
	DefaultLogLevel = "info"
	// DefaultInterval is how often an environment's branch is polled.
	DefaultInterval = time.Minute
	// DefaultHealthTimeout bounds the wait for a commit to become healthy.
	DefaultHealthTimeout = 5 * time.Minute
	// DefaultDriftCheckInterval is how often every object is dry-run again.
	DefaultDriftCheckInterval = time.Hour
	// DefaultHealthInterval is how often health is polled while verifying.
	DefaultHealthInterval = 2 * time.Second
	// DefaultMaxPruneFraction is the largest share of an environment's
	// inventory one reconcile may prune.
	DefaultMaxPruneFraction = 0.5
	// DefaultHTTPStatus is the status code an HTTP check expects.
	DefaultHTTPStatus = 200
	// DefaultHTTPTimeout bounds one request of an HTTP check.
	DefaultHTTPTimeout = 5 * time.Second
)

// Config is ferry's whole configuration.
type Config struct {
	// Environments are reconciled independently; at least one is required.
	Environments []Environment `yaml:"environments"`
	// Report says where commit statuses go.
	Report Report `yaml:"report"`
	// Server is ferry's HTTP endpoint.
	Server Server `yaml:"server"`
	// Namespace is ferry's own namespace, holding the state ConfigMaps
	// ferry-state-<env>; default [DefaultNamespace].
	Namespace string `yaml:"namespace"`
	// Log configures ferry's structured logs.
	Log Log `yaml:"log"`
}

// Environment is one branch of one repository reconciled into one cluster.
type Environment struct {
	// Name identifies the environment in statuses, labels and the state
	// ConfigMap ferry-state-<name>, so it must be a DNS-1123 label.
	Name string `yaml:"name"`
	// Source is where the environment's manifests come from.
	Source Source `yaml:"source"`
	// Cluster is where they are applied.
	Cluster Cluster `yaml:"cluster"`
	// Namespace is given to namespaced objects that name none; an empty
	// namespace defaults to the environment's Name.
	Namespace string `yaml:"namespace"`
	// Health says how a commit is judged.
	Health Health `yaml:"health"`
	// OnFailure is [OnFailureRevert] or [OnFailureHold] (the default).
	OnFailure string `yaml:"onFailure"`
	// Promote, when set, promotes healthy commits to another environment.
	Promote *Promote `yaml:"promote"`
	// Prune deletes objects that left the rendering; nil means true. Use
	// [Environment.PruneEnabled] to read it.
	Prune *bool `yaml:"prune"`
	// MaxPruneFraction is the largest share of the inventory one reconcile
	// may prune, in (0, 1]; default [DefaultMaxPruneFraction]. A rendering
	// that would prune more is refused.
	MaxPruneFraction float64 `yaml:"maxPruneFraction"`
	// Force lets apply delete and recreate objects whose immutable fields
	// changed; default false.
	Force bool `yaml:"force"`
	// AllowDestructive lets an automatic revert or a promotion into this
	// environment delete Namespaces, PersistentVolumeClaims and CRDs, and
	// more than maxPruneFraction of the inventory; default false: such a
	// revert or promotion is held for a person.
	AllowDestructive bool `yaml:"allowDestructive"`
	// Scope is what the environment's commits may write; see [Scope].
	Scope Scope `yaml:"scope"`
	// ServiceAccount, in ferry's namespace, is impersonated by every request
	// made for the environment; see [Environment.ServiceAccountName] for
	// the default.
	ServiceAccount string `yaml:"serviceAccount"`
	// Limits bound one rendering; see [Limits].
	Limits Limits `yaml:"limits"`
	// Decryption, when set, gives the keys that open the environment's
	// SOPS-encrypted files; without it such a file fails the rendering.
	Decryption *Decryption `yaml:"decryption"`
	// Requires names environments a promoted tree must be healthy in, soak
	// included, before it enters this one: requires: [prod-eu] on prod-us
	// makes a wave, requires: [qa, perf] a fan-in. Each must receive the
	// same trees as this environment, from upstream or from a common
	// upstream environment.
	Requires []string `yaml:"requires"`
	// DependsOn names environments of the same cluster that must be healthy
	// at their branch tip before this one applies, such as infra holding
	// the CRDs an app uses.
	DependsOn []string `yaml:"dependsOn"`
	// DriftCheckInterval is how often a pass dry-runs every object of the
	// environment whatever the watches say, as a safety net; default
	// [DefaultDriftCheckInterval]. Between such passes only objects that a
	// watch saw someone else change are asked about.
	DriftCheckInterval time.Duration `yaml:"driftCheckInterval"`
}

// PruneEnabled reports whether objects that left the rendering are deleted;
// an unset Prune means yes.
func (e *Environment) PruneEnabled() bool {
	return e.Prune == nil || *e.Prune
}

// Source is a directory on a branch of a git repository.
type Source struct {
	// URL is https://, http://, ssh:// or scp-like user@host:path.
	URL string `yaml:"url"`
	// Branch is the branch name, without refs/heads/.
	Branch string `yaml:"branch"`
	// Path is the directory to render, relative to the repository root;
	// "." is the root.
	Path string `yaml:"path"`
	// Interval is how often the branch is polled; default [DefaultInterval].
	Interval time.Duration `yaml:"interval"`
	// Auth holds the credentials; empty means anonymous.
	Auth Auth `yaml:"auth"`
}

// Auth is one way to authenticate to a git server: TokenFile,
// Username with PasswordFile, SSHKeyFile with KnownHostsFile, or SecretRef.
type Auth struct {
	// TokenFile holds an HTTPS access token.
	TokenFile string `yaml:"tokenFile"`
	// Username is the HTTPS basic-auth user; it needs PasswordFile.
	Username string `yaml:"username"`
	// PasswordFile holds the HTTPS basic-auth password.
	PasswordFile string `yaml:"passwordFile"`
	// SSHKeyFile holds an SSH private key; it needs KnownHostsFile.
	SSHKeyFile string `yaml:"sshKeyFile"`
	// KnownHostsFile holds the host keys the git server is checked against.
	KnownHostsFile string `yaml:"knownHostsFile"`
	// SecretRef names a Secret in ferry's namespace holding the credentials.
	SecretRef string `yaml:"secretRef"`
}

// Cluster says which Kubernetes API server an environment is applied to.
type Cluster struct {
	// Kubeconfig is a kubeconfig file; empty means in-cluster, or
	// $KUBECONFIG outside a cluster.
	Kubeconfig string `yaml:"kubeconfig"`
	// Context is the kubeconfig context; empty means its current context.
	Context string `yaml:"context"`
}

// Health says how long and how often a commit is verified.
type Health struct {
	// Timeout bounds the wait for everything to be healthy; default
	// [DefaultHealthTimeout].
	Timeout time.Duration `yaml:"timeout"`
	// Soak is how long everything must stay healthy afterwards; default 0
	// (no soak). It must be shorter than Timeout.
	Soak time.Duration `yaml:"soak"`
	// Interval is how often health is polled; default
	// [DefaultHealthInterval].
	Interval time.Duration `yaml:"interval"`
	// Checks judge the objects of their kinds with CEL expressions instead
	// of kstatus, one check per kind.
	Checks []HealthCheck `yaml:"checks"`
	// HTTP are requests that must answer as expected once every object is
	// Current, and throughout the soak.
	HTTP []HTTPCheck `yaml:"http"`
}

// HealthCheck judges the objects of one kind, custom resources mostly,
// with CEL expressions instead of kstatus. The expressions see the object's
// metadata, spec and status, and the whole object as object; see
// health.CheckSpec.
type HealthCheck struct {
	// APIVersion selects the kind's group and is the version the objects
	// are read at, the one the expressions are written against, such as
	// example.com/v1 (v1 for the core group). Set it or Group.
	APIVersion string `yaml:"apiVersion"`
	// Group selects the kind's API group, such as example.com; the objects
	// are read at the version the API server prefers.
	Group string `yaml:"group"`
	// Kind is the kind judged, such as Widget.
	Kind string `yaml:"kind"`
	// Current is true once an object is ready, such as
	// status.conditions.exists(c, c.type == 'Ready' && c.status == 'True').
	Current string `yaml:"current"`
	// Failed, optional, is true when an object failed for good; the commit
	// then fails at once.
	Failed string `yaml:"failed"`
}

// HTTPCheck is a GET request that must answer as expected.
type HTTPCheck struct {
	// URL is an http:// or https:// URL. Redirects are followed on its host
	// only.
	URL string `yaml:"url"`
	// Status is the status code expected; default [DefaultHTTPStatus].
	Status int `yaml:"status"`
	// Body, optional, is a regular expression (Go syntax) the response body
	// must match; the first MiB of the body is read.
	Body string `yaml:"body"`
	// Timeout bounds one request; default [DefaultHTTPTimeout]. It must be
	// shorter than health.timeout.
	Timeout time.Duration `yaml:"timeout"`
}

// Promote sends an environment's healthy commits on to other environments.
type Promote struct {
	// To names the environments promoted to: one name, or a list for a
	// fan-out (to: [prod-eu, prod-us]).
	To Names `yaml:"to"`
	// Mode is [PromotePush] (the default) or [PromotePullRequest].
	Mode string `yaml:"mode"`
	// RequireSoak promotes only commits that passed a soak.
	RequireSoak bool `yaml:"requireSoak"`
	// Window, when set, is when promotions may leave this environment;
	// outside it a verified tree waits. Automatic reverts never wait.
	Window *Window `yaml:"window"`
}

// Names is a list of environment names that the file may also write as one
// name: to: production is to: [production].
type Names []string

// Window is a weekly span of time in a time zone.
type Window struct {
	// Days are weekdays (Mon, Tue, ... or ranges such as Mon-Thu); none
	// means every day.
	Days []string `yaml:"days"`
	// Hours is HH:MM-HH:MM on the 24-hour clock, such as 09:00-16:00; a
	// span ending before it starts runs over midnight; empty is the whole
	// day.
	Hours string `yaml:"hours"`
	// TimeZone is an IANA zone such as Europe/Berlin; empty is UTC.
	TimeZone string `yaml:"timeZone"`
}

// Report says where commit statuses are posted.
type Report struct {
	// Provider is one of the Provider constants, or empty for none.
	Provider string `yaml:"provider"`
	// URL is the forge's API base (empty: the public github.com or
	// gitlab.com service) or, for [ProviderWebhook], the URL posted to.
	URL string `yaml:"url"`
	// TokenFile holds the forge API token.
	TokenFile string `yaml:"tokenFile"`
	// WebhookSecretFile holds the shared secret of webhooks (HMAC).
	WebhookSecretFile string `yaml:"webhookSecretFile"`
	// PlanForks renders and dry-runs pull requests from forks too; default
	// false: a fork's pull request is planned only after a user with write
	// access comments "/ferry plan".
	PlanForks bool `yaml:"planForks"`
}

// Server is ferry's HTTP endpoint: badges, status API, metrics, webhooks.
type Server struct {
	// Addr is the listen address, host:port; default [DefaultAddr].
	Addr string `yaml:"addr"`
	// ExternalURL is where people reach ferry, used for links in commit
	// statuses; empty means statuses carry no link.
	ExternalURL string `yaml:"externalURL"`
}

// Log configures ferry's structured logs.
type Log struct {
	// Level is debug, info, warn or error; default [DefaultLogLevel].
	Level string `yaml:"level"`
}

// Environment returns the environment called name.
func (c *Config) Environment(name string) (*Environment, bool) {
	for i := range c.Environments {
		if c.Environments[i].Name == name {
			return &c.Environments[i], true
		}
	}
	return nil, false
}

// defaulter is a configuration struct that fills its own defaults. The
// decoder calls setDefaults on every such value it creates, before reading
// the file into it, so a value the file sets (even to zero) is never
// replaced by a default.
type defaulter interface {
	setDefaults()
}

func (c *Config) setDefaults() {
	c.Server.Addr = DefaultAddr
	c.Namespace = DefaultNamespace
	c.Log.Level = DefaultLogLevel
}

func (e *Environment) setDefaults() {
	e.Source.Interval = DefaultInterval
	e.DriftCheckInterval = DefaultDriftCheckInterval
	e.Health.Timeout = DefaultHealthTimeout
	e.Health.Interval = DefaultHealthInterval
	e.OnFailure = OnFailureHold
	prune := true
	e.Prune = &prune
	e.MaxPruneFraction = DefaultMaxPruneFraction
	e.Scope.setDefaults()
	e.Limits.setDefaults()
}

func (p *Promote) setDefaults() {
	p.Mode = PromotePush
}

func (h *HTTPCheck) setDefaults() {
	h.Status = DefaultHTTPStatus
	h.Timeout = DefaultHTTPTimeout
}

// setDerivedDefaults fills defaults that depend on other fields, once the
// whole file is read.
func (c *Config) setDerivedDefaults() {
	for i := range c.Environments {
		e := &c.Environments[i]
		if e.Namespace == "" {
			e.Namespace = e.Name
		}
		// An invalid namespace is reported once, as the namespace.
		if e.Scope.Namespaces == nil && !e.Scope.ClusterAdmin && len(validation.IsDNS1123Label(e.Namespace)) == 0 {
			e.Scope.Namespaces = []string{e.Namespace}
		}
	}
}
