package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

const testVersion = "v0.0.0-test"

var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary builds cmd/nerutalk once per test binary and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		if buildDir, buildErr = os.MkdirTemp("", "nerutalk-bin-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "nerutalk")
		cmd := exec.Command(goTool, "build", "-o", binPath,
			"-ldflags", "-X github.com/nerutalk/nerutalk/internal/server.Version="+testVersion, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// command prepares the binary with exactly the given NERUTALK_* environment, in a fresh folder.
func command(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Dir = t.TempDir() // the default ./data lands here, never in the repository
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

type outcome struct {
	code           int
	stdout, stderr string
}

func runBinary(t *testing.T, env []string, args ...string) outcome {
	t.Helper()
	cmd := command(t, env, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", args, err)
	}
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	if !timer.Stop() {
		t.Fatalf("nerutalk %v did not exit within 30s; stderr:\n%s", args, stderr.String())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run %v: %v", args, err)
	}
	return outcome{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// freeAddr returns a loopback address that nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestVersion(t *testing.T) {
	t.Parallel()
	o := runBinary(t, nil, "version")
	if o.code != 0 || o.stdout != "nerutalk "+testVersion+"\n" || o.stderr != "" {
		t.Errorf("nerutalk version: exit %d, stdout %q, stderr %q; want 0 and %q", o.code, o.stdout, o.stderr, "nerutalk "+testVersion)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"serve", "--help"}, {"serve", "-h"}, {"--help"}, {"migrate", "-help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			o := runBinary(t, nil, args...)
			if o.code != 0 || o.stderr != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing on stderr", o.code, o.stderr)
			}
			for _, s := range config.Settings() {
				for _, want := range []string{"-" + s.Flag + " ", s.Env, fmt.Sprintf("default %q", s.Default)} {
					if !strings.Contains(o.stdout, want) {
						t.Errorf("help lacks %q", want)
					}
				}
			}
		})
	}
	o := runBinary(t, nil, "help")
	for _, want := range []string{"serve", "migrate", "version"} {
		if o.code != 0 || !strings.Contains(o.stdout, want) {
			t.Errorf("nerutalk help: exit %d, stdout %q; want the commands", o.code, o.stdout)
		}
	}
}

// A bad setting stops start-up with exactly one line on stderr that names it, and a non-zero exit.
func TestBadConfigurationIsOneLine(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() }) // not defer: the parallel subtests run after this function returns
	tests := []struct {
		name string
		env  []string
		args []string
		want []string
		hide string
	}{
		{"address without a port", []string{"NERUTALK_ADDR=localhost"}, nil, []string{"NERUTALK_ADDR", "host:port"}, ""},
		{"port in use", []string{"NERUTALK_ADDR=" + busy.Addr().String()}, nil,
			[]string{"NERUTALK_ADDR", busy.Addr().String(), "address already in use"}, ""},
		{"database of another kind", []string{"NERUTALK_DATABASE_URL=mysql://root:hunter2@db/nerutalk"}, nil,
			[]string{"NERUTALK_DATABASE_URL", "mysql", "postgres://"}, "hunter2"},
		{"postgres that cannot connect", []string{"NERUTALK_DATABASE_URL=postgres://nerutalk:hunter2@127.0.0.1:1/nerutalk?sslmode=disable&connect_timeout=2"}, nil,
			[]string{"NERUTALK_DATABASE_URL", "connect"}, "hunter2"},
		{"data folder cannot be created", []string{"NERUTALK_DATA_DIR=" + filepath.Join(file, "data")}, nil,
			[]string{"NERUTALK_DATA_DIR", "not a directory"}, ""},
		{"data folder is a file", []string{"NERUTALK_DATA_DIR=" + file}, nil, []string{"NERUTALK_DATA_DIR"}, ""},
		{"migrate with a bad data folder", []string{"NERUTALK_DATA_DIR=" + filepath.Join(file, "data")}, []string{"migrate"},
			[]string{"NERUTALK_DATA_DIR"}, ""},
		{"port in use, given by the flag", nil, []string{"-addr", busy.Addr().String()},
			[]string{"nerutalk: -addr: listen on", busy.Addr().String(), "address already in use"}, "NERUTALK_ADDR"},
		{"data folder given by the flag cannot be created", nil, []string{"-data-dir", filepath.Join(file, "data")},
			[]string{"nerutalk: -data-dir:", "not a directory"}, "NERUTALK_DATA_DIR"},
		{"bad flag value", nil, []string{"serve", "-log-level=loud"}, []string{"-log-level", "want debug, info, warn or error"}, "NERUTALK_LOG_LEVEL"},
		{"short secret", []string{"NERUTALK_JWT_SECRET=abc123"}, nil, []string{"NERUTALK_JWT_SECRET", "32"}, "abc123"},
		{"unknown flag", nil, []string{"-bogus"}, []string{"bogus"}, ""},
		{"unknown command", nil, []string{"frobnicate"}, []string{`"frobnicate"`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := tt.env
			if !strings.Contains(strings.Join(env, " "), "NERUTALK_ADDR=") {
				env = append(env, "NERUTALK_ADDR="+freeAddr(t)) // in case start-up gets that far
			}
			o := runBinary(t, env, tt.args...)
			if o.code == 0 {
				t.Fatalf("exit 0, want a failure; stderr %q", o.stderr)
			}
			lines := strings.Split(strings.TrimSuffix(o.stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "nerutalk: ") || !strings.HasSuffix(o.stderr, "\n") {
				t.Fatalf("stderr %q: want exactly one line starting with \"nerutalk: \"", o.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(lines[0], w) {
					t.Errorf("stderr %q does not contain %q", lines[0], w)
				}
			}
			if tt.hide != "" && strings.Contains(o.stderr, tt.hide) {
				t.Errorf("stderr %q reveals %q", o.stderr, tt.hide)
			}
			if strings.Contains(o.stderr, "goroutine") {
				t.Errorf("stderr %q: a panic", o.stderr)
			}
			if o.stdout != "" {
				t.Errorf("stdout %q, want nothing", o.stdout)
			}
		})
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "data")
		for range 2 { // idempotent
			o := runBinary(t, []string{"NERUTALK_DATA_DIR=" + dir}, "migrate")
			if o.code != 0 || !strings.Contains(o.stderr, "migrations applied") || !strings.Contains(o.stderr, "database=sqlite") {
				t.Fatalf("nerutalk migrate: exit %d, stderr %q", o.code, o.stderr)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "nerutalk.db")); err != nil {
			t.Errorf("no database after migrate: %v", err)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		url := storetest.PostgresURL(t)
		o := runBinary(t, []string{"NERUTALK_DATABASE_URL=" + url, "NERUTALK_LOG_FORMAT=json"}, "migrate", "-log-level", "debug")
		if o.code != 0 || !strings.Contains(o.stderr, `"database":"postgres"`) {
			t.Fatalf("nerutalk migrate: exit %d, stderr %q", o.code, o.stderr)
		}
	})
}

