package engine

// KillAll SIGKILLs every plugin's whole process group at once, without a
// graceful exit: a second Ctrl-C, or an apply step that did not finish or
// roll back within its grace. Close must still be called.
func (e *Engine) KillAll() {
	for _, p := range e.Plugins {
		p.Client.Kill()
	}
}
