package sdk

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// MaxFileSize bounds what ReadFile reads: certificates, keys, CA bundles and
// secrets are kilobytes; a policy that names /dev/zero or a 10 GB log must
// not make a plugin run out of memory.
const MaxFileSize = 1 << 20

// ReadFile reads a file a policy names (a CA bundle, a certificate, a
// secret): a regular file of at most MaxFileSize bytes, else an error
// naming it. A FIFO is refused without waiting for a writer.
func ReadFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, st.Mode().Type())
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
