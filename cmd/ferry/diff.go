package main

import (
	"errors"
	"fmt"

	"github.com/fluxcd/pkg/ssa"
	"github.com/spf13/cobra"

	"ferry.dev/ferry/reconciler"
	"ferry.dev/ferry/state"
)

func newDiffCmd() *cobra.Command {
	var ref string
	cmd := &cobra.Command{
		Use:   "diff <environment>",
		Short: "Show what applying the branch tip would change (exit 0: none, 1: changes, 2: error)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			p, err := reconciler.PlanEnvironment(cmd.Context(), cfg, args[0], ref, reconciler.Options{Log: newLogger("error")})
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s at %s (%s): %d to create, %d to change, %d to prune\n",
				args[0], state.Short(p.Revision.Commit.Hash.String()), p.Digest, p.Plan.Created, p.Plan.Changed, p.Plan.Pruned)
			for _, d := range p.Plan.Objects {
				if d.Action == ssa.UnchangedAction {
					continue
				}
				verb := map[ssa.Action]string{ssa.CreatedAction: "create", ssa.ConfiguredAction: "change", ssa.DeletedAction: "prune"}[d.Action]
				fmt.Fprintf(out, "\n%s %s\n%s", verb, d.Subject, d.Unified)
			}
			if p.Plan.HasChanges() {
				return &exitError{code: 1, err: errors.New("")}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&ref, "ref", "", "branch to preview instead of the environment's branch")
	return cmd
}
