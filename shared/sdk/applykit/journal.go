package applykit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Version is the journal format this package writes and reads.
const Version = 1

// maxJournal bounds what Open reads: a journal is a few kilobytes.
const maxJournal = 1 << 20

// backupInfix sits between a file's path and the time in its backup's name.
const backupInfix = ".harden-backup-"

// ErrExists is returned by Begin when a journal is already there: an
// earlier run must be recovered first.
var ErrExists = errors.New("an apply journal already exists")

// FileBackup is one file an apply changes, recorded before it changes.
type FileBackup struct {
	Path      string      `json:"path"`
	Backup    string      `json:"backup,omitempty"` // empty when the file did not exist
	Existed   bool        `json:"existed"`
	Mode      os.FileMode `json:"mode"`
	UID       int         `json:"uid"`
	GID       int         `json:"gid"`
	OldSHA256 string      `json:"old_sha256,omitempty"`
	NewSHA256 string      `json:"new_sha256,omitempty"`
	// AsUID and AsGID are the owner whose filesystem identity the file is
	// backed up, written and restored with (0: the file's own owner, UID
	// and GID) — except in a root-controlled directory (see WriteFile).
	AsUID int `json:"as_uid,omitempty"`
	AsGID int `json:"as_gid,omitempty"`
}

// State is what the journal holds. It never holds a secret: Intent and Data
// are shown to the operator.
type State struct {
	Version int       `json:"version"`
	Plugin  string    `json:"plugin"`
	Target  string    `json:"target"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// Phase is a plugin-defined step name, e.g. "prepared", "files-written",
	// "reloaded", "rolling-back".
	Phase string `json:"phase"`
	// Intent is a human-readable list of what will change.
	Intent []string     `json:"intent"`
	Files  []FileBackup `json:"files"`
	// Data is plugin-specific (e.g. old setting values).
	Data map[string]string `json:"data"`
}

// Journal is an open intent journal at a path.
type Journal struct {
	path  string
	State State
	// allow, when set (Restrict), is the set of paths this journal may
	// back up and restore.
	allow func(path string) bool
}

// ErrNotAllowed is returned for a journal that names a file its plugin
// does not write: it is refused rather than restored.
var ErrNotAllowed = errors.New("names a file this apply does not write")

// ErrChanged is returned by Restore for a file that is neither its content
// before the apply nor what the apply wrote: somebody changed it since.
var ErrChanged = errors.New("changed since harden changed it (neither its content before the apply nor what harden wrote); inspect it, then run harden apply --force to put the state before that apply back")

// Restrict limits the journal to the paths allow accepts: every file it
// already names must be allowed (else ErrNotAllowed, naming the file), and
// Backup and Restore refuse the others from now on. A plugin passes the
// live files it writes (its config files, its certificate paths), so a
// planted or stale journal cannot make harden remove or overwrite anything
// else.
func (j *Journal) Restrict(allow func(path string) bool) error {
	for _, f := range j.State.Files {
		if !allow(f.Path) {
			return fmt.Errorf("journal %s: %s: %w", j.path, f.Path, ErrNotAllowed)
		}
	}
	j.allow = allow
	return nil
}

// OpenAllowed is Open followed by Restrict(allow).
func OpenAllowed(path string, allow func(path string) bool) (*Journal, error) {
	j, err := Open(path)
	if err != nil || j == nil {
		return j, err
	}
	if err := j.Restrict(allow); err != nil {
		return nil, err
	}
	return j, nil
}

func (j *Journal) allowed(path string) error {
	if j.allow != nil && !j.allow(path) {
		return fmt.Errorf("%s: %w", path, ErrNotAllowed)
	}
	return nil
}

// Path is where the journal lives.
func (j *Journal) Path() string { return j.path }

// Begin creates the journal (never over an existing one: ErrExists), writes
// s and fsyncs the file and its directory, so the intent is durable before
// the first change. Version, PID and Started are filled in when zero.
func Begin(path string, s State) (*Journal, error) {
	if s.Version == 0 {
		s.Version = Version
	}
	if s.PID == 0 {
		s.PID = os.Getpid()
	}
	if s.Started.IsZero() {
		s.Started = time.Now().UTC()
	}
	j := &Journal{path: path, State: s}
	data, err := j.encode()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_CLOEXEC, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrExists)
	}
	if err != nil {
		return nil, fmt.Errorf("create journal %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		// A journal that is not durable must not be left half-written.
		os.Remove(path)
		return nil, fmt.Errorf("write journal %s: %w", path, err)
	}
	return j, nil
}

// Open reads the journal at path: (nil, nil) when there is none, an error
// when it cannot be trusted (unreadable, not this format, a backup outside
// its file's directory).
func Open(path string) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxJournal+1))
	if err != nil {
		return nil, fmt.Errorf("read journal %s: %w", path, err)
	}
	if len(data) > maxJournal {
		return nil, fmt.Errorf("journal %s: larger than %d bytes", path, maxJournal)
	}
	s, err := decodeState(data)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	return &Journal{path: path, State: s}, nil
}

// decodeState parses and checks a journal: Restore writes backups over
// paths, so a journal naming a backup elsewhere than beside its file, or a
// relative path, is refused rather than followed.
func decodeState(data []byte) (State, error) {
	var s State
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return State{}, fmt.Errorf("not a journal: %w", err)
	}
	if dec.More() {
		return State{}, errors.New("not a journal: trailing data")
	}
	if s.Version != Version {
		return State{}, fmt.Errorf("journal version %d, this harden reads %d", s.Version, Version)
	}
	for i, f := range s.Files {
		if !filepath.IsAbs(f.Path) || filepath.Clean(f.Path) != f.Path {
			return State{}, fmt.Errorf("files[%d]: path is not absolute and clean", i)
		}
		if f.Existed {
			ts, ok := strings.CutPrefix(f.Backup, f.Path+backupInfix)
			if !ok || ts == "" || strings.ContainsAny(ts, "/\x00") {
				return State{}, fmt.Errorf("files[%d]: backup is not %s%s<time>", i, f.Path, backupInfix)
			}
			if !isHexSHA256(f.OldSHA256) {
				return State{}, fmt.Errorf("files[%d]: old_sha256 is not a SHA-256", i)
			}
		} else if f.Backup != "" || f.OldSHA256 != "" {
			return State{}, fmt.Errorf("files[%d]: a file that did not exist has no backup", i)
		}
		if f.NewSHA256 != "" && !isHexSHA256(f.NewSHA256) {
			return State{}, fmt.Errorf("files[%d]: new_sha256 is not a SHA-256", i)
		}
		if f.AsUID < 0 || f.AsGID < 0 {
			return State{}, fmt.Errorf("files[%d]: as_uid/as_gid is negative", i)
		}
		if f.Mode&^os.ModePerm != 0 {
			return State{}, fmt.Errorf("files[%d]: mode is not a permission", i)
		}
	}
	s.Started = s.Started.UTC()
	return s, nil
}

func isHexSHA256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size && strings.ToLower(s) == s
}

func (j *Journal) encode() ([]byte, error) {
	data, err := json.MarshalIndent(j.State, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode journal: %w", err)
	}
	return append(data, '\n'), nil
}

// Save rewrites the journal atomically and durably (file and directory).
func (j *Journal) Save() error {
	data, err := j.encode()
	if err != nil {
		return err
	}
	return writeFile(j.path, data, 0o600, -1, -1)
}

// SetPhase records the step the apply is at.
func (j *Journal) SetPhase(p string) error {
	j.State.Phase = p
	return j.Save()
}

// Backup records path before the caller changes it: a copy beside it
// (<path>.harden-backup-<UTC time>, same mode and owner, fsynced) when it
// exists, "did not exist" otherwise, then saves the journal. A path already
// recorded keeps its first backup (the state before this run). The file is
// read without following a symlink, and its mode and owner are those of the
// very file read; the copy is written as that file's owner (AsOwner).
func (j *Journal) Backup(path string) error { return j.BackupAs(path, nil) }

// BackupAs is Backup done entirely with owner's filesystem identity
// (AsOwner), and recorded so that Restore uses it too: for a file in a
// directory owned by a service's user (nil: as Backup).
func (j *Journal) BackupAs(path string, owner os.FileInfo) error {
	path = filepath.Clean(path)
	if !filepath.IsAbs(path) {
		return fmt.Errorf("back up %s: not an absolute path", path)
	}
	if err := j.allowed(path); err != nil {
		return fmt.Errorf("back up %w", err)
	}
	for _, f := range j.State.Files {
		if f.Path == path {
			return nil
		}
	}
	fb := FileBackup{Path: path, UID: -1, GID: -1}
	asUID, asGID := ownerIDs(owner)
	u, g := identityIn(filepath.Dir(path), asUID, asGID)
	err := asIdentity(u, g, func() error {
		data, st, err := readNoFollow(path)
		if err != nil || st == nil {
			return err
		}
		fb.Existed, fb.Mode = true, st.Mode().Perm()
		fb.UID, fb.GID = ownerIDs(st)
		sum := sha256.Sum256(data)
		fb.OldSHA256 = hex.EncodeToString(sum[:])
		fb.Backup = backupName(path)
		if owner == nil {
			// Written as the file's owner: a root-only file reached
			// through a swapped directory stays root's.
			asUID, asGID = fb.UID, fb.GID
			return writeFile(fb.Backup, data, fb.Mode, fb.UID, fb.GID)
		}
		return writeFileHere(fb.Backup, data, fb.Mode, fb.UID, fb.GID)
	})
	if err != nil {
		return fmt.Errorf("back up %s: %w", path, err)
	}
	if asUID > 0 && asGID >= 0 {
		fb.AsUID, fb.AsGID = asUID, asGID
	}
	j.State.Files = append(j.State.Files, fb)
	return j.Save()
}

// backupName is a name beside path that does not exist yet.
func backupName(path string) string {
	base := path + backupInfix + time.Now().UTC().Format("20060102T150405.000Z")
	name := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
}

// Replace is Backup followed by WriteFile, with the new content's SHA-256
// recorded before the write.
func (j *Journal) Replace(path string, data []byte, mode os.FileMode, owner os.FileInfo) error {
	if err := j.BackupAs(path, owner); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	for i := range j.State.Files {
		if j.State.Files[i].Path == filepath.Clean(path) {
			j.State.Files[i].NewSHA256 = hex.EncodeToString(sum[:])
		}
	}
	if err := j.Save(); err != nil {
		return err
	}
	return WriteFile(path, data, mode, owner)
}

// Restore puts every recorded file back, in reverse order: a file that
// existed gets its backup's content, mode and owner (atomically, fsynced);
// one that did not is removed. A file that already holds its old content is
// left alone; one that holds neither its old content nor what this apply
// wrote is left alone too, with ErrChanged (RestoreWith's Force restores
// it). Every file is restored with the identity it was changed with
// (BackupAs). It returns one error per file it could not restore, each
// naming the file; nil means every file is as it was.
func (j *Journal) Restore() []error { return j.RestoreWith(RestoreOptions{}) }

// RestoreOptions adjust Restore.
type RestoreOptions struct {
	// Force restores a file that changed since the apply (the operator
	// inspected it: harden apply --force).
	Force bool
	// Ours, when set, tells whether current is what this apply made of a
	// file whose new content it could not record — e.g. a file the server
	// rewrites itself (PostgreSQL's postgresql.auto.conf under ALTER
	// SYSTEM). old is its content before the apply (nil: it did not exist).
	Ours func(f FileBackup, old, current []byte) bool
}

// RestoreWith is Restore with options. Unless Force is set, a file changed
// since (ErrChanged) stops the whole restore before anything is touched:
// the files stay exactly as they are, for the operator to inspect.
func (j *Journal) RestoreWith(o RestoreOptions) []error {
	if !o.Force {
		var changed []error
		for i := len(j.State.Files) - 1; i >= 0; i-- {
			if err := j.restoreOne(j.State.Files[i], o, true); errors.Is(err, ErrChanged) || errors.Is(err, ErrNotAllowed) {
				changed = append(changed, err)
			}
		}
		if len(changed) > 0 {
			return changed
		}
	}
	var errs []error
	for i := len(j.State.Files) - 1; i >= 0; i-- {
		if err := j.restoreOne(j.State.Files[i], o, false); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// restoreOne restores f (check only: whether it could be) as the identity
// it was changed with.
func (j *Journal) restoreOne(f FileBackup, o RestoreOptions, check bool) error {
	if err := j.allowed(f.Path); err != nil {
		return fmt.Errorf("restore %w", err)
	}
	u, g := f.AsUID, f.AsGID
	if u == 0 {
		u, g = f.UID, f.GID // not recorded: the file's owner
	}
	u, g = identityIn(filepath.Dir(f.Path), u, g)
	if err := asIdentity(u, g, func() error { return restoreFile(f, o, check) }); err != nil {
		return fmt.Errorf("restore %w", err)
	}
	return nil
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// restoreFile restores one file (check: only says whether it would); its
// errors start with the file's path.
func restoreFile(f FileBackup, o RestoreOptions, check bool) error {
	cur, st, err := readNoFollow(f.Path)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	exists := st != nil
	var old []byte
	if f.Existed {
		if exists && sha256Hex(cur) == f.OldSHA256 {
			return nil
		}
		data, bst, err := readNoFollow(f.Backup)
		if err == nil && bst == nil {
			err = os.ErrNotExist
		}
		if err != nil {
			return fmt.Errorf("%s: read backup %s: %w", f.Path, f.Backup, err)
		}
		if sha256Hex(data) != f.OldSHA256 {
			return fmt.Errorf("%s: backup %s does not hold the recorded content", f.Path, f.Backup)
		}
		old = data
	} else if !exists {
		return nil
	}
	ours := exists && ((f.NewSHA256 != "" && sha256Hex(cur) == f.NewSHA256) || (o.Ours != nil && o.Ours(f, old, cur)))
	if !ours && !o.Force {
		return fmt.Errorf("%s: %w", f.Path, ErrChanged)
	}
	if check {
		return nil
	}
	if !f.Existed {
		err := os.Remove(f.Path)
		if err == nil {
			err = syncDir(filepath.Dir(f.Path))
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s (remove, it did not exist before): %w", f.Path, err)
		}
		return nil
	}
	if err := writeFileHere(f.Path, old, f.Mode, f.UID, f.GID); err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	return nil
}

// Done removes the journal (fsyncing its directory): the apply finished or
// was rolled back. The backups stay as the operator's undo.
func (j *Journal) Done() error {
	if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove journal %s: %w", j.path, err)
	}
	return syncDir(filepath.Dir(j.path))
}
