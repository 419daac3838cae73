package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"ferry.dev/ferry/bootstrap"
	"ferry.dev/ferry/manifests"
)

// gitTokenEnv holds a git token when no credential flag is given.
const gitTokenEnv = "FERRY_GIT_TOKEN"

func newBootstrapCmd() *cobra.Command {
	opts := bootstrap.DefaultOptions()
	var tokenFile, passwordFile, kubeconfig, kubeContext string
	cmd := &cobra.Command{
		Use:   "bootstrap --repo URL --env NAME",
		Short: "Install ferry into a cluster and commit the install, so that ferry manages itself",
		Long: `Install ferry into a cluster and commit the install into the repository.

bootstrap first checks, changing nothing, that the cluster is reachable, that
your cluster user may do everything bootstrap does (SelfSubjectAccessReview),
and that the git credentials may read and push to the repository (a temporary
ref is pushed and deleted). Every failed check is listed with its fix.

Then it commits the install directory (--path: the manifests, a
kustomization.yaml and ferry.yaml) to --branch and pushes it, creates the git
credential Secret (never committed), applies the install with server-side
apply, waits for the Deployment to be Available and prints the webhook and
badge URLs.

ferry.yaml holds one environment, --env, that follows the install directory:
ferry applies its own install, so an upgrade is a commit. Running bootstrap
again with the same flags changes nothing; with a new --image it commits and
applies the upgrade. An existing ferry.yaml is kept; the other files are
rewritten.

Credentials: --token-file (or $` + gitTokenEnv + `), or --username with
--password-file. They need write access to the repository.`,
		Example: `  ferry bootstrap --repo https://git.example.com/org/fleet.git --env prod-eu \
    --token-file ~/.config/ferry/token --image registry.example.com/ferry:v1.2.0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			creds, err := gitCredentials(opts.Credentials.Username, tokenFile, passwordFile)
			if err != nil {
				return err
			}
			opts.Credentials = creds
			opts.Namespace = ferryNamespace(cmd)
			opts.Out = cmd.OutOrStdout()
			cfg, err := commandCluster(cmd, kubeconfig, kubeContext)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			if _, err := bootstrap.Run(ctx, cfg, opts); err != nil {
				return fmt.Errorf("bootstrap: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Repo, "repo", "", "the repository's HTTPS URL, without credentials (required)")
	f.StringVar(&opts.Branch, "branch", opts.Branch, "branch the install is committed to; created when missing")
	f.StringVar(&opts.Path, "path", "", "install directory in the repository (default clusters/<env>/ferry)")
	f.StringVar(&opts.Environment, "env", "", "name of the environment that manages ferry's own install, e.g. the cluster's name (required)")
	f.StringVar(&tokenFile, "token-file", "", "file holding a git access token with write access [$"+gitTokenEnv+"]")
	f.StringVar(&opts.Credentials.Username, "username", "", "git user name, for --password-file (a forge that wants the user with a token: pass the token as the password)")
	f.StringVar(&passwordFile, "password-file", "", "file holding the git password of --username")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&kubeContext, "context", "", "kubeconfig context (default its current context)")
	f.StringVar(&opts.Image, "image", "", "ferry's image (default: the committed one, or "+manifests.DefaultImage+" on a first install); a new image is an upgrade")
	f.DurationVar(&opts.Timeout, "timeout", opts.Timeout, "how long to wait for the Deployment to be Available")
	_ = cmd.MarkFlagRequired("repo")
	_ = cmd.MarkFlagRequired("env")
	return cmd
}

// ferryNamespace is --namespace, else $FERRY_NAMESPACE, else ferry-system,
// as for `ferry run`.
func ferryNamespace(cmd *cobra.Command) string {
	if ns, _ := cmd.Flags().GetString("namespace"); ns != "" {
		return ns
	}
	if ns := os.Getenv("FERRY_NAMESPACE"); ns != "" {
		return ns
	}
	return manifests.DefaultNamespace
}

// gitCredentials reads the credentials: --token-file, or --password-file
// (with --username), or else $FERRY_GIT_TOKEN.
func gitCredentials(username, tokenFile, passwordFile string) (bootstrap.Credentials, error) {
	c := bootstrap.Credentials{Username: username}
	switch {
	case tokenFile != "" && passwordFile != "":
		return c, errors.New("--token-file and --password-file: give one")
	case tokenFile != "":
		data, err := os.ReadFile(tokenFile)
		if err != nil {
			return c, fmt.Errorf("--token-file: %w", err)
		}
		c.Token = strings.TrimSpace(string(data))
		if c.Token == "" {
			return c, fmt.Errorf("--token-file %s is empty", tokenFile)
		}
	case passwordFile != "":
		data, err := os.ReadFile(passwordFile)
		if err != nil {
			return c, fmt.Errorf("--password-file: %w", err)
		}
		// Files usually end with a newline; the password does not.
		c.Password = strings.TrimRight(string(data), "\r\n")
		if c.Password == "" {
			return c, fmt.Errorf("--password-file %s is empty", passwordFile)
		}
	default:
		c.Token = strings.TrimSpace(os.Getenv(gitTokenEnv))
	}
	return c, nil
}

// quietControllerRuntime gives controller-runtime's clients a logger that
// drops everything: bootstrap and uninstall report through their own
// output, and without a logger controller-runtime prints a stack trace to
// stderr once the command has run for 30 seconds.
func quietControllerRuntime() {
	ctrllog.SetLogger(logr.Discard())
}
