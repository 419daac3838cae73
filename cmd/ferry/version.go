package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at release builds with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build information is used.
var version = ""

// versionInfo is what `ferry version` prints about one ferry binary.
type versionInfo struct {
	// Version is the release, such as v0.3.0, or (devel).
	Version string `json:"version"`
	// Commit is the git commit it was built from, with "+dirty" if the
	// work tree had changes; empty if the build did not record it.
	Commit string `json:"commit,omitempty"`
	// GoVersion is the Go toolchain that built it.
	GoVersion string `json:"goVersion"`
}

// clientVersion reads the running binary's version from its build
// information.
func clientVersion() versionInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return versionInfo{Version: orDevel(version), GoVersion: "unknown"}
	}
	return versionOf(bi, version)
}

// versionOf turns build information into a versionInfo; release, when
// set, wins over the module version.
func versionOf(bi *debug.BuildInfo, release string) versionInfo {
	v := versionInfo{Version: release, GoVersion: bi.GoVersion}
	if v.Version == "" {
		v.Version = bi.Main.Version
	}
	v.Version = orDevel(v.Version)
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && v.Commit != "" {
		v.Commit += "+dirty"
	}
	return v
}

func orDevel(v string) string {
	if v == "" {
		return "(devel)"
	}
	return v
}

// String is "v0.3.0 (commit 1a2b3c4d, go1.26.8)".
func (v versionInfo) String() string {
	commit := v.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if commit == "" {
		commit = "unknown"
	}
	return fmt.Sprintf("%s (commit %s, %s)", v.Version, commit, v.GoVersion)
}

// writeVersions writes the client's version and, if server is not nil,
// the server's, as lines or as one JSON object.
func writeVersions(w io.Writer, format string, client versionInfo, server *versionInfo) error {
	if format == outputJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Client versionInfo  `json:"client"`
			Server *versionInfo `json:"server,omitempty"`
		}{client, server})
	}
	if _, err := fmt.Fprintf(w, "client: %s\n", client); err != nil {
		return err
	}
	if server != nil {
		_, err := fmt.Fprintf(w, "server: %s\n", *server)
		return err
	}
	return nil
}

func newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print ferry's version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != outputTable && output != outputJSON {
				return &exitError{code: 2, err: fmt.Errorf("output format %q: use json, or leave -o out", output)}
			}
			return writeVersions(cmd.OutOrStdout(), output, clientVersion(), nil)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json")
	return cmd
}
