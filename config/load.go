package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// setting is a top-level value that an environment variable or a flag may
// override.
type setting struct {
	key   string // path in the file
	env   string
	flag  string
	usage string
	field func(*Config) *string
}

// settings are the overridable values. Environments are only read from the
// file: a list of structures has no sensible spelling as variables.
var settings = []setting{
	{"namespace", "FERRY_NAMESPACE", "namespace",
		"ferry's own namespace, for its state ConfigMaps (default " + DefaultNamespace + ")",
		func(c *Config) *string { return &c.Namespace }},
	{"server.addr", "FERRY_SERVER_ADDR", "server-addr",
		"address ferry's HTTP server listens on (default " + DefaultAddr + ")",
		func(c *Config) *string { return &c.Server.Addr }},
	{"server.externalURL", "FERRY_SERVER_EXTERNAL_URL", "server-external-url",
		"URL where people reach ferry, for links in commit statuses",
		func(c *Config) *string { return &c.Server.ExternalURL }},
	{"report.provider", "FERRY_REPORT_PROVIDER", "report-provider",
		"where commit statuses go: github, gitlab, gitea or webhook",
		func(c *Config) *string { return &c.Report.Provider }},
	{"report.url", "FERRY_REPORT_URL", "report-url",
		"forge API base URL, or the URL of the status webhook",
		func(c *Config) *string { return &c.Report.URL }},
	{"report.tokenFile", "FERRY_REPORT_TOKEN_FILE", "report-token-file",
		"file holding the forge API token",
		func(c *Config) *string { return &c.Report.TokenFile }},
	{"report.webhookSecretFile", "FERRY_REPORT_WEBHOOK_SECRET_FILE", "report-webhook-secret-file",
		"file holding the webhook HMAC secret",
		func(c *Config) *string { return &c.Report.WebhookSecretFile }},
	{"log.level", "FERRY_LOG_LEVEL", "log-level",
		"log level: debug, info, warn or error (default " + DefaultLogLevel + ")",
		func(c *Config) *string { return &c.Log.Level }},
}

// AddFlags registers on fs the flags [Load] reads: --namespace,
// --server-addr, --server-external-url, --report-provider, --report-url,
// --report-token-file, --report-webhook-secret-file and --log-level. Each
// overrides the file's value and its environment variable (FERRY_NAMESPACE,
// FERRY_SERVER_ADDR, FERRY_SERVER_EXTERNAL_URL, FERRY_REPORT_PROVIDER,
// FERRY_REPORT_URL, FERRY_REPORT_TOKEN_FILE, FERRY_REPORT_WEBHOOK_SECRET_FILE,
// FERRY_LOG_LEVEL) when given.
func AddFlags(fs *pflag.FlagSet) {
	for _, s := range settings {
		fs.String(s.flag, "", s.usage+" [$"+s.env+"]")
	}
}

// Load reads the configuration file at path, overrides its top-level
// settings with FERRY_* environment variables and then with the flags of
// flags that were given (see [AddFlags]; flags may be nil or hold only some
// of them), applies defaults and validates the result. An empty variable
// counts as unset.
//
// On any problem Load returns no Config and an error naming the file; an
// invalid configuration gives a header line followed by one [*FieldError]
// per line.
func Load(path string, flags *pflag.FlagSet) (*Config, error) {
	if path == "" {
		return nil, errors.New("config: no file given: pass the path of ferry's YAML configuration")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, problems, err := decodeFile(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	origins, err := override(c, flags)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	problems = merge(problems, c.problems())
	for _, p := range problems {
		var fe *FieldError
		if errors.As(p, &fe) && origins[fe.Path] != "" {
			fe.Reason += " (set by " + origins[fe.Path] + ")"
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("config %s:\n%w", path, errors.Join(problems...))
	}
	return c, nil
}

// Parse reads a configuration from data, without environment variables or
// flags, applies defaults and validates it like [Load].
func Parse(data []byte) (*Config, error) {
	c, problems, err := decodeFile(data)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(merge(problems, c.problems())...); err != nil {
		return nil, err
	}
	return c, nil
}

// override sets c's overridable values from the environment and flags
// through viper, which gives a given flag precedence over a variable. It
// returns where each overridden path got its value, for error messages.
func override(c *Config, flags *pflag.FlagSet) (map[string]string, error) {
	v := viper.New()
	for _, s := range settings {
		if err := v.BindEnv(s.key, s.env); err != nil {
			return nil, fmt.Errorf("bind %s: %w", s.env, err)
		}
		if flags == nil {
			continue
		}
		if f := flags.Lookup(s.flag); f != nil {
			if err := v.BindPFlag(s.key, f); err != nil {
				return nil, fmt.Errorf("bind --%s: %w", s.flag, err)
			}
		}
	}
	origins := map[string]string{}
	for _, s := range settings {
		if !v.IsSet(s.key) {
			continue
		}
		*s.field(c) = v.GetString(s.key)
		origins[s.key] = s.env
		if flags != nil {
			if f := flags.Lookup(s.flag); f != nil && f.Changed {
				origins[s.key] = "--" + s.flag
			}
		}
	}
	return origins, nil
}

// merge appends the validation problems to the decoding problems, leaving
// out those about a field (or inside a field) whose value could not be
// decoded: that field holds its default, and one report of it is enough.
func merge(decoding, validation []error) []error {
	var broken []string
	for _, err := range decoding {
		var fe *FieldError
		if errors.As(err, &fe) {
			broken = append(broken, fe.Path)
		}
	}
	out := decoding
	for _, err := range validation {
		var fe *FieldError
		if errors.As(err, &fe) && under(fe.Path, broken) {
			continue
		}
		out = append(out, err)
	}
	return out
}

// under reports whether path is one of roots or inside one of them; the
// empty root is the whole configuration.
func under(path string, roots []string) bool {
	for _, r := range roots {
		if r == "" || path == r || strings.HasPrefix(path, r+".") || strings.HasPrefix(path, r+"[") {
			return true
		}
	}
	return false
}
