package source

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// Credentials say how ferry authenticates to a remote. They are resolved at
// every use, so a rotated file takes effect at the next poll without a
// restart. Each secret comes from a file or a literal value, not both.
//
// HTTP(S) remotes take a token (sent as the basic-auth password) or a user
// name and password; no credentials means anonymous access. SSH remotes
// need a private key and known_hosts: host keys are always checked.
type Credentials struct {
	// TokenFile holds an HTTPS access token, sent as the basic-auth password
	// with user name "git", or Username when set.
	TokenFile string
	// Username is the HTTPS basic-auth user name.
	Username string
	// PasswordFile holds the HTTPS basic-auth password of Username.
	PasswordFile string
	// Token and Password are literal alternatives to TokenFile and
	// PasswordFile, e.g. read from a Kubernetes Secret or the environment.
	Token, Password string
	// SSHKeyFile holds the PEM private key for SSH remotes (not encrypted).
	SSHKeyFile string
	// KnownHostsFile holds the known_hosts lines that SSH host keys are
	// checked against.
	KnownHostsFile string
	// SSHKey and KnownHosts are literal alternatives to SSHKeyFile and
	// KnownHostsFile.
	SSHKey, KnownHosts []byte
}

// auth is Credentials resolved for one operation on one remote.
type auth struct {
	method transport.AuthMethod // nil: anonymous
	// hint names the credential source to check when the remote refuses it.
	hint string
	// secrets must never appear in an error.
	secrets []string
	// hostKeyRejected is set by the SSH host key check when it refuses the
	// server's key; hostKeyHint names the known_hosts source.
	hostKeyRejected atomic.Bool
	hostKeyHint     string
}

// resolve reads the credentials for an operation on the remote at url that
// must end by deadline (zero: no deadline).
func (c Credentials) resolve(url string, deadline time.Time) (*auth, error) {
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return nil, fmt.Errorf("parse URL: %w", err)
	}
	a := &auth{}
	if ep.Password != "" {
		a.secrets = append(a.secrets, ep.Password)
	}
	switch ep.Protocol {
	case "http", "https":
		if c.SSHKeyFile != "" || len(c.SSHKey) > 0 {
			return nil, fmt.Errorf("an SSH key is set for a %s URL: %w", ep.Protocol, ErrAuth)
		}
		return a, c.resolveHTTP(a)
	case "ssh":
		if c.TokenFile != "" || c.Token != "" || c.PasswordFile != "" || c.Password != "" {
			return nil, fmt.Errorf("a token or password is set for an SSH URL: %w", ErrAuth)
		}
		return a, c.resolveSSH(a, ep, deadline)
	case "file":
		return a, nil
	default:
		return nil, fmt.Errorf("unsupported protocol %q (want https, http, ssh or file)", ep.Protocol)
	}
}

func (c Credentials) resolveHTTP(a *auth) error {
	token, tokenSrc, err := secret("token", c.TokenFile, c.Token, true)
	if err != nil {
		return err
	}
	password, passwordSrc, err := secret("password", c.PasswordFile, c.Password, false)
	if err != nil {
		return err
	}
	user := c.Username
	switch {
	case token != "" && password != "":
		return fmt.Errorf("both a token and a password are set; keep one: %w", ErrAuth)
	case token != "":
		if user == "" {
			user = "git"
		}
		a.method = &githttp.BasicAuth{Username: user, Password: token}
		a.hint = "check the " + tokenSrc
		a.secrets = append(a.secrets, token)
	case password != "":
		if user == "" {
			return fmt.Errorf("a password is set without a user name: %w", ErrAuth)
		}
		a.method = &githttp.BasicAuth{Username: user, Password: password}
		a.hint = fmt.Sprintf("check user %q and the %s", user, passwordSrc)
		a.secrets = append(a.secrets, password)
	case user != "":
		return fmt.Errorf("user %q is set without a token or password: %w", user, ErrAuth)
	default:
		a.hint = "no credentials are configured; set a token, a password or an SSH key"
	}
	return nil
}

// stamp is a digest of the credential files' contents, to notice a
// rotated credential; literal credentials do not change.
func (c Credentials) stamp() string {
	h := sha256.New()
	for _, f := range []string{c.TokenFile, c.PasswordFile, c.SSHKeyFile, c.KnownHostsFile} {
		if f == "" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			data = []byte("unreadable: " + err.Error())
		}
		fmt.Fprintf(h, "%s %d\n", f, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// secret reads a secret from file or takes the literal value; what says
// which kind for messages. src describes where it came from, for hints.
func secret(what, file, literal string, trimSpace bool) (value, src string, err error) {
	switch {
	case file != "" && literal != "":
		return "", "", fmt.Errorf("both a %s file and a literal %s are set; keep one: %w", what, what, ErrAuth)
	case literal != "":
		return literal, "configured " + what, nil
	case file == "":
		return "", "", nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", "", fmt.Errorf("read %s file: %w: %w", what, ErrAuth, err)
	}
	// Files usually end with a newline (echo, editors); the secret does not.
	value = strings.TrimRight(string(data), "\r\n")
	if trimSpace {
		value = strings.TrimSpace(value)
	}
	if value == "" {
		return "", "", fmt.Errorf("%s file %s is empty: %w", what, file, ErrAuth)
	}
	return value, fmt.Sprintf("%s in %s", what, file), nil
}
