package source

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// testKey is a fresh ed25519 private key in OpenSSH PEM form.
func testKey(t *testing.T) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

func signer(t *testing.T, pemKey []byte) ssh.Signer {
	t.Helper()
	s, err := ssh.ParsePrivateKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// authorizedKey is the "<type> <base64>" form of a private key's public key.
func authorizedKey(t *testing.T, pemKey []byte) string {
	t.Helper()
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer(t, pemKey).PublicKey())))
}

func rsaHostKey(t *testing.T) ssh.Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func knownHostsLine(addr string, key ssh.PublicKey) string {
	return fmt.Sprintf("[127.0.0.1]:%s %s", addr[strings.LastIndexByte(addr, ':')+1:], strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))))
}

// serveSSH serves the repositories under root over SSH on loopback, the way
// a forge does: git-upload-pack for the path of the exec request, for the
// client key authorized only. It returns the server's address.
func serveSSH(t *testing.T, root string, authorized ssh.PublicKey, hostKeys ...ssh.Signer) string {
	t.Helper()
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if bytes.Equal(k.Marshal(), authorized.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("unknown key")
	}}
	for _, k := range hostKeys {
		cfg.AddHostKey(k)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { serveSSHConn(conn, cfg, root) })
		}
	})
	return l.Addr().String()
}

func serveSSHConn(conn net.Conn, cfg *ssh.ServerConfig, root string) {
	defer conn.Close()
	_, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, reqs, err := nc.Accept()
		if err != nil {
			return
		}
		go func() {
			defer ch.Close()
			for req := range reqs {
				if req.Type != "exec" || len(req.Payload) < 4 {
					_ = req.Reply(false, nil)
					continue
				}
				command := string(req.Payload[4:])
				name, path, _ := strings.Cut(command, " ")
				if name != "git-upload-pack" {
					_ = req.Reply(false, nil)
					continue
				}
				_ = req.Reply(true, nil)
				cmd := exec.Command("git-upload-pack", filepath.Join(root, strings.Trim(path, "'")))
				cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
				status := uint32(0)
				if err := cmd.Run(); err != nil {
					status = 1
				}
				_, _ = ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, status))
				return
			}
		}()
	}
}

