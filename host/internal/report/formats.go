package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// format is one way to render a Run.
type format struct {
	// ext of the file --output-dir writes (harden-<command>.<ext>).
	ext   string
	write func(io.Writer, *Run) error
}

var formats = map[string]format{
	"text":  {"txt", WriteText},
	"json":  {"json", WriteJSON},
	"sarif": {"sarif", WriteSARIF},
	"junit": {"junit.xml", WriteJUnit},
	"html":  {"html", WriteHTML},
}

// FormatNames lists every format, for help and errors.
func FormatNames() []string { return []string{"text", "json", "sarif", "junit", "html"} }

// WriteJSON writes the Run as JSON (format_version 1).
func WriteJSON(w io.Writer, r *Run) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Render writes r in format name.
func Render(w io.Writer, name string, r *Run) error {
	f, ok := formats[name]
	if !ok {
		return fmt.Errorf("unknown format %q (want %s)", name, strings.Join(FormatNames(), ", "))
	}
	return f.write(w, r)
}

// Outputs is where a command's formats go: stdout, one --output file, or
// one file per format under --output-dir. Open creates every file's
// temporary sibling up front, so an unwritable path fails before any
// target is contacted; Commit renames them into place only once every
// format rendered, so nothing is ever half-written.
type Outputs struct {
	formats []string
	// paths[i] is where formats[i] goes ("" for stdout); tmps the open
	// temporary files beside them.
	paths []string
	tmps  []*os.File
	// Custom renders a format the command's own way instead of the
	// Run's (scan's and inventory's JSON keep their own documents).
	Custom map[string]func(io.Writer) error
}

// Open checks the flags and prepares the files. formats: the --format
// values in order (at least one); output: --output; dir: --output-dir;
// command names the files in dir. allowed limits the formats the command
// has (nil: all).
func Open(fs []string, output, dir, command string, allowed []string) (*Outputs, error) {
	if len(fs) == 0 {
		fs = []string{"text"}
	}
	var seen []string
	for _, f := range fs {
		if _, ok := formats[f]; !ok || (allowed != nil && !slices.Contains(allowed, f)) {
			want := allowed
			if want == nil {
				want = FormatNames()
			}
			return nil, fmt.Errorf("--format %q: want %s", f, strings.Join(want, ", "))
		}
		if slices.Contains(seen, f) {
			return nil, fmt.Errorf("--format %s given twice", f)
		}
		seen = append(seen, f)
	}
	o := &Outputs{formats: fs, paths: make([]string, len(fs))}
	switch {
	case output != "" && dir != "":
		return nil, errors.New("--output and --output-dir: give one (--output for one format, --output-dir for several)")
	case len(fs) > 1 && dir == "":
		return nil, fmt.Errorf("--format given %d times: write them with --output-dir DIR (one file per format)", len(fs))
	case output != "":
		o.paths[0] = output
	case dir != "":
		st, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("--output-dir %s: %w", dir, err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("--output-dir %s: not a directory", dir)
		}
		for i, f := range fs {
			o.paths[i] = filepath.Join(dir, "harden-"+command+"."+formats[f].ext)
		}
	}
	for _, p := range o.paths {
		if p == "" {
			o.tmps = append(o.tmps, nil)
			continue
		}
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			o.Abort()
			return nil, fmt.Errorf("--output %s: is a directory", p)
		}
		tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*.tmp")
		if err != nil {
			o.Abort()
			return nil, fmt.Errorf("cannot write %s: %w", p, unwrapPath(err))
		}
		o.tmps = append(o.tmps, tmp)
	}
	return o, nil
}

// unwrapPath drops the temporary name from a *PathError: the operator
// named the final file.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Formats are the formats in the order given.
func (o *Outputs) Formats() []string { return o.formats }

// ToStdout: some format goes to stdout.
func (o *Outputs) ToStdout() bool { return slices.Contains(o.paths, "") }

// Commit renders r in every format and puts each in place; stdout gets
// the formats without a file. It returns the files written. On an error
// no file is replaced (the temporaries are removed).
func (o *Outputs) Commit(r *Run, stdout io.Writer) ([]string, error) {
	bufs := make([][]byte, len(o.formats))
	for i, f := range o.formats {
		var b bytes.Buffer
		render := func(w io.Writer) error { return Render(w, f, r) }
		if c, ok := o.Custom[f]; ok {
			render = c
		}
		if err := render(&b); err != nil {
			o.Abort()
			return nil, fmt.Errorf("render %s: %w", f, err)
		}
		bufs[i] = b.Bytes()
	}
	for i, tmp := range o.tmps {
		if tmp == nil {
			continue
		}
		if err := writeSync(tmp, bufs[i]); err != nil {
			o.Abort()
			return nil, fmt.Errorf("write %s: %w", o.paths[i], unwrapPath(err))
		}
	}
	var written []string
	for i, tmp := range o.tmps {
		if tmp == nil {
			continue
		}
		if err := os.Rename(tmp.Name(), o.paths[i]); err != nil {
			o.Abort()
			return written, fmt.Errorf("write %s: %w", o.paths[i], unwrapPath(err))
		}
		o.tmps[i] = nil
		written = append(written, o.paths[i])
	}
	for i, p := range o.paths {
		if p == "" {
			if _, err := stdout.Write(bufs[i]); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

func writeSync(f *os.File, b []byte) error {
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// Abort removes the temporary files (nothing is replaced).
func (o *Outputs) Abort() {
	for i, tmp := range o.tmps {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			o.tmps[i] = nil
		}
	}
}
