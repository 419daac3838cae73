package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"ferry.dev/ferry/config"
)

// overrideEnv lists every variable Load reads.
var overrideEnv = []string{
	"FERRY_NAMESPACE", "FERRY_SERVER_ADDR", "FERRY_SERVER_EXTERNAL_URL",
	"FERRY_REPORT_PROVIDER", "FERRY_REPORT_URL", "FERRY_REPORT_TOKEN_FILE",
	"FERRY_REPORT_WEBHOOK_SECRET_FILE", "FERRY_LOG_LEVEL",
}

// clearEnv unsets, for the test, the variables Load reads; Load treats an
// empty variable as unset.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, name := range overrideEnv {
		t.Setenv(name, "")
	}
}

// writeConfig writes data to a file in a temporary directory and returns
// its path.
func writeConfig(t *testing.T, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ferry.yaml")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const loadYAML = `
environments:
  - name: dev
    source: {url: https://git.example.com/app.git, branch: main, path: envs/dev}
report: {provider: github, tokenFile: /run/file-token}
server: {addr: ":8000"}
namespace: from-file
log: {level: warn}
`

func TestLoadFileAlone(t *testing.T) {
	clearEnv(t)
	data, err := os.ReadFile("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.Load("testdata/design.yaml", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want, err := config.Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load =\n%+v\nParse =\n%+v", got, want)
	}
}

func TestLoadEnvOverridesFile(t *testing.T) {
	clearEnv(t)
	t.Setenv("FERRY_NAMESPACE", "from-env")
	t.Setenv("FERRY_SERVER_ADDR", "127.0.0.1:9999")
	t.Setenv("FERRY_SERVER_EXTERNAL_URL", "https://ferry.example.com")
	t.Setenv("FERRY_REPORT_PROVIDER", "gitea")
	t.Setenv("FERRY_REPORT_URL", "https://gitea.example.com")
	t.Setenv("FERRY_REPORT_TOKEN_FILE", "/run/env-token")
	t.Setenv("FERRY_REPORT_WEBHOOK_SECRET_FILE", "/run/env-secret")
	t.Setenv("FERRY_LOG_LEVEL", "debug")
	c, err := config.Load(writeConfig(t, loadYAML), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Namespace != "from-env" || c.Log.Level != "debug" {
		t.Errorf("namespace %q, log level %q; want the environment's", c.Namespace, c.Log.Level)
	}
	if want := (config.Server{Addr: "127.0.0.1:9999", ExternalURL: "https://ferry.example.com"}); c.Server != want {
		t.Errorf("server = %+v, want %+v", c.Server, want)
	}
	want := config.Report{Provider: "gitea", URL: "https://gitea.example.com", TokenFile: "/run/env-token", WebhookSecretFile: "/run/env-secret"}
	if c.Report != want {
		t.Errorf("report = %+v, want %+v", c.Report, want)
	}
}

func TestLoadFlagsOverrideEnv(t *testing.T) {
	clearEnv(t)
	t.Setenv("FERRY_NAMESPACE", "from-env")
	t.Setenv("FERRY_LOG_LEVEL", "debug")
	fs := pflag.NewFlagSet("ferry", pflag.ContinueOnError)
	config.AddFlags(fs)
	if err := fs.Parse([]string{"--namespace=from-flag", "--report-token-file=/run/flag-token"}); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(writeConfig(t, loadYAML), fs)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	tests := []struct{ name, got, want string }{
		{"namespace (flag over env)", c.Namespace, "from-flag"},
		{"report.tokenFile (flag over file)", c.Report.TokenFile, "/run/flag-token"},
		{"log.level (env, flag not given)", c.Log.Level, "debug"},
		{"server.addr (file, neither given)", c.Server.Addr, ":8000"},
		{"report.provider (file)", c.Report.Provider, "github"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

// TestLoadForeignFlagSet pins that Load reads only the flags it knows and
// that a flag set may lack some of them.
func TestLoadForeignFlagSet(t *testing.T) {
	clearEnv(t)
	fs := pflag.NewFlagSet("ferry", pflag.ContinueOnError)
	fs.String("log-level", "", "")
	fs.Bool("verbose", false, "")
	if err := fs.Parse([]string{"--log-level=error", "--verbose"}); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(writeConfig(t, loadYAML), fs)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Log.Level != "error" || c.Namespace != "from-file" {
		t.Errorf("log level %q, namespace %q; want error, from-file", c.Log.Level, c.Namespace)
	}
}

func TestAddFlags(t *testing.T) {
	fs := pflag.NewFlagSet("ferry", pflag.ContinueOnError)
	config.AddFlags(fs)
	for _, name := range []string{
		"namespace", "server-addr", "server-external-url", "report-provider",
		"report-url", "report-token-file", "report-webhook-secret-file", "log-level",
	} {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("--%s not registered", name)
			continue
		}
		if f.DefValue != "" {
			t.Errorf("--%s defaults to %q; an unset flag must not override the file", name, f.DefValue)
		}
	}
}

// TestLoadProblemsNameTheirSource pins that a bad value from a variable or
// flag says where it came from, since the file does not show it.
func TestLoadProblemsNameTheirSource(t *testing.T) {
	clearEnv(t)
	t.Setenv("FERRY_REPORT_PROVIDER", "bitbucket")
	fs := pflag.NewFlagSet("ferry", pflag.ContinueOnError)
	config.AddFlags(fs)
	if err := fs.Parse([]string{"--log-level=loud"}); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, loadYAML+"unknown: 1\n")
	c, err := config.Load(path, fs)
	if c != nil {
		t.Fatalf("Load returned a config with error %v", err)
	}
	checkLines(t, err, "config "+path+":",
		`unknown: unknown field; known fields: environments, report, server, namespace, log`,
		`report.provider: unknown provider "bitbucket"; use github, gitlab, gitea or webhook, or leave it empty to report nothing (set by FERRY_REPORT_PROVIDER)`,
		`log.level: unknown level "loud"; use debug, info, warn or error (set by --log-level)`,
	)
	checkProblems(t, errorsAfterHeader(err), []problem{
		{"unknown", "unknown field"},
		{"report.provider", "(set by FERRY_REPORT_PROVIDER)"},
		{"log.level", "(set by --log-level)"},
	})
}

func TestLoadBadFile(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	notYAML := writeConfig(t, "environments: [\n")
	tests := []struct {
		name, path, want string
	}{
		{"no path", "", "config: no file given"},
		{"missing", missing, "config: open " + missing + ": no such file or directory"},
		{"directory", dir, "config: read " + dir + ": is a directory"},
		{"not YAML", notYAML, "config " + notYAML + ": not YAML: yaml: line "},
		{"two documents", writeConfig(t, "namespace: a\n---\nnamespace: b\n"), "holds more than one YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(tt.path, nil)
			if err == nil || c != nil {
				t.Fatalf("Load(%q) = %v, %v; want an error", tt.path, c, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load(%q) = %q, want it to contain %q", tt.path, err, tt.want)
			}
			if tt.path != "" && !strings.Contains(err.Error(), tt.path) {
				t.Errorf("Load(%q) = %q: the error must name the file", tt.path, err)
			}
		})
	}
}

// checkLines asserts that err prints exactly lines.
func checkLines(t *testing.T, err error, lines ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if got, want := err.Error(), strings.Join(lines, "\n"); got != want {
		t.Errorf("error =\n%s\nwant\n%s", got, want)
	}
}

// errorsAfterHeader unwraps Load's "config <path>:" header.
func errorsAfterHeader(err error) error {
	if u, ok := err.(interface{ Unwrap() error }); ok {
		return u.Unwrap()
	}
	return err
}
