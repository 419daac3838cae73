package main

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"ferry.dev/ferry/bootstrap"
	"ferry.dev/ferry/cluster"
	"ferry.dev/ferry/config"
)

func newUninstallCmd() *cobra.Command {
	opts := bootstrap.DefaultUninstallOptions()
	var kubeconfig, kubeContext string
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove ferry from a cluster, leaving the environments' workloads running",
		Long: `Remove ferry's install from a cluster: its namespace (--namespace, default
ferry-system) with the Deployment, Service, state ConfigMaps, Leases and
git credential Secret in it, and its ClusterRole and ClusterRoleBinding.
Only objects labelled app.kubernetes.io/part-of=ferry are deleted.

Everything ferry applied for the environments stays where it is, still
labelled ferry.dev/environment=<name>, and keeps running; nothing reconciles it
any more. The environments' history (last healthy revisions, quarantined
renderings) lived in the state ConfigMaps and is gone: after a new bootstrap,
each environment starts with its branch's tip as a first deploy.

Git is not touched: remove the install directory from the repository with a
commit, or leave it for a later bootstrap, which reuses its ferry.yaml.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ns, cfg, ctx, stop, err := installRun(cmd, kubeconfig, kubeContext)
			if err != nil {
				return err
			}
			defer stop()
			opts.Namespace, opts.Out = ns, cmd.OutOrStdout()
			fmt.Fprintf(opts.Out, "removing ferry from namespace %s of %s\n", opts.Namespace, cfg.Host)
			if err := bootstrap.Uninstall(ctx, cfg, opts); err != nil {
				return fmt.Errorf("uninstall: %w", err)
			}
			fmt.Fprintln(opts.Out, "ferry is removed; the environments' workloads are left running")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&kubeContext, "context", "", "kubeconfig context (default its current context)")
	f.DurationVar(&opts.Timeout, "timeout", opts.Timeout, "how long to wait for the namespace to be gone")
	return cmd
}

// commandCluster is the cluster of bootstrap and uninstall, from their
// --kubeconfig and --context flags.
func commandCluster(cmd *cobra.Command, kubeconfig, kubeContext string) (*rest.Config, error) {
	quietControllerRuntime()
	cfg, err := cluster.RESTConfig(config.Cluster{Kubeconfig: kubeconfig, Context: kubeContext})
	if err != nil {
		return nil, fmt.Errorf("%s: no cluster: %w\n  fix: pass --kubeconfig (and --context), or set $KUBECONFIG", cmd.Name(), err)
	}
	return cfg, nil
}

// installRun is the shared start of bootstrap and uninstall: ferry's
// namespace and output from the command, the cluster from its flags, and a
// context that SIGTERM or SIGINT cancels. Call stop when done.
func installRun(cmd *cobra.Command, kubeconfig, kubeContext string) (ns string, cfg *rest.Config, ctx context.Context, stop context.CancelFunc, err error) {
	cfg, err = commandCluster(cmd, kubeconfig, kubeContext)
	if err != nil {
		return "", nil, nil, nil, err
	}
	ctx, stop = signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
	return ferryNamespace(cmd), cfg, ctx, stop, nil
}
