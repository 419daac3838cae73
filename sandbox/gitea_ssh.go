package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"k8s.io/apimachinery/pkg/util/wait"
)

// KnownHosts returns known_hosts lines for Gitea's built-in SSH server, one
// per host key, e.g. "[127.0.0.1]:38124 ssh-rsa AAAA...". Gitea generates
// its host key (data/ssh/gitea.rsa, with gitea.rsa.pub beside it) when the
// SSH server starts; KnownHosts waits up to 30 seconds for it.
func (g *Gitea) KnownHosts(ctx context.Context) ([]byte, error) {
	pattern := filepath.Join(g.dir, "data", "ssh", "*.pub")
	var out []byte
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		out, last = g.knownHosts(pattern)
		return last == nil, nil
	})
	if err != nil {
		return nil, errors.Join(err, last)
	}
	return out, nil
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
