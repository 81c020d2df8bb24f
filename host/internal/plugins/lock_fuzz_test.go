package plugins

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzReadLock: a lock file is read from disk where a careless or hostile
// edit may have left anything. Property: ReadLock never panics, and a lock
// it accepts survives Write and ReadLock unchanged (what harden pins is what
// it read).
func FuzzReadLock(f *testing.F) {
	f.Add([]byte(`{"version":1,"plugins":{"echo":{"sha256":"` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `","path":"/x/harden-plugin-echo"}}}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":2,"plugins":{}}`))
	f.Add([]byte(`{"version":1,"plugins":{"":{}}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte("{\"version\":1,\"plugins\":{\"a\\u0000b\":{\"sha256\":\"\\ud800\"}}}"))
	dir := f.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "in.lock")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := ReadLock(path)
		if err != nil {
			return
		}
		if l.Version != LockVersion || l.Plugins == nil {
			t.Fatalf("accepted lock %+v", l)
		}
		again := filepath.Join(dir, "again.lock")
		if err := l.Write(again); err != nil {
			t.Fatalf("write accepted lock: %v", err)
		}
		l2, err := ReadLock(again)
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if !reflect.DeepEqual(l, l2) {
			t.Fatalf("round trip changed the lock:\n%+v\n%+v", l, l2)
		}
	})
}
