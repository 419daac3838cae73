package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/scope"
)

func newScopeCmd() *cobra.Command {
	cmd := envCommand("scope <environment>",
		"Print the environment's ServiceAccount and RBAC, from its scope, ready to commit",
		func(cmd *cobra.Command, cfg *config.Config, name string) error {
			env, ok := cfg.Environment(name)
			if !ok {
				return fmt.Errorf("no environment %q in the configuration", name)
			}
			data, err := scope.RBAC(scope.Grant{Scope: scopeOf(env), ServiceAccount: env.ServiceAccountName(true), Namespace: cfg.Namespace})
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		})
	cmd.Long = `scope prints, from the environment's scope in ferry.yaml, the ServiceAccount
its requests impersonate, a RoleBinding to the built-in admin role in each
namespace of the scope, and a ClusterRole with its binding for the scope's
cluster-scoped kinds (Namespaces only by name). An environment with
scope.clusterAdmin is bound to cluster-admin. RBAC cannot bind a namespace
glob; the output says so in its header. ferry bootstrap writes the same for
every environment into environments.yaml.`
	return cmd
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
