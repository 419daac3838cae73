package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/internal/text"
	"ferry.dev/ferry/reconciler"
	"ferry.dev/ferry/state"
)

func quietOptions() reconciler.Options { return reconciler.Options{Log: newLogger("error")} }

// withConfig is the RunE of a command that needs the configuration: it
// loads it, then runs run.
func withConfig(run func(cmd *cobra.Command, cfg *config.Config, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cfg, err := loadConfig(cmd)
		if err != nil {
			return err
		}
		return run(cmd, cfg, args)
	}
}

// envCommand is a command on one environment, named by its only argument,
// that runs with the configuration loaded.
func envCommand(use, short string, run func(cmd *cobra.Command, cfg *config.Config, env string) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: withConfig(func(cmd *cobra.Command, cfg *config.Config, args []string) error {
			return run(cmd, cfg, args[0])
		})}
}

func newHistoryCmd() *cobra.Command {
	return envCommand("history <environment>",
		"Show each verdict: revision, digest, verdict, reason, duration and what ferry did",
		func(cmd *cobra.Command, cfg *config.Config, env string) error {
			st, err := reconciler.LoadState(cmd.Context(), cfg, env, quietOptions())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: %s", env, st.Phase)
			if st.Message != "" {
				fmt.Fprintf(out, " (%s)", st.Message)
			}
			fmt.Fprintln(out)
			if st.LastHealthy != nil {
				fmt.Fprintf(out, "last healthy: %s %s\n", state.Short(st.LastHealthy.Commit), shortDigest(st.LastHealthy.Digest))
			}
			for _, q := range st.Quarantine {
				fmt.Fprintf(out, "quarantined: %s (reverted %s)\n", shortDigest(q.Digest), state.Short(q.Commit))
			}
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "REVISION\tDIGEST\tVERDICT\tDURATION\tACTION\tREASON")
			for _, v := range st.History {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", state.Short(v.Commit), shortDigest(v.Digest), v.Outcome,
					v.Finished.Sub(v.Started).Round(time.Millisecond), v.Action, text.OneLine(v.Reason, 120))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			for _, d := range st.Drift {
				what := "corrected"
				if !d.Corrected {
					what = "not corrected: " + text.OneLine(d.Error, 160)
				}
				fmt.Fprintf(out, "drift %s %s %s\n", d.Time.UTC().Format(time.RFC3339), d.Object, what)
			}
			return nil
		})
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	if d == "" {
		return "-"
	}
	return d
}

func newReleaseCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "release <environment> <digest|sha>",
		Short: "Release a quarantined rendering, so commits that render to it are applied again",
		Args:  cobra.ExactArgs(2),
		RunE: withConfig(func(cmd *cobra.Command, cfg *config.Config, args []string) error {
			released, err := reconciler.Release(cmd.Context(), cfg, args[0], args[1], quietOptions())
			if err != nil {
				return err
			}
			for _, q := range released {
				fmt.Fprintf(cmd.OutOrStdout(), "released %s (reverted %s) in %s\n", shortDigest(q.Digest), state.Short(q.Commit), args[0])
			}
			return nil
		}),
	}
}

func newRollbackCmd() *cobra.Command {
	var to string
	cmd := envCommand("rollback <environment>",
		"Write and push a revert commit back to the last healthy revision (or --to a healthy one)",
		func(cmd *cobra.Command, cfg *config.Config, env string) error {
			rev, err := reconciler.Rollback(cmd.Context(), cfg, env, to, quietOptions())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pushed %s: %s\n", rev.Short(), strings.SplitN(rev.Commit.Message, "\n", 2)[0])
			return nil
		})
	cmd.Flags().StringVar(&to, "to", "", "a healthy revision from `ferry history` (default: the last healthy one)")
	return cmd
}