// The binary serves until SIGTERM or SIGINT, then shuts down gracefully and exits 0.
func TestServeAndGracefulShutdown(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			addr := freeAddr(t)
			dataDir := filepath.Join(t.TempDir(), "data")
			n := serve(t, addr, "NERUTALK_DATA_DIR="+dataDir)
			cmd, exited, stderr := n.cmd, n.exited, n.stderr

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				t.Fatalf("nerutalk did not exit within 5s of %v", sig)
			}
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("exit code %d after %v, want 0\n%s", code, sig, stderr.String())
			}
			log := stderr.String()
			for _, want := range []string{"nerutalk listening", "docs=http://" + addr + "/docs", "database=sqlite", "version=" + testVersion, "stopped"} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
			for _, p := range []string{"nerutalk.db", "media"} {
				if _, err := os.Stat(filepath.Join(dataDir, p)); err != nil {
					t.Errorf("data folder lacks %s: %v", p, err)
				}
			}
		})
	}
}

// served is a nerutalk process that answers /healthz.
type served struct {
	cmd    *exec.Cmd
	exited chan error
	stderr *servertest.LogBuffer
}

// serve starts the binary on addr with the extra environment and waits until /healthz answers;
// the process is killed at the end of the test if it still runs.
func serve(t *testing.T, addr string, env ...string) *served {
	t.Helper()
	cmd := command(t, append([]string{"NERUTALK_ADDR=" + addr}, env...))
	n := &served{cmd: cmd, exited: make(chan error, 1), stderr: &servertest.LogBuffer{}}
	cmd.Stderr = n.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-n.exited
		}
	})
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n
			}
		}
		select {
		case err := <-n.exited:
			t.Fatalf("nerutalk exited before answering /healthz: %v\n%s", err, n.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never answered 200 (last error %v)", err)
		}
	}
}

// stop sends SIGTERM and checks that the process exits 0 within 10 s.
func (n *served) stop(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("nerutalk did not exit within 10s of SIGTERM")
	}
	if code := n.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d, want 0\n%s", code, n.stderr.String())
	}
}

