package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/reconciler"
	"ferry.dev/ferry/server"
	"ferry.dev/ferry/state"
)

// rowOf is env as a row of `ferry status`.
func rowOf(e state.Environment) statusRow {
	r := statusRow{Name: e.Name, Branch: e.Branch, Phase: string(e.Phase), SourceError: e.SourceError}
	if r.Phase == "" {
		r.Phase = "Unknown"
	}
	if e.Phase == state.PhaseWaiting && e.Message != "" {
		r.Phase += ": " + e.Message
	}
	if e.Target != nil {
		r.Tip = e.Target.Commit
	}
	if e.LastApplied != nil {
		r.Applied = e.LastApplied.Commit
	}
	if e.LastHealthy != nil {
		r.Healthy = e.LastHealthy.Commit
	}
	var newest *state.Verdict
	if len(e.History) > 0 {
		newest = &e.History[0]
		r.Verdict = string(newest.Outcome)
		if newest.Reason != "" && newest.Outcome != state.OutcomeHealthy {
			r.Verdict += ": " + newest.Reason
		}
	}
	r.Next = nextOf(e, newest)
	return r
}

// nextOf says what happens next in env: a suspension, a dependency
// waited for, promotions waiting (for a required environment or the
// window), or the decision taken on the newest verdict.
func nextOf(e state.Environment, newest *state.Verdict) string {
	switch {
	case e.Suspended != nil:
		return e.Suspended.String()
	case e.Phase == state.PhaseWaiting:
		return "apply when " + e.Message + " turns healthy"
	case e.Promote != nil:
		return "promotion requested by " + e.Promote.By
	case newest == nil:
		return ""
	}
	var waiting []string
	for _, h := range newest.Hops {
		if h.Action.IsZero() {
			waiting = append(waiting, "promote to "+h.To+" "+h.Waiting)
		}
	}
	if len(waiting) > 0 {
		return strings.Join(waiting, "; ")
	}
	next := ""
	if !newest.Action.IsZero() && newest.Action.Kind != state.ActionNone {
		next = newest.Action.String()
	}
	if newest.Stopped != "" {
		next = strings.TrimPrefix(next+"; "+newest.Stopped, "; ")
	}
	return next
}

// whoAmI names the person running a command, for suspensions and
// promotions: $FERRY_USER, else the login name and host.
func whoAmI() string {
	if u := os.Getenv("FERRY_USER"); u != "" {
		return u
	}
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	return name
}

