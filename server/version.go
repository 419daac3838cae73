package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
)

// Version is what a ferry binary says about itself: `ferry version` for
// the client, /api/v1/version for the server.
type Version struct {
	// Version is the release, such as v0.3.0, or (devel).
	Version string `json:"version"`
	// Commit is the git commit it was built from, with "+dirty" if the
	// work tree had changes; empty if the build did not record it.
	Commit string `json:"commit,omitempty"`
	// GoVersion is the Go toolchain that built it.
	GoVersion string `json:"goVersion"`
}

// VersionOf reads a Version from build information; release, when set
// (by -ldflags at release builds), wins over the module version.
func VersionOf(bi *debug.BuildInfo, release string) Version {
	v := Version{Version: release, GoVersion: bi.GoVersion}
	if v.Version == "" {
		v.Version = bi.Main.Version
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
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

// String is "v0.3.0 (commit 1a2b3c4d5e6f, go1.26.8)".
func (v Version) String() string {
	commit := v.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if commit == "" {
		commit = "unknown"
	}
	return fmt.Sprintf("%s (commit %s, %s)", v.Version, commit, v.GoVersion)
}

// DecodeVersion reads the answer of /api/v1/version.
func DecodeVersion(r io.Reader) (*Version, error) {
	v := &Version{}
	if err := json.NewDecoder(r).Decode(v); err != nil {
		return nil, fmt.Errorf("server version: not a version answer: %w", err)
	}
	return v, nil
}

func (s *server) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.opts.Version)
}
