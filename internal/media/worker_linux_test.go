package media

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// groupProbeEnv makes the test binary, started by TestWorkerOwnSchedulingGroup, do what a worker
// does to its scheduling group, print its session and autogroup, and exit.
const groupProbeEnv = "NERUTALK_TEST_GROUP_PROBE"

func init() {
	if os.Getenv(groupProbeEnv) == "1" {
		lowerGroupPriority()
		sid, _ := getsid()
		ag, _ := os.ReadFile("/proc/self/autogroup")
		fmt.Printf("leader=%v autogroup=%s", sid == os.Getpid(), strings.TrimSpace(string(ag)))
		os.Exit(0)
	}
}

// TestWorkerOwnSchedulingGroup: a worker started with workerProcAttr leads a session of its own,
// and (on a kernel with autogroups) its autogroup, not its parent's, is niced to 19; a process
// that does not lead its session (this test) leaves its autogroup alone.
func TestWorkerOwnSchedulingGroup(t *testing.T) {
	t.Parallel()
	before, autogroups := readAutogroup(t)
	lowerGroupPriority() // not a session leader: must do nothing
	if after, _ := readAutogroup(t); after != before {
		t.Fatalf("lowerGroupPriority changed the autogroup of a process that does not lead its session: %q → %q", before, after)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), groupProbeEnv+"=1")
	cmd.SysProcAttr = workerProcAttr()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	got := string(out)
	if !strings.HasPrefix(got, "leader=true ") {
		t.Fatalf("the probe does not lead its own session: %q", got)
	}
	if !autogroups {
		t.Logf("no autogroups on this kernel: only the session checked (%q)", got)
		return
	}
	if err := checkProbeGroup(got, before); err != nil {
		t.Fatal(err)
	}
}

// checkProbeGroup checks the probe's output ("leader=true autogroup=/autogroup-N nice K") against
// this process's /proc/self/autogroup: the probe must be in an autogroup of its own, niced to 19.
// A process in the first session of the machine (or of a container that never called setsid) is
// in the kernel's default group, for which /proc/self/autogroup reads empty: the probe, which
// called setsid, has an autogroup of its own all the same.
func checkProbeGroup(got, before string) error {
	_, ag, _ := strings.Cut(got, "autogroup=")
	name, nice, ok := strings.Cut(ag, " nice ")
	if !ok || name == "" || nice != "19" {
		return fmt.Errorf("probe's autogroup %q: want its own, niced to 19 (this process: %q)", got, before)
	}
	if f := strings.Fields(before); len(f) > 0 && f[0] == name {
		return fmt.Errorf("probe shares this process's autogroup %q: %q", before, got)
	}
	return nil
}

func TestCheckProbeGroup(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		got, before string
		ok          bool
	}{
		{"leader=true autogroup=/autogroup-9 nice 19", "/autogroup-8 nice 0", true},
		{"leader=true autogroup=/autogroup-9 nice 19", "", true}, // parent in the default group
		{"leader=true autogroup=/autogroup-8 nice 19", "/autogroup-8 nice 19", false},
		{"leader=true autogroup=/autogroup-9 nice 0", "/autogroup-8 nice 0", false},
		{"leader=true autogroup=/autogroup-9 nice 0", "", false},
		{"leader=true autogroup=", "", false},
		{"leader=true autogroup=", "/autogroup-8 nice 0", false},
		{"", "", false},
	} {
		if err := checkProbeGroup(tc.got, tc.before); (err == nil) != tc.ok {
			t.Errorf("checkProbeGroup(%q, %q) = %v, want ok=%v", tc.got, tc.before, err, tc.ok)
		}
	}
}

// readAutogroup returns /proc/self/autogroup ("/autogroup-N nice K") and whether autogroups are on.
func readAutogroup(t *testing.T) (string, bool) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/autogroup")
	if err != nil {
		return "", false
	}
	on, _ := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled")
	return strings.TrimSpace(string(b)), strings.TrimSpace(string(on)) == "1"
}
