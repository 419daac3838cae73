package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// KnownHosts returns known_hosts lines for Gitea's built-in SSH server, one
// per host key, e.g. "[127.0.0.1]:38124 ssh-rsa AAAA...". Gitea generates
// its host key (data/ssh/gitea.rsa, with gitea.rsa.pub beside it) when the
// SSH server starts; KnownHosts waits briefly for it.
func (g *Gitea) KnownHosts() ([]byte, error) {
	pattern := filepath.Join(g.dir, "data", "ssh", "*.pub")
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := g.knownHosts(pattern)
		if err == nil || time.Now().After(deadline) {
			return out, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (g *Gitea) knownHosts(pattern string) ([]byte, error) {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("gitea host keys: no %s yet", pattern)
	}
	var out bytes.Buffer
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("gitea host key: %w", err)
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey(data)
		if err != nil {
			return nil, fmt.Errorf("gitea host key %s: %w", f, err)
		}
		out.WriteString(knownhosts.Line([]string{g.SSHAddr}, key) + "\n")
	}
	return out.Bytes(), nil
}
