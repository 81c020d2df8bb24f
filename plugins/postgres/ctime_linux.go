package main

import (
	"os"
	"syscall"
	"time"
)

// changeTime is the file's ctime (inode change time), which a copy that
// keeps the source's mtime cannot set back.
func changeTime(st os.FileInfo) (time.Time, bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(sys.Ctim.Sec, sys.Ctim.Nsec), true
}
