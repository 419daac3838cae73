package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"code.gitea.io/sdk/gitea"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Gitea is a running Gitea forge on loopback with one admin user.
type Gitea struct {
	// URL is the forge's base URL, e.g. http://127.0.0.1:38123/.
	URL string
	// SSHAddr is the host:port of Gitea's built-in SSH server.
	SSHAddr string
	// User and Password are the admin's credentials; Token is its API token.
	User, Password, Token string
	// Client is an API client authenticated with Token.
	Client *gitea.Client

	dir string
	cmd *exec.Cmd
	bin string
	// exited is closed when the running web process has exited.
	exited chan struct{}
}

// StartGitea starts Gitea with a fresh data directory, creates the admin
// user and an access token with every scope, and waits for the API.
func StartGitea(ctx context.Context) (*Gitea, error) {
	bin, err := Tools()
	if err != nil {
		return nil, err
	}
	id := randomID()
	dir, err := newInstanceDir("gitea", id)
	if err != nil {
		return nil, err
	}
	g := &Gitea{dir: dir, bin: bin, User: "ferry", Password: "ferry-" + randomID()}
	if err := g.start(ctx); err != nil {
		return nil, fmt.Errorf("start gitea (logs in %s): %w", dir, errorsJoinStop(err, g.Stop(ctx)))
	}
	return g, nil
}

func (g *Gitea) start(ctx context.Context) error {
	static, err := os.ReadFile(filepath.Join(g.bin, "gitea.static"))
	if err != nil {
		return fmt.Errorf("gitea static root: %w", ErrNoToolchain)
	}
	httpPort, err := freePort()
	if err != nil {
		return err
	}
	sshPort, err := freePort()
	if err != nil {
		return err
	}
	g.URL = fmt.Sprintf("http://127.0.0.1:%d/", httpPort)
	g.SSHAddr = fmt.Sprintf("127.0.0.1:%d", sshPort)
	if err := g.writeConfig(strings.TrimSpace(string(static)), httpPort, sshPort); err != nil {
		return err
	}
	if out, err := g.cli(ctx, "migrate"); err != nil {
		return fmt.Errorf("gitea migrate: %w\n%s", err, out)
	}
	if out, err := g.cli(ctx, "admin", "user", "create", "--username", g.User, "--password", g.Password,
		"--email", g.User+"@ferry.invalid", "--admin", "--must-change-password=false"); err != nil {
		return fmt.Errorf("gitea admin user create: %w\n%s", err, out)
	}
	out, err := g.cli(ctx, "admin", "user", "generate-access-token", "--username", g.User,
		"--token-name", "e2e", "--scopes", "all", "--raw")
	if err != nil {
		return fmt.Errorf("gitea generate-access-token: %w\n%s", err, out)
	}
	g.Token = lastLine(out)
	if err := g.startWeb(ctx); err != nil {
		return err
	}
	g.Client, err = gitea.NewClient(strings.TrimSuffix(g.URL, "/"), gitea.SetToken(g.Token), gitea.SetContext(context.WithoutCancel(ctx)))
	return err
}

// startWeb starts `gitea web` on the configured ports and waits until its
// API answers.
func (g *Gitea) startWeb(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(g.dir, "web.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	g.cmd = exec.Command(filepath.Join(g.bin, "gitea"), "web", "--config", g.configPath())
	g.cmd.Env = g.env()
	g.cmd.Dir = g.dir
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	if err := startRecorded(g.dir, g.cmd); err != nil {
		return fmt.Errorf("gitea web: %w", err)
	}
	exited, cmd := make(chan struct{}), g.cmd
	g.exited = exited
	go func() { _ = cmd.Wait(); close(exited) }()
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		resp, err := http.Get(g.URL + "api/v1/version")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("gitea web did not answer on %s: %w", g.URL, err)
	}
	return nil
}

// Restart stops the web process (SIGTERM, then SIGKILL after 10s) and
// starts it again on the same ports with the same data, as an upgrade or
// a crash of the forge would. It returns once the API answers again.
func (g *Gitea) Restart(ctx context.Context) error {
	if err := g.stopWeb(ctx, syscall.SIGTERM, 10*time.Second); err != nil {
		return fmt.Errorf("restart gitea: %w", err)
	}
	if err := g.startWeb(ctx); err != nil {
		return fmt.Errorf("restart gitea: %w", err)
	}
	return nil
}

