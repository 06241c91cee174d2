package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readmeAddr is the address the README's examples use; the test serves elsewhere and rewrites it.
const readmeAddr = "127.0.0.1:8080"

// tryItBlock returns the shell block that follows the try-it marker in README.md.
func tryItBlock(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(raw), "<!-- try-it")
	if !ok {
		t.Fatal("README.md has no <!-- try-it --> marker before its Try it block")
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	if !ok {
		t.Fatal("no ```sh block after the try-it marker")
	}
	block, _, ok := strings.Cut(rest, "\n```")
	if !ok {
		t.Fatal("the Try it block does not end")
	}
	if !strings.Contains(block, readmeAddr) {
		t.Fatalf("the Try it block does not use %s", readmeAddr)
	}
	return block
}

// needTool skips the test when a tool the README asks for is missing (fails under CI=true,
// where the README's example must run).
func needTool(t *testing.T, name string, args ...string) {
	t.Helper()
	if err := exec.Command(name, args...).Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s %v: %v; CI must run the README's Try it block", name, args, err)
		}
		t.Skipf("README Try it block not run: %s %v: %v", name, args, err)
	}
}

// The README's "Try it" block, pasted as it stands into bash, works against a fresh server: every
// command succeeds and prints what the README says it does.
func TestReadmeTryIt(t *testing.T) {
	t.Parallel()
	needTool(t, "bash", "-c", "true")
	needTool(t, "curl", "--version")
	needTool(t, "node", "--experimental-websocket", "-e", `if (typeof WebSocket !== "function") process.exit(1)`)
	script := tryItBlock(t)

	addr := freeAddr(t)
	n := serve(t, addr, "NERUTALK_DATA_DIR="+filepath.Join(t.TempDir(), "data"))
	defer n.stop(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hung command fails, not hangs
	defer cancel()
	// -e and pipefail: a step that fails (a field missing from an answer) stops the script.
	cmd := exec.CommandContext(ctx, "bash", "-eu", "-o", "pipefail", "-c", strings.ReplaceAll(script, readmeAddr, addr))
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("Try it block: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	if stderr.Len() > 0 {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	for _, want := range []string{
		`"access_token":"`,                   // alice's registration, echoed
		`"username":"alice"`,                 // GET /users/me
		`"text":"hello bob"`,                 // the message sent over REST, and listed
		`"items":[{`,                         // the list of messages
		`"type":"message_new"`,               // the WebSocket event
		`"text":"hi alice, over the socket"`, // of the message sent over the socket
		`{"type":"ack","id":"c1"`,            // and its acknowledgement
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, `"status":`) {
		t.Errorf("a command answered with a problem document:\n%s", out)
	}
}
