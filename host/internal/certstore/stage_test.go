package certstore

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStageKeepsTheReplacedPairAndRestores(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pg")
	s := Store{Dir: dir, Target: "pg"}
	a := pairFor(t, "a")
	b := pairFor(t, "b")
	c := pairFor(t, "c")
	if err := s.Stage("server", a, Pair{}); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Previous("server"); p.Valid() {
		t.Fatal("a previous pair out of nothing")
	}
	if err := s.Stage("server", b, a); err != nil {
		t.Fatal(err)
	}
	cur, _ := s.Current("server")
	prev, _ := s.Previous("server")
	if string(cur.Chain) != string(b.Chain) || string(prev.Chain) != string(a.Chain) || string(prev.Key) != string(a.Key) {
		t.Fatal("stage did not keep the replaced pair")
	}
	// After an interrupted rotation the caller keeps what is served (a),
	// not the unserved current pair (b).
	if err := s.Stage("server", c, a); err != nil {
		t.Fatal(err)
	}
	if prev, _ := s.Previous("server"); string(prev.Chain) != string(a.Chain) {
		t.Fatal("the served pair was not kept")
	}
	if err := s.Restore("server"); err != nil {
		t.Fatal(err)
	}
	if cur, _ := s.Current("server"); string(cur.Chain) != string(a.Chain) || string(cur.Key) != string(a.Key) {
		t.Fatal("restore did not bring the previous pair back")
	}
	for _, f := range []string{"server-key.pem", "server.prev-key.pem"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, err, fi)
		}
	}
	if err := (Store{Dir: t.TempDir(), Target: "x"}).Restore("server"); err == nil {
		t.Error("restore without a previous pair succeeded")
	}
}

var stageCA testCA

func pairFor(t *testing.T, cn string) Pair {
	t.Helper()
	if stageCA.cert == nil {
		stageCA = newCA(t, "stage CA", testNow.Add(-time.Hour), testNow.Add(365*24*time.Hour))
	}
	key, csr, err := NewKeyAndCSR(cn, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{ca: stageCA, lifetime: 90 * 24 * time.Hour}
	chain, err := is.sign(t)(csr)
	if err != nil {
		t.Fatal(err)
	}
	return Pair{Chain: chain, Key: key}
}
