package source

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

func TestCredentialsResolveHTTP(t *testing.T) {
	dir := t.TempDir()
	tokenFile := writeFile(t, filepath.Join(dir, "token"), "  tok-file \n")
	passwordFile := writeFile(t, filepath.Join(dir, "password"), " pass word \r\n")
	emptyFile := writeFile(t, filepath.Join(dir, "empty"), "\n")
	const url = "https://git.example.com/org/app.git"

	cases := []struct {
		name     string
		creds    Credentials
		user     string // "": anonymous
		password string
		hint     string // resolved hint, or what the error says
		err      error
	}{
		{"anonymous", Credentials{}, "", "", "no credentials are configured", nil},
		{"token file", Credentials{TokenFile: tokenFile}, "git", "tok-file", "check the token in " + tokenFile, nil},
		{"token file with user", Credentials{TokenFile: tokenFile, Username: "bot"}, "bot", "tok-file", "check the token in " + tokenFile, nil},
		{"literal token", Credentials{Token: "tok"}, "git", "tok", "check the configured token", nil},
		{"password file", Credentials{Username: "bot", PasswordFile: passwordFile}, "bot", " pass word ", `check user "bot" and the password in ` + passwordFile, nil},
		{"literal password", Credentials{Username: "bot", Password: "pw"}, "bot", "pw", `check user "bot" and the configured password`, nil},
		{"missing token file", Credentials{TokenFile: dir + "/gone"}, "", "", dir + "/gone", ErrAuth},
		{"empty token file", Credentials{TokenFile: emptyFile}, "", "", "token file " + emptyFile + " is empty", ErrAuth},
		{"token file and literal", Credentials{TokenFile: tokenFile, Token: "x"}, "", "", "keep one", ErrAuth},
		{"token and password", Credentials{Token: "x", Username: "bot", Password: "y"}, "", "", "keep one", ErrAuth},
		{"password without user", Credentials{Password: "y"}, "", "", "without a user name", ErrAuth},
		{"user alone", Credentials{Username: "bot"}, "", "", "without a token or password", ErrAuth},
		{"SSH key for HTTPS", Credentials{SSHKey: []byte("k")}, "", "", "SSH key is set for a https URL", ErrAuth},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := tc.creds.resolve(url, time.Time{})
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.hint) {
					t.Fatalf("err = %v, want %v saying %q", err, tc.err, tc.hint)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(a.hint, tc.hint) {
				t.Errorf("hint %q, want %q", a.hint, tc.hint)
			}
			if tc.user == "" {
				if a.method != nil {
					t.Fatalf("method %v, want anonymous", a.method)
				}
				return
			}
			basic, ok := a.method.(*githttp.BasicAuth)
			if !ok || basic.Username != tc.user || basic.Password != tc.password {
				t.Fatalf("method %#v, want basic %s:%s", a.method, tc.user, tc.password)
			}
			if len(a.secrets) != 1 || a.secrets[0] != tc.password {
				t.Fatalf("secrets %q", a.secrets)
			}
		})
	}
}

func TestCredentialsResolveURLs(t *testing.T) {
	a, err := Credentials{}.resolve("https://bot:url-secret@git.example.com/org/app.git", time.Time{})
	if err != nil || len(a.secrets) != 1 || a.secrets[0] != "url-secret" {
		t.Fatalf("password in URL: %v, secrets %q", err, a.secrets)
	}
	if _, err := (Credentials{Token: "x"}).resolve("file:///srv/app.git", time.Time{}); err != nil {
		t.Fatalf("file URL: %v", err)
	}
	if _, err := (Credentials{}).resolve("git://git.example.com/app.git", time.Time{}); err == nil || !strings.Contains(err.Error(), `unsupported protocol "git"`) {
		t.Fatalf("git protocol: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://git.example.com/org/app.git":            "https://git.example.com/org/app.git",
		"https://bot:s3cret@git.example.com/org/app.git": "https://bot:xxxxx@git.example.com/org/app.git",
		"ssh://git@127.0.0.1:2222/org/app.git":           "ssh://git@127.0.0.1:2222/org/app.git",
		"git@github.com:org/app.git":                     "git@github.com:org/app.git",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