func newStatusCmd() *cobra.Command {
	var output string
	var watch bool
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "status [environment]",
		Short: "Show each environment: branch tip, applied revision, phase, verdict, last healthy revision, what is next",
		Args:  cobra.MaximumNArgs(1),
		RunE: withConfig(func(cmd *cobra.Command, cfg *config.Config, args []string) error {
			if err := checkOutput(output); err != nil {
				return &exitError{code: 2, err: err}
			}
			env := ""
			if len(args) == 1 {
				env = args[0]
			}
			look := func(ctx context.Context) ([]statusRow, error) {
				envs, err := reconciler.LoadEnvironments(ctx, cfg, quietOptions())
				if err != nil {
					return nil, err
				}
				rows := make([]statusRow, len(envs))
				for i, e := range envs {
					rows[i] = rowOf(e)
				}
				return selectRows(rows, env)
			}
			rows, err := look(cmd.Context())
			if err != nil {
				return err
			}
			if !watch {
				return writeStatus(cmd.OutOrStdout(), output, rows)
			}
			var sw statusWatcher
			for {
				if err := sw.write(cmd.OutOrStdout(), output, rows); err != nil {
					return err
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(every):
				}
				if rows, err = look(cmd.Context()); err != nil {
					if cmd.Context().Err() != nil {
						return nil
					}
					return err
				}
			}
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json or yaml (default: a table)")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "keep watching and print each change")
	cmd.Flags().DurationVar(&every, "interval", time.Second, "how often --watch reads the state")
	return cmd
}

// running reports whether phase is a step of a reconcile under way: the
// pass that handled a request may have pushed a commit (a revert) that is
// being reconciled already, and --wait prints where that ends.
func running(p state.Phase) bool {
	switch p {
	case state.PhaseFetching, state.PhaseRendering, state.PhaseApplying, state.PhasePruning, state.PhaseVerifying:
		return true
	}
	return false
}

// waitHandled waits until env's state shows the request handled and no
// reconcile under way, and returns that state.
func waitHandled(ctx context.Context, cfg *config.Config, env, request string, timeout time.Duration) (*state.State, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		st, err := reconciler.LoadState(ctx, cfg, env, quietOptions())
		if err == nil && st.Handled >= request && !running(st.Phase) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: no ferry handled the request within %s; is `ferry run` up? (%w)", env, timeout, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func newReconcileCmd() *cobra.Command {
	var timeout time.Duration
	cmd := envCommand("reconcile <environment>",
		"Poll the branch and reconcile now, wait for the verdict and print it (exit 1 if it failed)",
		func(cmd *cobra.Command, cfg *config.Config, env string) error {
			at, err := reconciler.RequestReconcile(cmd.Context(), cfg, env, quietOptions())
			if err != nil {
				return err
			}
			st, err := waitHandled(cmd.Context(), cfg, env, at, timeout)
			if err != nil {
				return err
			}
			return printOutcome(cmd.OutOrStdout(), env, st)
		})
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for the verdict")
	return cmd
}

// printOutcome prints where env stands after a pass: its phase, and the
// verdict on its tip; a failed verdict is exit code 1.
func printOutcome(w io.Writer, env string, st *state.State) error {
	row := rowOf(state.Environment{Name: env, State: *st})
	fmt.Fprintf(w, "%s: %s", env, row.Phase)
	if st.Target != nil {
		fmt.Fprintf(w, " at %s", state.Short(st.Target.Commit))
	}
	fmt.Fprintln(w)
	if st.Target != nil {
		if v, ok := st.VerdictFor(st.Target.Commit); ok {
			fmt.Fprintf(w, "verdict: %s", v.Outcome)
			if v.Reason != "" {
				fmt.Fprintf(w, " (%s)", v.Reason)
			}
			fmt.Fprintln(w)
			if row.Next != "" {
				fmt.Fprintf(w, "next: %s\n", row.Next)
			}
			if v.Outcome.Failed() || v.Outcome == state.OutcomeQuarantined {
				return &exitError{code: 1, err: errors.New("")}
			}
			return nil
		}
	}
	if row.Next != "" {
		fmt.Fprintf(w, "next: %s\n", row.Next)
	}
	return nil
}

func newSuspendCmd() *cobra.Command {
	var reason string
	cmd := envCommand("suspend <environment>",
		"Hands off: the environment applies, prunes, reverts and promotes nothing until resumed",
		func(cmd *cobra.Command, cfg *config.Config, env string) error {
			by := whoAmI()
			if _, err := reconciler.Suspend(cmd.Context(), cfg, env, reason, by, quietOptions()); err != nil {
				return err
			}
			s := state.Suspension{Reason: reason, By: by}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", env, s.String())
			return nil
		})
	cmd.Flags().StringVar(&reason, "reason", "", "why, shown in status, badges and commit statuses")
	return cmd
}

func newResumeCmd() *cobra.Command {
	var wait bool
	var timeout time.Duration
	cmd := envCommand("resume <environment>",
		"Lift a suspension; ferry then decides what it held",
		func(cmd *cobra.Command, cfg *config.Config, env string) error {
			at, err := reconciler.Resume(cmd.Context(), cfg, env, quietOptions())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: resumed\n", env)
			if !wait {
				return nil
			}
			st, err := waitHandled(cmd.Context(), cfg, env, at, timeout)
			if err != nil {
				return err
			}
			return printOutcome(cmd.OutOrStdout(), env, st)
		})
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the pass that follows and print its outcome")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long --wait waits")
	return cmd
}

func newPromoteCmd() *cobra.Command {
	var to string
	var now bool
	var timeout time.Duration
	cmd := envCommand("promote <environment>",
		"Promote the environment's healthy revision by hand, with the rules of automatic promotion (--now: ignore the window)",
		func(cmd *cobra.Command, cfg *config.Config, env string) error {
			at, err := reconciler.Promote(cmd.Context(), cfg, env, to, now, whoAmI(), quietOptions())
			if err != nil {
				return err
			}
			st, err := waitHandled(cmd.Context(), cfg, env, at, timeout)
			if err != nil {
				return err
			}
			if len(st.History) == 0 {
				return fmt.Errorf("%s has no verdict to promote", env)
			}
			v := st.History[0]
			for _, h := range v.Hops {
				switch {
				case !h.Action.IsZero():
					fmt.Fprintf(cmd.OutOrStdout(), "%s → %s: %s\n", env, h.To, h.Action)
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "%s → %s: %s\n", env, h.To, h.Waiting)
				}
			}
			if len(v.Hops) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s %s\n", env, state.Short(v.Commit), v.Action)
			}
			return nil
		})
	cmd.Flags().StringVar(&to, "to", "", "promote to this target only")
	cmd.Flags().BoolVar(&now, "now", false, "promote even outside the promotion window (recorded with who asked)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the promotion")
	return cmd
}

// serverVersion asks the ferry server at base for its version.
func serverVersion(ctx context.Context, base string) (*server.Version, error) {
	if base == "" {
		return nil, errors.New("no server to ask: set server.externalURL in the configuration or pass --server-url")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/api/v1/version", nil)
	if err != nil {
		return nil, fmt.Errorf("server version: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("server version: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("server version: %s answered %s", base, resp.Status)
	}
	return server.DecodeVersion(io.LimitReader(resp.Body, 1<<16))
}
