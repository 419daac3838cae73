// Package manifests holds ferry's install manifests: its namespace,
// ServiceAccount and RBAC, a Deployment of two replicas that share the environments,
// a Service, and the ConfigMap holding ferry.yaml. They are embedded and laid
// out as a kustomization directory ([Files]), the directory `ferry
// bootstrap` commits into the repository so that ferry manages its own
// upgrades. [Render] builds that directory exactly as ferry builds it from
// git.
//
// The git credential Secret is not among them: bootstrap creates it in the
// cluster, and nothing secret is ever committed.
package manifests

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"

	"ferry.dev/ferry/scope"
)

// Names of the installed objects and files, for bootstrap, uninstall and
// tests.
const (
	// DefaultNamespace is ferry's own namespace unless Options say otherwise.
	DefaultNamespace = "ferry-system"
	// DefaultImage is the image `make image` builds.
	DefaultImage = "ferry:latest"
	// DefaultReplicas is the Deployment's size: two replicas share the
	// environments, one Lease each.
	DefaultReplicas = 2
	// Name names the Deployment, ServiceAccount, Service, Role and
	// RoleBinding in ferry's namespace.
	Name = "ferry"
	// ConfigMapName is the config ConfigMap's name before kustomize adds
	// the hash of its content, so that a new configuration rolls the
	// Deployment.
	ConfigMapName = "ferry-config"
	// ConfigFile is ferry's configuration file in the directory and in the
	// ConfigMap; the pods read it at ConfigPath.
	ConfigFile = "ferry.yaml"
	// ConfigPath is where the pods read ferry.yaml.
	ConfigPath = "/etc/ferry/" + ConfigFile
	// CredentialsSecret is the git credential Secret bootstrap creates,
	// mounted at CredentialsDir: key TokenKey, or PasswordKey.
	CredentialsSecret = "ferry-git"
	// CredentialsDir is where the pods find the git credentials.
	CredentialsDir = "/var/run/ferry/git"
	// TokenKey is the Secret key, and the file under CredentialsDir, of a
	// git access token.
	TokenKey = "token"
	// PasswordKey is the Secret key, and the file under CredentialsDir, of
	// a git password.
	PasswordKey = "password"
	// Port serves webhooks, badges, the status API and metrics.
	Port = 9090
	// Kustomization is the kustomization file of the directory.
	Kustomization = "kustomization.yaml"
	// ImageName is the container image's name in the base Deployment; the
	// kustomization's images entry of that name sets the real image.
	ImageName = "ferry"
	// EnvironmentsFile holds the ServiceAccount and RBAC of every
	// environment, as `ferry scope` writes them, and the Role that lets
	// ferry impersonate those ServiceAccounts and no others.
	EnvironmentsFile = "environments.yaml"
	// ImpersonateRole names the Role (and RoleBinding) in ferry's
	// namespace that lets ferry impersonate the environments'
	// ServiceAccounts.
	ImpersonateRole = "ferry-impersonate"
)

//go:embed base/*.yaml
var base embed.FS

// Options says how ferry is installed.
type Options struct {
	// Namespace is ferry's own namespace. The ClusterRole and
	// ClusterRoleBinding carry its name too, so installs in two namespaces
	// of one cluster stay apart.
	Namespace string
	// Image is the container image reference, e.g.
	// registry.example.com/ferry:v1.2.0 or one pinned by @sha256 digest.
	Image string
	// ConfigYAML is ferry.yaml, ferry's configuration; required. Its
	// namespace should be Namespace.
	ConfigYAML []byte
	// Replicas is the Deployment's size; one of them leads.
	Replicas int32
	// Environments are the environments of ConfigYAML, whose
	// ServiceAccounts and RBAC go into environments.yaml (see
	// [EnvironmentsFile]), and which ferry may impersonate. Their
	// Namespace defaults to Namespace.
	Environments []scope.Grant
}

// DefaultOptions returns namespace ferry-system, image ferry:latest and two
// replicas, without a configuration.
func DefaultOptions() Options {
	return Options{Namespace: DefaultNamespace, Image: DefaultImage, Replicas: DefaultReplicas}
}

// Files returns the install directory, file name to content: the embedded
// base manifests, ferry.yaml, and a kustomization.yaml that sets the
// namespace, image and replicas and generates the config ConfigMap from
// ferry.yaml. It is what bootstrap commits; the same options give the same
// bytes.
func Files(opts Options) (map[string][]byte, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	files := map[string][]byte{ConfigFile: opts.ConfigYAML}
	names, err := fs.Glob(base, "base/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("manifests: %w", err)
	}
	var resources []string
	for _, name := range names { // fs.Glob sorts them
		data, err := base.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("manifests: %w", err)
		}
		// The base names ferry's namespace, and its cluster RBAC after it;
		// they are written for the namespace asked for rather than moved by
		// kustomize's namespace, which would also move the environments'
		// RoleBindings out of their namespaces (TestRenderOptions).
		files[path.Base(name)] = bytes.ReplaceAll(data, []byte(DefaultNamespace), []byte(opts.Namespace))
		resources = append(resources, path.Base(name))
	}
	if len(opts.Environments) > 0 {
		data, err := environments(opts)
		if err != nil {
			return nil, err
		}
		files[EnvironmentsFile] = data
		resources = append(resources, EnvironmentsFile)
	}
	k, err := kustomization(opts, resources)
	if err != nil {
		return nil, err
	}
	files[Kustomization] = k
	return files, nil
}

