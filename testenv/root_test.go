package testenv

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testenv's own files do not depend on the working directory (before: the
// Kafka pom.xml and the Vault and SeaweedFS build lookups were read relative
// to it, so only the repository root worked).
func TestOwnFilesFromAnotherDirectory(t *testing.T) {
	t.Setenv("HARDEN_ROOT", "")
	t.Chdir(t.TempDir())
	if _, version, err := KafkaLibs(); err != nil {
		if strings.Contains(err.Error(), "pom.xml") {
			t.Fatalf("Kafka version lookup depends on the working directory: %v", err)
		}
		unavailable(t, "%v", err)
	} else if version != "4.1.1" {
		t.Errorf("Kafka version %q from the embedded pom.xml", version)
	}
	for name, find := range map[string]func() (string, error){"vault": VaultBinary, "seaweedfs": SeaweedFSBinary} {
		bin, err := find()
		if err != nil {
			unavailable(t, "%s from another directory: %v", name, err)
			continue
		}
		if !filepath.IsAbs(bin) {
			t.Errorf("%s: %q is not absolute", name, bin)
		}
	}
}

func TestFindModuleRoot(t *testing.T) {
	repo, err := filepath.Abs("..")
	if err != nil || !isModuleRoot(repo) {
		t.Fatalf("%s is not the module root: %v", repo, err)
	}
	if got := findModuleRoot([]string{t.TempDir(), filepath.Join(repo, "bin")}); got != repo {
		t.Errorf("from the executable's dir: %q, want %q", got, repo)
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/other\n"), 0o600)
	if got := findModuleRoot([]string{filepath.Join(other)}); got != "" {
		t.Errorf("another module taken for harden: %q", got)
	}
}

// Without the repository, a cached build is found by name and version.
func TestNewestCachedBuild(t *testing.T) {
	cache := t.TempDir()
	tl := tool{Name: "vault", Version: "1.14.8"}
	mk := func(key string, complete bool, age time.Duration) string {
		d := filepath.Join(cache, "testenv", "vault-1.14.8-"+key)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "vault"), []byte("#!/bin/sh\n"), 0o755)
		if complete {
			os.WriteFile(filepath.Join(d, ".complete"), nil, 0o644)
			ts := time.Now().Add(-age)
			os.Chtimes(filepath.Join(d, ".complete"), ts, ts)
		}
		return filepath.Join(d, "vault")
	}
	mk("aaaa", true, 2*time.Hour)
	newest := mk("bbbb", true, time.Hour)
	mk("cccc", false, 0)
	if got, err := newestCachedBuild(cache, tl); err != nil || got != newest {
		t.Errorf("got %q %v, want %q", got, err, newest)
	}
	if _, err := newestCachedBuild(cache, tool{Name: "weed", Version: "1"}); err == nil {
		t.Errorf("found a build that is not there")
	}
}

// The real command, installed outside the repository (-trimpath, so no
// source path helps) and run from another directory, starts Kafka.
func TestTestenvCommandFromAnotherDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Kafka")
	}
	if _, _, err := KafkaLibs(); err != nil {
		unavailable(t, "%v", err)
		return
	}
	bin := filepath.Join(t.TempDir(), "testenv")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/testenv")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	state := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "up", "--services", "kafka", "--state-dir", state)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "HARDEN_ROOT=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready: ") {
		t.Fatalf("testenv up from another directory: %q %v\nstderr: %s", line, err, stderr.String())
	}
}
