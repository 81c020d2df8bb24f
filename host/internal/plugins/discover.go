package plugins

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/harden-dev/harden/shared/sdk/hostclient"
)

// Binary is one discovered plugin executable. Discovery does not hash it:
// hashing a 15 MB binary costs ~13 ms, and on the run path go-plugin's
// SecureConfig hashes it right before exec against the lock's checksum.
type Binary struct {
	Name string
	Path string
	// Shadowed lists binaries of the same name in later directories.
	Shadowed []string
}

// SHA256 hashes the binary (hex).
func (b Binary) SHA256() (string, error) { return FileSHA256(b.Path) }

// Problem is a binary that was found but refused.
type Problem struct {
	Path   string
	Reason string
	// Err is the refusal; an *UntrustedError when the trust rule refused it.
	Err error
}

// Untrusted reports whether the trust rule (trust.go) refused the binary.
func (p Problem) Untrusted() bool { return errors.Is(p.Err, ErrUntrusted) }

func (p Problem) Error() string { return p.Path + ": " + p.Reason }

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// ValidName reports whether name may name a plugin (harden-plugin-<name>).
func ValidName(name string) bool { return validName.MatchString(name) }

// DefaultDir is the plugin directory under the user's data dir.
func DefaultDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "harden", "plugins")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".local", "share", "harden", "plugins")
}

// Dirs returns the search path: explicit dirs, then HARDEN_PLUGIN_PATH
// (colon-separated), then the default data dir. Earlier dirs win.
func Dirs(explicit []string) []string {
	var dirs []string
	dirs = append(dirs, explicit...)
	for _, d := range filepath.SplitList(os.Getenv("HARDEN_PLUGIN_PATH")) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	if d := DefaultDir(); d != "" {
		dirs = append(dirs, d)
	}
	return dirs
}

// Discover lists plugin binaries in dirs. Missing dirs are skipped.
func Discover(dirs []string) ([]Binary, []Problem) {
	found := map[string]*Binary{}
	var problems []Problem
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			if !os.IsNotExist(err) {
				problems = append(problems, Problem{dir, err.Error(), err})
			}
			continue
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), hostclient.BinaryPrefix) {
				continue
			}
			path := filepath.Join(dir, e.Name())
			name := hostclient.NameFromPath(path)
			if !validName.MatchString(name) {
				continue
			}
			info, err := os.Stat(path)
			if err != nil || !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
				continue // not an executable file
			}
			if prev, ok := found[name]; ok {
				prev.Shadowed = append(prev.Shadowed, path)
				continue
			}
			if err := CheckTrusted("plugin binary", path); err != nil {
				problems = append(problems, Problem{path, "refused: " + err.Error(), err})
				continue
			}
			found[name] = &Binary{Name: name, Path: path}
		}
	}
	out := make([]Binary, 0, len(found))
	for _, b := range found {
		out = append(out, *b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, problems
}

// UntrustedProblem returns the trust refusal of a binary named name, if
// the trust rule refused one.
func UntrustedProblem(problems []Problem, name string) (Problem, bool) {
	for _, p := range problems {
		if p.Untrusted() && hostclient.NameFromPath(p.Path) == name {
			return p, true
		}
	}
	return Problem{}, false
}

// FileSHA256 hashes a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