// TestSSH fetches over SSH with a key and known_hosts, and pins the host key
// and key refusals.
func TestSSH(t *testing.T) {
	rem := newRemote(t)
	sha := rem.commit(map[string]string{"a.yaml": "1\n"}, "first")
	dir := t.TempDir()
	clientKey := testKey(t)
	keyFile := writeFile(t, filepath.Join(dir, "id"), string(clientKey))
	hostKey := signer(t, testKey(t))
	addr := serveSSH(t, filepath.Dir(rem.bare), signer(t, clientKey).PublicKey(), hostKey)
	url := fmt.Sprintf("ssh://git@%s/%s", addr, filepath.Base(rem.bare))
	goodHosts := writeFile(t, filepath.Join(dir, "known_hosts"), knownHostsLine(addr, hostKey.PublicKey())+"\n")
	wrongHosts := writeFile(t, filepath.Join(dir, "wrong_hosts"), knownHostsLine(addr, signer(t, testKey(t)).PublicKey())+"\n")
	otherHost := writeFile(t, filepath.Join(dir, "other_host"), "[127.0.0.2]:22 "+authorizedKey(t, testKey(t))+"\n")
	strangerKey := writeFile(t, filepath.Join(dir, "stranger"), string(testKey(t)))
	otherType := writeFile(t, filepath.Join(dir, "other_type"), knownHostsLine(addr, rsaHostKey(t).PublicKey())+"\n")

	rev, err := open(t, url, Credentials{SSHKeyFile: keyFile, KnownHostsFile: goodHosts}, t.TempDir()).Fetch(t.Context(), "main")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Hash().String() != sha {
		t.Fatalf("fetched %s, pushed %s", rev.Hash(), sha)
	}
	literal := Credentials{SSHKey: clientKey, KnownHosts: []byte(knownHostsLine(addr, hostKey.PublicKey()))}
	if _, err := open(t, url, literal, t.TempDir()).Tip(t.Context(), "main"); err != nil {
		t.Fatalf("literal key and known_hosts: %v", err)
	}

	cases := []struct {
		name  string
		creds Credentials
		kind  error
		says  string
	}{
		{"host key mismatch", Credentials{SSHKeyFile: keyFile, KnownHostsFile: wrongHosts}, ErrHostKey, "check the known_hosts in " + wrongHosts},
		{"host key of another type", Credentials{SSHKeyFile: keyFile, KnownHostsFile: otherType}, ErrHostKey, "check the known_hosts in " + otherType},
		{"host unknown", Credentials{SSHKeyFile: keyFile, KnownHostsFile: otherHost}, ErrHostKey, "check the known_hosts in " + otherHost},
		{"no known_hosts", Credentials{SSHKeyFile: keyFile}, ErrHostKey, "needs known_hosts"},
		{"missing known_hosts file", Credentials{SSHKeyFile: keyFile, KnownHostsFile: dir + "/gone"}, ErrHostKey, dir + "/gone"},
		{"key not authorized", Credentials{SSHKeyFile: strangerKey, KnownHostsFile: goodHosts}, ErrAuth, "check that the SSH key in " + strangerKey},
		{"no key", Credentials{KnownHostsFile: goodHosts}, ErrAuth, "needs an SSH key"},
		{"token for SSH", Credentials{Token: "x", SSHKeyFile: keyFile, KnownHostsFile: goodHosts}, ErrAuth, "token or password is set for an SSH URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := open(t, url, tc.creds, t.TempDir()).Fetch(t.Context(), "main")
			if !errors.Is(err, tc.kind) || !strings.HasPrefix(err.Error(), url+" ") || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want %v naming the URL and saying %q", err, tc.kind, tc.says)
			}
		})
	}
}

// TestHostKeyAlgorithms: against a server with an ed25519 and an RSA host
// key, known_hosts with only the RSA key must still work, so the client
// offers only the algorithms known_hosts can check.
func TestHostKeyAlgorithms(t *testing.T) {
	rem := newRemote(t)
	rem.commit(map[string]string{"a.yaml": "1\n"}, "first")
	clientKey := testKey(t)
	ed, rsaKey := signer(t, testKey(t)), rsaHostKey(t)
	addr := serveSSH(t, filepath.Dir(rem.bare), signer(t, clientKey).PublicKey(), ed, rsaKey)
	url := fmt.Sprintf("ssh://git@%s/%s", addr, filepath.Base(rem.bare))
	for name, key := range map[string]ssh.PublicKey{"rsa": rsaKey.PublicKey(), "ed25519": ed.PublicKey()} {
		t.Run(name, func(t *testing.T) {
			creds := Credentials{SSHKey: clientKey, KnownHosts: []byte(knownHostsLine(addr, key))}
			if _, err := open(t, url, creds, t.TempDir()).Tip(t.Context(), "main"); err != nil {
				t.Fatal(err)
			}
		})
	}

	check, err := knownHostsCallback([]byte(strings.Join([]string{
		knownHostsLine(addr, rsaKey.PublicKey()),
		knownHostsLine(addr, ed.PublicKey()),
		"[127.0.0.2]:22 " + authorizedKey(t, testKey(t)),
	}, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		hostPort string
		want     string
	}{
		{addr, "rsa-sha2-512 rsa-sha2-256 ssh-rsa ssh-ed25519"},
		{"127.0.0.3:22", ""},
	}
	for _, tc := range tests {
		if got := strings.Join(hostKeyAlgorithms(check, tc.hostPort), " "); got != tc.want {
			t.Errorf("%s: algorithms %q, want %q", tc.hostPort, got, tc.want)
		}
	}
}

// echoServer refuses every request with a 401 whose body repeats the
// credentials it was sent.
func echoServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		user, pass, _ := req.BasicAuth()
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, "bad credentials "+user+":"+pass)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
