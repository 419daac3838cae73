package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/scope"
)

func newScopeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "scope <env>",
		Short: "print the environment's ServiceAccount and RBAC, from its scope, ready to commit",
		Long: `scope prints, from the environment's scope in ferry.yaml, the ServiceAccount
its requests impersonate, a RoleBinding to the built-in admin role in each
namespace of the scope, and a ClusterRole with its binding for the scope's
cluster-scoped kinds (Namespaces only by name). An environment with
scope.clusterAdmin is bound to cluster-admin. RBAC cannot bind a namespace
glob; the output says so in its header. ferry bootstrap writes the same for
every environment into environments.yaml.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			env, ok := cfg.Environment(args[0])
			if !ok {
				return fmt.Errorf("no environment %q in the configuration", args[0])
			}
			data, err := scope.RBAC(scope.Grant{Scope: scopeOf(env), ServiceAccount: env.ServiceAccountName(true), Namespace: cfg.Namespace})
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
}

// scopeOf is the scope of a configured environment.
func scopeOf(e *config.Environment) scope.Scope {
	return scope.Scope{
		Environment:      e.Name,
		Namespaces:       e.Scope.Namespaces,
		ClusterKinds:     e.Scope.ClusterKinds,
		ClusterAdmin:     e.Scope.ClusterAdmin,
		DefaultNamespace: e.Namespace,
	}
}
