package main

import (
	"bytes"
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"ferry.dev/ferry/server"
)

func TestVersionOf(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "ferry.dev/ferry", Version: "v0.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "1a2b3c4d5e6f7a8b9c0d"}, {Key: "vcs.modified", Value: "true"}}}
	got := server.VersionOf(bi, "")
	if got != (server.Version{Version: "v0.4.0", Commit: "1a2b3c4d5e6f7a8b9c0d+dirty", GoVersion: "go1.26.8"}) {
		t.Errorf("versionOf = %+v", got)
	}
	if s := got.String(); s != "v0.4.0 (commit 1a2b3c4d5e6f, go1.26.8)" {
		t.Errorf("String() = %q", s)
	}
	if got := server.VersionOf(bi, "v1.0.0"); got.Version != "v1.0.0" {
		t.Errorf("a release version = %q, want v1.0.0", got.Version)
	}
	bare := server.VersionOf(&debug.BuildInfo{GoVersion: "go1.26.8"}, "")
	if bare.String() != "(devel) (commit unknown, go1.26.8)" {
		t.Errorf("no build settings: %q", bare.String())
	}
}

func TestVersionCommand(t *testing.T) {
	var b bytes.Buffer
	root := newRoot()
	root.SetOut(&b)
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "client: ") || !strings.Contains(b.String(), runtime.Version()) {
		t.Errorf("ferry version = %q; want the client line with %s", b.String(), runtime.Version())
	}
	b.Reset()
	root = newRoot()
	root.SetOut(&b)
	root.SetArgs([]string{"version", "-o", "json"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Client server.Version `json:"client"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil || got.Client.GoVersion != runtime.Version() || got.Client.Version == "" {
		t.Errorf("ferry version -o json = %q (%v)", b.String(), err)
	}
}