// run is also tested in-process, where it is cheap.
func TestRunInProcess(t *testing.T) {
	t.Parallel()
	noEnv := func(string) string { return "" }
	tests := []struct {
		name    string
		args    []string
		env     func(string) string
		wantErr string // "" = success
		stdout  string // substring
	}{
		{"version", []string{"version"}, noEnv, "", "nerutalk "},
		{"help", []string{"help"}, noEnv, "", "nerutalk migrate"},
		{"serve help", []string{"serve", "-help"}, noEnv, config.ErrHelp.Error(), "NERUTALK_DATA_DIR"},
		{"serve help lists the commands", []string{"serve", "-help"}, noEnv, config.ErrHelp.Error(), "nerutalk admin grant|revoke <username>"},
		{"help lists admin", []string{"help"}, noEnv, "", "nerutalk admin grant|revoke <username>"},
		{"help lists version", []string{"help"}, noEnv, "", "nerutalk version"},
		{"unknown command", []string{"start"}, noEnv, `unknown command "start"`, ""},
		{"bad env", nil, func(k string) string {
			if k == "NERUTALK_LOG_FORMAT" {
				return "yaml"
			}
			return ""
		}, "NERUTALK_LOG_FORMAT", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(tt.args, tt.env, &stdout, &stderr)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("run: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("run: got %v, want an error containing %q", err, tt.wantErr)
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tt.stdout)
			}
		})
	}
}

func TestErrorLine(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("NERUTALK_DATABASE_URL: %w", errors.New("failed to connect:\n\t[::1]:1: refused\n\t127.0.0.1:1: refused"))
	got := errorLine(err)
	if want := "nerutalk: NERUTALK_DATABASE_URL: failed to connect: [::1]:1: refused; 127.0.0.1:1: refused"; got != want {
		t.Errorf("errorLine = %q, want %q", got, want)
	}
}

// Two nerutalk processes configured as one deployment (the same PostgreSQL, Redis and
// NERUTALK_REDIS_PREFIX): a message sent through one reaches a WebSocket on the other, and both
// stop cleanly.
func TestTwoProcessesServeOneDeployment(t *testing.T) {
	t.Parallel()
	_, prefix := storetest.Redis(t)
	env := []string{"NERUTALK_DATABASE_URL=" + storetest.PostgresURL(t), "NERUTALK_REDIS_URL=" + storetest.RedisURL(t),
		"NERUTALK_REDIS_PREFIX=" + prefix, "NERUTALK_ARGON2_MEMORY_KIB=8", "NERUTALK_ARGON2_TIME=1", "NERUTALK_LOG_LEVEL=warn",
		"NERUTALK_SHUTDOWN_TIMEOUT=2s"}
	addrA, addrB := freeAddr(t), freeAddr(t)
	a := serve(t, addrA, env...)
	b := serve(t, addrB, env...)

	call := func(addr, method, path, token string, body any, want int) map[string]any {
		t.Helper()
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, "http://"+addr+"/api/v1"+path, bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: status %d %v, want %d", method, path, resp.StatusCode, out, want)
		}
		return out
	}
	register := func(name string) (id, token string) {
		out := call(addrA, http.MethodPost, "/auth/register", "", map[string]string{
			"username": name, "email": name + "@example.com", "password": "correct horse battery"}, http.StatusCreated)
		return out["user"].(map[string]any)["id"].(string), out["access_token"].(string)
	}
	_, aliceToken := register("alice")
	bobID, bobToken := register("bob")
	chat := call(addrA, http.MethodPost, "/chats", aliceToken, map[string]any{"type": "direct", "member_ids": []string{bobID}}, http.StatusCreated)
	chatID := chat["id"].(string)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addrB+"/api/v1/ws?token="+bobToken, nil) // bob, on the other process
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"ping","id":"p"}`)); err != nil {
		t.Fatal(err)
	}
	read := func() map[string]any {
		t.Helper()
		_, msg, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("bob's socket on b: %v", err)
		}
		var f map[string]any
		json.Unmarshal(msg, &f)
		return f
	}
	for f := read(); f["type"] != "ack"; f = read() { // registered on b once the ping is answered
	}
	call(addrA, http.MethodPost, "/chats/"+chatID+"/messages", aliceToken, map[string]string{"client_id": "c1", "text": "across processes"}, http.StatusCreated)
	for {
		f := read()
		if f["type"] == "message_new" {
			if text := f["data"].(map[string]any)["text"]; text != "across processes" {
				t.Fatalf("bob got %v", f)
			}
			break
		}
	}
	// Bob's client reads nothing more, so it never answers b's close frame: b waits out its
	// shutdown timeout for it, drops the socket, and must still drain and exit 0.
	a.stop(t)
	b.stop(t)
}