// stopWeb sends sig to the web process's group and waits up to grace for
// it to exit, then kills it.
func (g *Gitea) stopWeb(ctx context.Context, sig syscall.Signal, grace time.Duration) error {
	if g.cmd == nil || g.cmd.Process == nil {
		return nil
	}
	if err := syscall.Kill(-g.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-g.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	if err := syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	select {
	case <-g.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RepoDir is the bare git directory of repo (owned by the admin) on the
// forge's disk, for tests that read what the server itself recorded, such
// as a reflog.
func (g *Gitea) RepoDir(repo string) string {
	return filepath.Join(g.dir, "repos", strings.ToLower(g.User), strings.ToLower(repo)+".git")
}

func (g *Gitea) configPath() string { return filepath.Join(g.dir, "app.ini") }

func (g *Gitea) env() []string {
	return toolEnv(g.bin, "GITEA_WORK_DIR="+g.dir, "HOME="+g.dir, "GIT_CONFIG_NOSYSTEM=1")
}

func (g *Gitea) cli(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(g.bin, "gitea"), append(args, "--config", g.configPath())...)
	cmd.Env = g.env()
	cmd.Dir = g.dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (g *Gitea) writeConfig(static string, httpPort, sshPort int) error {
	u, err := user.Current()
	if err != nil {
		return err
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	// Settings from Gitea's config cheat sheet: a private, offline forge on
	// loopback, SQLite, no mail, no cron, webhooks allowed to loopback.
	ini := fmt.Sprintf(`APP_NAME = ferry-e2e
RUN_USER = %[1]s
RUN_MODE = prod
WORK_PATH = %[2]s
I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = %[3]d
ROOT_URL = http://127.0.0.1:%[3]d/
DOMAIN = 127.0.0.1
STATIC_ROOT_PATH = %[4]s
APP_DATA_PATH = %[2]s/data
OFFLINE_MODE = true
DISABLE_SSH = false
START_SSH_SERVER = true
SSH_DOMAIN = 127.0.0.1
SSH_LISTEN_HOST = 127.0.0.1
SSH_PORT = %[5]d
SSH_LISTEN_PORT = %[5]d
BUILTIN_SSH_SERVER_USER = git
LFS_START_SERVER = false

[database]
DB_TYPE = sqlite3
PATH = %[2]s/gitea.db

[repository]
ROOT = %[2]s/repos
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = %[6]s
PASSWORD_HASH_ALGO = pbkdf2_hi

[service]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = false

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[queue]
TYPE = channel

[webhook]
ALLOWED_HOST_LIST = loopback
DELIVER_TIMEOUT = 5

[mailer]
ENABLED = false

[cron]
ENABLED = false

[cron.update_checker]
ENABLED = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[actions]
ENABLED = false

[oauth2]
ENABLED = false

[log]
MODE = file
LEVEL = Warn
ROOT_PATH = %[2]s/log
`, u.Username, g.dir, httpPort, static, sshPort, hex.EncodeToString(secret))
	return os.WriteFile(g.configPath(), []byte(ini), 0o600)
}

// Stop kills Gitea and removes its data directory.
func (g *Gitea) Stop(ctx context.Context) error {
	if err := killRecorded(g.dir); err != nil {
		return err
	}
	if g.exited != nil {
		// Give the killed process a moment to release its files.
		t := time.NewTimer(2 * time.Second)
		defer t.Stop()
		select {
		case <-g.exited:
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return os.RemoveAll(g.dir)
}

// BasicAuthHeader is the HTTP Authorization header value for git over smart
// HTTP as the admin, with the token as password.
func (g *Gitea) BasicAuthHeader() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(g.User+":"+g.Token))
}

// CloneURL is the smart HTTP URL of repo (owned by the admin), without credentials.
func (g *Gitea) CloneURL(repo string) string {
	return fmt.Sprintf("%s%s/%s.git", g.URL, g.User, repo)
}

// SSHURL is the ssh:// URL of repo on Gitea's built-in SSH server.
func (g *Gitea) SSHURL(repo string) string {
	return fmt.Sprintf("ssh://git@%s/%s/%s.git", g.SSHAddr, g.User, repo)
}

// CreateRepo creates an empty repository owned by the admin.
func (g *Gitea) CreateRepo(name string) (*gitea.Repository, error) {
	repo, _, err := g.Client.CreateRepo(gitea.CreateRepoOption{Name: name, DefaultBranch: "main"})
	if err != nil {
		return nil, fmt.Errorf("gitea create repo %s: %w", name, err)
	}
	return repo, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