// kustomizationHeader tells people reading the repository which file is
// theirs to edit.
const kustomizationHeader = `# Written by ferry bootstrap; running it again rewrites this file and the
# manifests next to it, and keeps ferry.yaml. ferry applies this directory to
# itself: change the image here, or ferry.yaml, commit, and ferry upgrades or
# reconfigures itself.
`

func kustomization(opts Options, resources []string) ([]byte, error) {
	name, tag, digest := splitImage(opts.Image)
	k := types.Kustomization{
		TypeMeta:  types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind},
		Resources: resources,
		Labels:    []types.Label{{Pairs: map[string]string{"app.kubernetes.io/part-of": "ferry"}}},
		Images:    []types.Image{{Name: ImageName, NewName: name, NewTag: tag, Digest: digest}},
		Replicas:  []types.Replica{{Name: Name, Count: int64(opts.Replicas)}},
		ConfigMapGenerator: []types.ConfigMapArgs{{GeneratorArgs: types.GeneratorArgs{
			Namespace:     opts.Namespace,
			Name:          ConfigMapName,
			KvPairSources: types.KvPairSources{FileSources: []string{ConfigFile}},
		}}},
	}
	out, err := yaml.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("manifests: kustomization: %w", err)
	}
	return append([]byte(kustomizationHeader), out...), nil
}

// imageRef is loose on purpose: the registry decides what a valid reference
// is; this only refuses what would break the kustomization or the pod spec.
var imageRef = regexp.MustCompile(`^[a-z0-9][a-z0-9._/:@_-]*$`)

func (o Options) validate() error {
	var errs []error
	if msgs := validation.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("namespace %q: %s", o.Namespace, strings.Join(msgs, "; ")))
	}
	if name, _, _ := splitImage(o.Image); name == "" || !imageRef.MatchString(strings.ToLower(o.Image)) {
		errs = append(errs, fmt.Errorf("image %q: not an image reference like registry.example.com/ferry:v1", o.Image))
	}
	if len(strings.TrimSpace(string(o.ConfigYAML))) == 0 {
		errs = append(errs, errors.New("configuration: empty; pass ferry.yaml in ConfigYAML"))
	}
	if o.Replicas < 1 {
		errs = append(errs, fmt.Errorf("replicas %d: want at least 1", o.Replicas))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("manifests: %w", err)
	}
	return nil
}

// splitImage splits an image reference into name, tag and digest:
// "reg:5000/ferry:v1@sha256:ab" gives "reg:5000/ferry", "v1", "sha256:ab".
func splitImage(ref string) (name, tag, digest string) {
	name, digest, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
	}
	return name, tag, digest
}

// Render builds the directory of [Files] with ferry's own renderer, as ferry
// builds it from the commit bootstrap pushes, and returns the objects in
// kustomize's order.
func Render(ctx context.Context, opts Options) ([]*unstructured.Unstructured, error) {
	files, err := Files(opts)
	if err != nil {
		return nil, err
	}
	return renderFiles(ctx, files)
}

// environments writes environments.yaml: each environment's ServiceAccount
// and RBAC (scope.RBAC), and the Role that lets ferry impersonate exactly
// those ServiceAccounts.
func environments(opts Options) ([]byte, error) {
	var out bytes.Buffer
	out.WriteString("# Written by ferry bootstrap from ferry.yaml: the ServiceAccount of each\n" +
		"# environment, bound to its scope, and ferry's right to impersonate them.\n" +
		"# Running ferry bootstrap again rewrites it.\n")
	var names []string
	for _, g := range opts.Environments {
		if g.Namespace == "" {
			g.Namespace = opts.Namespace
		}
		if g.ServiceAccount == "" {
			g.ServiceAccount = scope.ServiceAccountPrefix + g.Scope.Environment
		}
		data, err := scope.RBAC(g)
		if err != nil {
			return nil, fmt.Errorf("manifests: %w", err)
		}
		out.WriteString("---\n")
		out.Write(data)
		names = append(names, g.ServiceAccount)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	role := fmt.Sprintf(`---
# ferry impersonates these ServiceAccounts, and no others, for every request
# it makes for their environments.
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: %[1]s
  namespace: %[2]s
rules:
  - apiGroups: [""]
    resources: [serviceaccounts]
    verbs: [impersonate]
    resourceNames: [%[3]s]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: %[1]s
  namespace: %[2]s
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: %[1]s
subjects:
  - kind: ServiceAccount
    name: %[4]s
    namespace: %[2]s
`, ImpersonateRole, opts.Namespace, strings.Join(names, ", "), Name)
	out.WriteString(role)
	return out.Bytes(), nil
}
