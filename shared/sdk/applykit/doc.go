// Package applykit is the crash-consistency kit for a plugin's apply: an
// exclusive per-target lock (Lock), an intent journal written and fsynced
// before the first change and holding every backup (Begin, Backup, Restore,
// Done), and atomic file writes that never leave a temporary file behind
// (WriteFile, SweepTemps).
//
// The protocol a plugin follows:
//
//	unlock, err := applykit.Lock(lockPath)        // ErrLocked: another apply runs
//	j, err := applykit.Open(journalPath)           // non-nil: an earlier run was killed
//	if j != nil { j.Restore(); reload; j.Done() }   // recover first
//	j, err = applykit.Begin(journalPath, state)    // intent, fsynced
//	j.Backup(path); applykit.WriteFile(path, ...)  // each file: backup recorded first
//	j.SetPhase("reloaded") ...                     // step boundaries
//	j.Done()                                       // backups stay: the operator's undo
//
// "Journal present and lock free" means the run that wrote it died: the
// kernel drops a flock with its holder.
//
// Most plugins need only the shapes on top: a Session (Acquire, Begin) and
// RunSteps over a list of Steps — each an atomic change with its undo; the
// runner checks a pre-flight, marks every boundary in the journal with the
// fault hook (HARDEN_CRASH_AT=<plugin>:<phase>) and the request's
// cancellation, and on failure or Ctrl-C undoes this run's steps newest
// first, stopping at an undo that fails and keeping the journal (the steps
// still applied are a prefix of the run the next apply can resume). PlanToken and PlanCurrent
// are the stale-plan check (one code, apply.plan_stale); Notices is what
// plan and verify say about a journal.
//
// Trust: keep the journal and the lock where only the applying user can
// write (StateDir, TargetPaths), never in a directory the service's OS user
// owns — a journal there is that user's to rewrite, and Restore would then
// remove or overwrite what it names as root. Open journals with OpenAllowed
// (or Restrict) and the exact files the plugin writes.
//
// The owner rule: run as root, every file operation — WriteFile, Backup,
// Restore, MkdirAll, SweepTempsAs — runs with the filesystem identity
// (per-thread fsuid/fsgid on Linux, supplementary groups dropped) of the
// file's owner (the owner passed in, or the file's), or, for a file of
// root's or a new one, of the user who controls the directory (the owner
// of the deepest non-root directory on its path). So a symlink that user
// planted leads nowhere it could not write itself: EACCES. Only in a
// root-controlled directory (it and all above it root's and writable by
// nobody else) does root act as root, and give the file to its owner.
// Backups are read with O_NOFOLLOW and fstat on the same descriptor.
//
// Restore puts back only files that hold what the apply wrote (or their
// old content): anything else is ErrChanged until the operator forces it
// (RestoreWith Force); RestoreOptions.Ours lets a plugin recognise a file
// the server rewrites itself.
package applykit
