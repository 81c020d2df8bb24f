// Package scaffold writes a new harden plugin — its own Go module — from
// the templates embedded here (`harden plugins new`): go.mod requiring the
// plugin SDK, main.go serving it, plugin.go with metadata and schemas
// derived from Go types, verify.go with one probe-based check, a
// conformance test with sdktest and a README. The result builds and passes
// its own test as written, so a plugin author starts from something that
// keeps the contract.
package scaffold

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"text/template"
)

//go:embed template/*.tmpl
var templates embed.FS

// validName is the plugin name rule of discovery (host/internal/plugins),
// bounded: the name becomes a file name and a Go module path element.
var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

// Options says what to write and where.
type Options struct {
	// Name of the plugin: the binary is harden-plugin-<Name>.
	Name string
	// Dir to write into (default ./harden-plugin-<Name>); it must not exist
	// or be empty.
	Dir string
	// Module path (default example.com/harden-plugin-<Name>).
	Module string
	// SDK is the directory of a local plugin SDK module (a harden
	// checkout's shared/) for a replace directive; "" requires the
	// published module.
	SDK string
}

// Write scaffolds the plugin and returns the files written. It refuses an
// invalid name and a directory that holds anything, before writing.
func Write(o Options) ([]string, error) {
	if !validName.MatchString(o.Name) {
		return nil, fmt.Errorf("plugin name %q: want lower-case letters, digits, '-' and '_', starting with a letter or digit, at most 40 characters (the binary is harden-plugin-<name>)", o.Name)
	}
	if o.Dir == "" {
		o.Dir = "harden-plugin-" + o.Name
	}
	if o.Module == "" {
		o.Module = "example.com/harden-plugin-" + o.Name
	}
	if strings.ContainsAny(o.Module, " \t\n\"'`") {
		return nil, fmt.Errorf("module path %q: no spaces or quotes", o.Module)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	switch {
	case err == nil && len(entries) > 0:
		return nil, fmt.Errorf("%s is not empty: plugins new writes only into a new or empty directory", dir)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	data := struct {
		Name, Module, GoVersion, SDK, SDKNote string
	}{Name: o.Name, Module: o.Module, GoVersion: goVersion()}
	if o.SDK != "" {
		sdk, err := filepath.Abs(o.SDK)
		if err != nil {
			return nil, err
		}
		if err := isSDK(sdk); err != nil {
			return nil, err
		}
		data.SDK, data.SDKNote = sdk, sdk
		// A plugin inside the checkout refers to it relatively, so the
		// tree can move.
		if root := filepath.Dir(sdk); strings.HasPrefix(dir, root+string(filepath.Separator)) {
			if rel, err := filepath.Rel(dir, sdk); err == nil {
				data.SDK = rel
			}
		}
	}
	names, err := fs.Glob(templates, "template/*.tmpl")
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, n := range names {
		t, err := template.New(filepath.Base(n)).Option("missingkey=error").ParseFS(templates, n)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("template %s: %w", n, err)
		}
		out[strings.TrimSuffix(filepath.Base(n), ".tmpl")] = b.Bytes()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var written []string
	for _, n := range sortedKeys(out) {
		p := filepath.Join(dir, n)
		// O_EXCL: nothing that appeared meanwhile is overwritten.
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return written, err
		}
		_, err = f.Write(out[n])
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return written, fmt.Errorf("%s: %w", p, err)
		}
		written = append(written, p)
	}
	return written, nil
}

// FindSDK returns the shared/ module of the harden checkout that holds dir
// (or one of its parents), or "".
func FindSDK(dir string) string {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for {
		if isSDK(filepath.Join(dir, "shared")) == nil {
			if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(data, []byte("module github.com/harden-dev/harden\n")) {
				return filepath.Join(dir, "shared")
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func isSDK(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return fmt.Errorf("--sdk %s: not the plugin SDK module: %w", dir, err)
	}
	if !bytes.HasPrefix(data, []byte("module github.com/harden-dev/harden/shared\n")) {
		return fmt.Errorf("--sdk %s: go.mod is not module github.com/harden-dev/harden/shared", dir)
	}
	return nil
}

// goVersion is the go directive: this toolchain's version (the SDK's own
// go directive must not exceed it, or the build would ask for a newer Go).
func goVersion() string {
	v := strings.TrimPrefix(runtime.Version(), "go")
	if i := strings.IndexAny(v, " -+"); i >= 0 {
		v = v[:i]
	}
	if v == "" || v[0] < '0' || v[0] > '9' {
		return "1.26"
	}
	return v
}

func sortedKeys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
