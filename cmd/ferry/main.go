// Command ferry is a GitOps reconciler for environments: it converges each
// environment's cluster on its git branch and decides from the cluster's
// health whether a commit is promoted or reverted.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"ferry.dev/ferry/config"
)

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	// controller-runtime's client logs through logr; ferry logs with slog.
	ctrllog.SetLogger(logr.Discard())
	root := newRoot()
	if err := root.Execute(); err != nil {
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		if err.Error() != "" {
			fmt.Fprintln(os.Stderr, "ferry:", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		}
		os.Exit(code)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "GitOps reconciler for environments: apply, verify, promote or revert",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("config", "ferry.yaml", "configuration file")
	config.AddFlags(root.PersistentFlags())
	root.AddCommand(newRunCmd(), newDiffCmd(), newHistoryCmd(), newReleaseCmd(), newRollbackCmd(), newDevCmd())
	root.AddCommand(newBootstrapCmd(), newUninstallCmd(), newScopeCmd())
	root.AddCommand(newVersionCmd(), newStatusCmd(), newReconcileCmd(), newSuspendCmd(), newResumeCmd(), newPromoteCmd())
	return root
}

// loadConfig loads the configuration named by --config with the flags.
func loadConfig(cmd *cobra.Command) (*config.Config, error) {
	path, _ := cmd.Flags().GetString("config")
	cfg, err := config.Load(path, cmd.Flags())
	if err != nil {
		return nil, fmt.Errorf("configuration %s is invalid:\n%w", path, err)
	}
	return cfg, nil
}

// newLogger returns a JSON logger at the configured level.
func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
