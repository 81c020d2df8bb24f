package policy

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"syscall"
)

// MaxFileSize caps every file harden reads because the policy names it:
// CA bundles, CRLs, certificates, keys, password and token files. The
// largest of them, a system CA bundle, is ~200 KiB.
const MaxFileSize = 1 << 20

// FileKind says how a file the policy names is checked.
type FileKind int

const (
	// Public material: certificates, CA bundles, CRLs.
	Public FileKind = iota
	// Secret material: private keys, passwords, tokens. Refused when group
	// or others have any access, as libpq refuses a client key (a root-owned
	// file may be group-readable: 0640 root:ssl-cert).
	Secret
)

// ReadBounded reads a file the policy names: it must be a regular file (not
// /dev/zero, a FIFO or a directory) of at most MaxFileSize bytes and, for a
// Secret, accessible to its owner only. The checks are made on the opened
// descriptor, so a swap between check and read changes nothing. Errors name
// the file and its mode, never its content.
func ReadBounded(path string, kind FileKind) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer before the
	// regular-file check refuses it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &notExistError{path}
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkFileInfo(path, st, kind); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d MiB", path, MaxFileSize>>20)
	}
	return data, nil
}

// notExistError is fs.ErrNotExist with a shorter message than the os
// package's "open PATH: no such file or directory".
type notExistError struct{ path string }

func (e *notExistError) Error() string { return e.path + ": no such file" }
func (e *notExistError) Unwrap() error { return fs.ErrNotExist }

func checkFileInfo(path string, st fs.FileInfo, kind FileKind) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file (%s)", path, fileType(st.Mode()))
	}
	if st.Size() > MaxFileSize {
		return fmt.Errorf("%s: larger than %d MiB (%d bytes)", path, MaxFileSize>>20, st.Size())
	}
	if kind == Secret {
		perm := st.Mode().Perm()
		allowed := fs.FileMode(0o700)
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid == 0 {
			allowed = 0o740
		}
		if perm&^allowed != 0 {
			return fmt.Errorf("%s: secret file has mode %04o: group or others may access it; chmod 600 it (or 640 when owned by root)", path, perm)
		}
	}
	return nil
}

func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}

// ReadFileAt reads file, named by the policy at path (e.g. targets/0/
// certificate/key_file), with ReadBounded; the error is placed at that
// line of the policy.
func (p *Policy) ReadFileAt(path []string, file string, kind FileKind) ([]byte, error) {
	data, err := ReadBounded(file, kind)
	if err != nil {
		return nil, p.errorAt(path, "%v", err)
	}
	return data, nil
}

// ErrorAt is an error placed at path's line in the policy, e.g. about a
// certificate read from the file named there.
func (p *Policy) ErrorAt(path []string, format string, args ...any) *Error {
	return p.errorAt(path, format, args...)
}

// NamedFile is a file the policy says must exist, with where it is named.
type NamedFile struct {
	At   []string
	File string
	Kind FileKind
}

// Files lists the files the policy says must exist for the given targets:
// the trust bundle and CRL, each target's certificate files and the secret
// files of its connection. Files harden creates (the vault-pki store) are
// not among them.
func (p *Policy) Files(targets []Target) []NamedFile {
	var out []NamedFile
	if p.Certificates.CAFile != "" {
		out = append(out, NamedFile{[]string{"certificates", "files", "ca_file"}, p.Certificates.CAFile, Public})
	}
	if p.Certificates.CRLFile != "" {
		out = append(out, NamedFile{[]string{"certificates", "files", "crl_file"}, p.Certificates.CRLFile, Public})
	}
	for _, t := range targets {
		out = append(out, p.TargetFiles(t)...)
	}
	return out
}

// TargetFiles lists target t's certificate files and connection secret files.
func (p *Policy) TargetFiles(t Target) []NamedFile {
	var out []NamedFile
	at := func(field string) []string {
		return []string{"targets", strconv.Itoa(t.Index), "certificate", field}
	}
	for _, f := range []struct {
		field, file string
		kind        FileKind
	}{
		{"cert_file", t.CertFile, Public}, {"key_file", t.KeyFile, Secret},
		{"client_cert_file", t.ClientCertFile, Public}, {"client_key_file", t.ClientKeyFile, Secret},
	} {
		if f.file != "" {
			out = append(out, NamedFile{at(f.field), f.file, f.kind})
		}
	}
	for _, ref := range t.Secrets {
		if ref.File != "" {
			out = append(out, NamedFile{ref.Path, ref.File, Secret})
		}
	}
	return out
}

// CheckFiles checks, without reading them, that the files the policy says
// must exist for targets do: regular, within MaxFileSize, and secret ones
// private. Every problem is reported at its policy line.
func (p *Policy) CheckFiles(targets []Target) error {
	var errs Errors
	for _, f := range p.Files(targets) {
		if err := checkFile(f.File, f.Kind); err != nil {
			errs = append(errs, p.errorAt(f.At, "%v", err))
		}
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return errs
	}
	return nil
}

func checkFile(path string, kind FileKind) error {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &notExistError{path}
		}
		return err
	}
	return checkFileInfo(path, st, kind)
}
