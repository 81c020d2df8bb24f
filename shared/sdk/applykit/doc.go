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
// Trust: keep the journal and the lock where only the applying user can
// write (StateDir, TargetPaths), never in a directory the service's OS user
// owns — a journal there is that user's to rewrite, and Restore would then
// remove or overwrite what it names as root. Open journals with OpenAllowed
// (or Restrict) and the exact files the plugin writes. Run as root, every
// file operation on a file owned by another user — WriteFile, Backup,
// Restore, MkdirAll with that owner — runs with that user's filesystem
// identity (AsOwner: a per-thread fsuid/fsgid on Linux), so a symlink that
// user planted leads nowhere it could not write itself. Restore puts back
// only files that hold what the apply wrote (or their old content):
// anything else is ErrChanged until the operator forces it.
package applykit
