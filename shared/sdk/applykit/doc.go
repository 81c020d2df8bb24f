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
package applykit
