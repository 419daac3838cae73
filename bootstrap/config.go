package bootstrap

import (
	"encoding/json"
	"fmt"
	"path"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/manifests"
	"ferry.dev/ferry/scope"
)

// configYAML is the ferry.yaml of a first install: one environment, named
// opts.Environment, that follows the install directory itself, so that ferry
// applies its own upgrades. Its git credentials are the files of the mounted
// Secret.
func configYAML(opts Options) []byte {
	var auth string
	if opts.Credentials.Token != "" {
		auth = fmt.Sprintf("        tokenFile: %s\n", path.Join(manifests.CredentialsDir, manifests.TokenKey))
	} else {
		auth = fmt.Sprintf("        username: %s\n        passwordFile: %s\n",
			quote(opts.Credentials.Username), path.Join(manifests.CredentialsDir, manifests.PasswordKey))
	}
	return fmt.Appendf(nil, `# ferry's configuration, written by ferry bootstrap when it was missing and
# kept since. ferry applies this directory to itself: edit this file (add
# your environments below) or kustomization.yaml (the image), commit, and
# ferry reconfigures or upgrades itself.
namespace: %[1]s
environments:
  # ferry's own install: this directory.
  - name: %[2]s
    source:
      url: %[3]s
      branch: %[4]s
      path: %[5]s
      auth:
%[6]s    namespace: %[1]s
    # ferry's install is the one environment that may write ferry's own
    # namespace and anything cluster-wide: its ServiceAccount is bound to
    # cluster-admin in environments.yaml, next to this file. Give every
    # other environment a scope of its own namespaces.
    serviceAccount: %[7]s
    scope:
      clusterAdmin: true
`, opts.Namespace, opts.Environment, quote(opts.Repo), quote(opts.Branch), quote(opts.InstallPath()), auth, config.EnvServiceAccountPrefix+opts.Environment)
}

// quote writes s as a YAML double-quoted scalar (JSON's string syntax is
// valid YAML).
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// checkConfig validates a ferry.yaml for this install: valid, in the same
// namespace, and with an environment that follows the install directory
// (otherwise ferry would not manage itself).
//
// It returns the ServiceAccounts and scopes of the environments, for
// environments.yaml.
func checkConfig(data []byte, opts Options) ([]scope.Grant, error) {
	cfg, err := config.Parse(data)
	if err != nil {
		return nil, err
	}
	if cfg.Namespace != opts.Namespace {
		return nil, fmt.Errorf("its namespace is %s, not %s", cfg.Namespace, opts.Namespace)
	}
	dir := opts.InstallPath()
	var grants []scope.Grant
	self := false
	for i := range cfg.Environments {
		env := &cfg.Environments[i]
		if path.Clean(env.Source.Path) == dir && env.Source.Branch == opts.Branch {
			self = true
		}
		grants = append(grants, scope.Grant{
			Scope: scope.Scope{
				Environment: env.Name, Namespaces: env.Scope.Namespaces, ClusterKinds: env.Scope.ClusterKinds,
				ClusterAdmin: env.Scope.ClusterAdmin, DefaultNamespace: env.Namespace,
			},
			ServiceAccount: env.ServiceAccountName(true),
			Namespace:      cfg.Namespace,
		})
	}
	if !self {
		return nil, fmt.Errorf("no environment follows %s on branch %s, so ferry would not manage its own install", dir, opts.Branch)
	}
	return grants, nil
}

// committedImage returns the image a committed kustomization.yaml gives
// ferry, or "" when it names none.
func committedImage(kustomization []byte) (string, error) {
	var k types.Kustomization
	if err := yaml.Unmarshal(kustomization, &k); err != nil {
		return "", err
	}
	for _, img := range k.Images {
		if img.Name != manifests.ImageName {
			continue
		}
		ref := img.NewName
		if ref == "" {
			ref = img.Name
		}
		if img.NewTag != "" {
			ref += ":" + img.NewTag
		}
		if img.Digest != "" {
			ref += "@" + img.Digest
		}
		return ref, nil
	}
	return "", nil
}
