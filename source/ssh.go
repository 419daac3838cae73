package source

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshConnectTimeout bounds the TCP connect of an SSH remote when the
// operation's context has no deadline.
const sshConnectTimeout = 30 * time.Second

func (c Credentials) resolveSSH(a *auth, ep *transport.Endpoint, deadline time.Time) error {
	key, keySrc, err := material("SSH key", c.SSHKeyFile, c.SSHKey, ErrAuth)
	if err != nil {
		return err
	}
	if key == nil {
		return fmt.Errorf("an SSH URL needs an SSH key (sshKeyFile or a literal key): %w", ErrAuth)
	}
	hosts, hostsSrc, err := material("known_hosts", c.KnownHostsFile, c.KnownHosts, ErrHostKey)
	if err != nil {
		return err
	}
	if hosts == nil {
		return fmt.Errorf("an SSH URL needs known_hosts (knownHostsFile or literal lines); host keys are always checked: %w", ErrHostKey)
	}
	user := ep.User
	if user == "" {
		user = "git"
	}
	keys, err := gitssh.NewPublicKeys(user, key, "")
	if err != nil {
		return fmt.Errorf("parse the %s: %w: %w", keySrc, ErrAuth, err)
	}
	check, err := knownHostsCallback(hosts)
	if err != nil {
		return fmt.Errorf("parse the %s: %w: %w", hostsSrc, ErrHostKey, err)
	}
	port := ep.Port
	if port <= 0 {
		port = 22
	}
	hostPort := net.JoinHostPort(ep.Host, strconv.Itoa(port))
	a.hostKeyHint = fmt.Sprintf("check the %s for %s", hostsSrc, knownhosts.Normalize(hostPort))
	a.hint = fmt.Sprintf("check that the %s is allowed to read the repository as %q", keySrc, user)
	keys.HostKeyCallback = func(host string, remote net.Addr, k ssh.PublicKey) error {
		if err := check(host, remote, k); err != nil {
			a.hostKeyRejected.Store(true)
			return err
		}
		return nil
	}
	// go-git leaves HostKeyAlgorithms to us once we set a callback. Offer
	// only the algorithms known_hosts has keys of, or a server with several
	// host keys may present one we cannot check (TestHostKeyAlgorithms).
	keys.HostKeyAlgorithms = hostKeyAlgorithms(check, hostPort)
	timeout := sshConnectTimeout
	if !deadline.IsZero() {
		timeout = min(timeout, max(time.Until(deadline), time.Millisecond))
	}
	a.method = &sshAuth{PublicKeys: keys, timeout: timeout}
	return nil
}

// material reads a file or takes the literal bytes; nil when neither is
// set. Its errors wrap kind.
func material(what, file string, literal []byte, kind error) (value []byte, src string, err error) {
	switch {
	case file != "" && len(literal) > 0:
		return nil, "", fmt.Errorf("both a %s file and literal %s are set; keep one: %w", what, what, kind)
	case len(literal) > 0:
		return literal, "configured " + what, nil
	case file == "":
		return nil, "", nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, "", fmt.Errorf("read %s file: %w: %w", what, kind, err)
	}
	if len(data) == 0 {
		return nil, "", fmt.Errorf("%s file %s is empty: %w", what, file, kind)
	}
	return data, fmt.Sprintf("%s in %s", what, file), nil
}

// knownHostsCallback checks host keys against known_hosts lines.
// knownhosts reads only files, so the lines pass through a temporary one.
func knownHostsCallback(lines []byte) (ssh.HostKeyCallback, error) {
	f, err := os.CreateTemp("", "ferry-known-hosts-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(lines)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return knownhosts.New(f.Name())
}

// hostKeyAlgorithms lists the host key algorithms of the keys that check
// knows for hostPort. It asks check about a key no line can hold; the
// refusal lists the keys that would have matched.
func hostKeyAlgorithms(check ssh.HostKeyCallback, hostPort string) []string {
	var keyErr *knownhosts.KeyError
	if err := check(hostPort, &net.TCPAddr{IP: net.IPv4zero}, probeKey{}); !errors.As(err, &keyErr) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(names ...string) {
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				algos = append(algos, n)
			}
		}
	}
	for _, k := range keyErr.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			// An RSA key signs with SHA-2 too; servers prefer those.
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos
}

// probeKey is a public key that matches no known_hosts line.
type probeKey struct{}

func (probeKey) Type() string                        { return "ferry-probe" }
func (probeKey) Marshal() []byte                     { return []byte("ferry-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe key") }

// sshAuth is go-git's public key auth with a connect timeout, which go-git
// otherwise leaves unbounded.
type sshAuth struct {
	*gitssh.PublicKeys
	timeout time.Duration
}

// ClientConfig is the SSH client configuration of the public keys with the
// connect timeout set.
func (a *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	cfg, err := a.PublicKeys.ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = a.timeout
	return cfg, nil
}
