package sdk

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadFileBounded(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ca.pem")
	os.WriteFile(ok, []byte("pem"), 0o644)
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, MaxFileSize+1), 0o644)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(ok); err != nil || string(b) != "pem" {
		t.Fatalf("regular file: %q %v", b, err)
	}
	for path, want := range map[string]string{"/dev/zero": "not a regular file", big: "larger than 1 MiB", fifo: "not a regular file", dir: "not a regular file", filepath.Join(dir, "none"): "no such file"} {
		if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadFile(%s) = %v, want %q", path, err, want)
		}
	}
}
