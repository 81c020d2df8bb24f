package sdktest

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// RunHelperProcess re-runs this test binary with only the test named test
// (a test that does nothing unless env tells it to, e.g. one apply with a
// fault hook that SIGKILLs the process at a step), waits for it to end and
// reports whether it died of SIGKILL — a real kill of a real process, for
// interruption tests — and what it printed on stdout.
func RunHelperProcess(t testing.TB, test string, env ...string) (killed bool, stdout string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdout, _ = bufio.NewReader(out).ReadString(0)
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() && st.Signal() == syscall.SIGKILL {
			return true, stdout
		}
	}
	return false, stdout
}
