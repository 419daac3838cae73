package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/server"
)

// version is set at release builds with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build information is used.
var version = ""

// clientVersion reads the running binary's version from its build
// information.
func clientVersion() server.Version {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{GoVersion: "unknown"}
	}
	return server.VersionOf(bi, version)
}

// writeVersions writes the client's version and, if srv is not nil, the
// server's, as lines or as one JSON object.
func writeVersions(w io.Writer, format string, client server.Version, srv *server.Version) error {
	if format == outputJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Client server.Version  `json:"client"`
			Server *server.Version `json:"server,omitempty"`
		}{client, srv})
	}
	if _, err := fmt.Fprintf(w, "client: %s\n", client); err != nil {
		return err
	}
	if srv != nil {
		_, err := fmt.Fprintf(w, "server: %s\n", *srv)
		return err
	}
	return nil
}

func newVersionCmd() *cobra.Command {
	var output, serverURL string
	var askServer bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print ferry's version, commit and Go version (--server: also those of the running ferry)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != outputTable && output != outputJSON {
				return &exitError{code: 2, err: fmt.Errorf("output format %q: use json, or leave -o out", output)}
			}
			var srv *server.Version
			if askServer {
				if serverURL == "" {
					cfg, err := loadConfig(cmd)
					if err != nil {
						return &exitError{code: 2, err: err}
					}
					serverURL = serverBase(cfg)
				}
				v, err := serverVersion(cmd.Context(), serverURL)
				if err != nil {
					return err
				}
				srv = v
			}
			return writeVersions(cmd.OutOrStdout(), output, clientVersion(), srv)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json")
	cmd.Flags().BoolVar(&askServer, "server", false, "also ask the running ferry for its version")
	cmd.Flags().StringVar(&serverURL, "server-url", "", "the running ferry's URL (default: server.externalURL of the configuration)")
	return cmd
}

// serverBase is where the CLI reaches the running ferry: its external URL.
func serverBase(cfg *config.Config) string { return cfg.Server.ExternalURL }
