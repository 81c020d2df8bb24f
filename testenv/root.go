package testenv

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// testenv's own files are found without depending on the working directory,
// so `bin/testenv up` works from anywhere: the Kafka version is embedded
// (testenv/kafka/pom.xml), the repository — for the build scripts that know
// their cache keys — is $HARDEN_ROOT or found above the working directory,
// the executable (bin/testenv) or this source file; without it a cached
// build is looked up in the cache directory by name and version.

//go:embed kafka/pom.xml
var kafkaPOM []byte

const modulePath = "github.com/harden-dev/harden"

// moduleRoot returns the harden repository root, or "" when none is found.
func moduleRoot() string {
	if r := os.Getenv("HARDEN_ROOT"); r != "" && isModuleRoot(r) {
		return r
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		starts = append(starts, filepath.Dir(exe))
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	return findModuleRoot(starts)
}

// findModuleRoot walks up from each start in turn.
func findModuleRoot(starts []string) string {
	for _, s := range starts {
		for d := s; ; d = filepath.Dir(d) {
			if isModuleRoot(d) {
				return d
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	return ""
}

// isModuleRoot: dir holds harden's go.mod and its scripts.
func isModuleRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "module ") {
			if strings.TrimSpace(strings.TrimPrefix(line, "module ")) != modulePath {
				return false
			}
			_, err := os.Stat(filepath.Join(dir, "scripts", "lib.sh"))
			return err == nil
		}
	}
	return false
}

// tool is a server testenv builds into its cache with scripts/<Script>
// (scripts/lib.sh build_go_tool: CacheDir/testenv/<Name>-<Version>-<hash>/<Name>).
type tool struct {
	Script, Name, Version, What, FirstTime string
}

var (
	vaultTool     = tool{"vault-build.sh", "vault", "1.14.8", "the Vault server", "~20 minutes"}
	seaweedfsTool = tool{"seaweedfs-build.sh", "weed", "0.0.0-20261109003541-7506e5f91cd6", "SeaweedFS", "~10 minutes"}
)

// cachedBuild finds tl's cached binary: the build script's answer when the
// repository is at hand (it knows the exact cache key), else the newest
// complete build of that name and version in the cache.
func cachedBuild(tl tool) (string, error) {
	notBuilt := fmt.Errorf("%s is not built; run scripts/%s (make setup does; %s the first time)", tl.What, tl.Script, tl.FirstTime)
	if root := moduleRoot(); root != "" {
		out, err := exec.Command(filepath.Join(root, "scripts", tl.Script), "--check").Output()
		if err != nil {
			return "", notBuilt
		}
		return strings.TrimSpace(string(out)), nil
	}
	bin, err := newestCachedBuild(CacheDir(), tl)
	if err != nil {
		return "", notBuilt
	}
	return bin, nil
}

func newestCachedBuild(cache string, tl tool) (string, error) {
	dirs, _ := filepath.Glob(filepath.Join(cache, "testenv", tl.Name+"-"+tl.Version+"-*"))
	type build struct {
		bin  string
		unix int64
	}
	var builds []build
	for _, d := range dirs {
		st, err := os.Stat(filepath.Join(d, ".complete"))
		if err != nil {
			continue
		}
		bin := filepath.Join(d, tl.Name)
		if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			builds = append(builds, build{bin, st.ModTime().UnixNano()})
		}
	}
	if len(builds) == 0 {
		return "", errors.New("no cached build")
	}
	sort.Slice(builds, func(i, j int) bool { return builds[i].unix > builds[j].unix })
	return builds[0].bin, nil
}
