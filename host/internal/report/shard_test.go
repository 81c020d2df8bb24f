package report

import (
	"fmt"
	"strings"
	"testing"
)

func units(n int) []Unit {
	out := make([]Unit, n)
	for i := range out {
		out[i] = TargetUnit(fmt.Sprintf("pg-%04d", i))
	}
	return out
}

// Every unit is in exactly one shard of N, whatever N.
func TestShardPartition(t *testing.T) {
	us := units(2000)
	for n := 1; n <= 40; n++ {
		for _, u := range us {
			in := 0
			for i := range n {
				if (Shard{i, n}).Has(u) {
					in++
				}
			}
			if in != 1 {
				t.Fatalf("N=%d: %v is in %d shards", n, u, in)
			}
		}
	}
}

// The split is a pure function of the unit's name: pinned here, so a
// change of hash (which would reshuffle every fleet's shards and make old
// shards unmergeable with new ones) cannot pass unnoticed.
func TestShardStableAcrossRunsAndVersions(t *testing.T) {
	want := map[string][3]int{ // name -> shard of 3, 7, 100
		"warehouse-pg": {2, 4, 4},
		"events-kafka": {0, 0, 46},
		"pg-0000":      {1, 1, 74},
		"":             {0, 6, 37},
	}
	for name, w := range want {
		got := [3]int{ShardOf(TargetUnit(name), 3), ShardOf(TargetUnit(name), 7), ShardOf(TargetUnit(name), 100)}
		if got != w {
			t.Errorf("%q: shards %v, want %v", name, got, w)
		}
	}
	// The endpoint is part of the key: (a, "b") and (a+"b", "") differ.
	if TargetUnit("ab").key() == (Unit{"a", "b"}).key() {
		t.Error("the NUL separator does not separate")
	}
}

// From N to N+1 shards a unit stays or moves into the new shard N, and
// about 1/(N+1) of them move; the shards are balanced.
func TestShardGrowthAndBalance(t *testing.T) {
	us := units(10000)
	for n := 1; n <= 12; n++ {
		moved := 0
		for _, u := range us {
			a, b := ShardOf(u, n), ShardOf(u, n+1)
			if a != b {
				if b != n {
					t.Fatalf("%v moved from %d/%d to %d/%d, not into the new shard", u, a, n, b, n+1)
				}
				moved++
			}
		}
		want := len(us) / (n + 1)
		if moved < want*85/100 || moved > want*115/100 {
			t.Errorf("N %d -> %d: %d of %d units moved, want about %d", n, n+1, moved, len(us), want)
		}
	}
	count := make([]int, 7)
	for _, u := range us {
		count[ShardOf(u, 7)]++
	}
	for i, c := range count {
		if mean := len(us) / 7; c < mean*90/100 || c > mean*110/100 {
			t.Errorf("shard %d/7 has %d of %d units: %v", i, c, len(us), count)
		}
	}
}

func TestParseShard(t *testing.T) {
	env := map[string]string{"JOB_COMPLETION_INDEX": "2", "NOMAD_ALLOC_INDEX": "4", "SECRET_TOKEN": "hunter2", "EMPTY": ""}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for spec, want := range map[string]string{
		"0/1": "0/1", "2/3": "2/3", "06/7": "6/7", "9999/10000": "9999/10000",
		"auto/3": "2/3", "$JOB_COMPLETION_INDEX/3": "2/3", "$(JOB_COMPLETION_INDEX)/5": "2/5", "${NOMAD_ALLOC_INDEX}/7": "4/7",
	} {
		s, err := ParseShard(spec, getenv)
		if err != nil || s.String() != want {
			t.Errorf("%q: %v %v, want %s", spec, s, err, want)
		}
	}
	for spec, want := range map[string]string{
		"":                         "want I/N",
		"3":                        "want I/N",
		"3/3":                      "not below the count 3",
		"0/0":                      "from 1 to 10000",
		"0/10001":                  "from 1 to 10000",
		"-1/3":                     "shard index",
		"1/-3":                     "shard count",
		" 1/3":                     "shard index",
		"1/3/":                     "shard count",
		"1.0/3":                    "shard index",
		"a/3":                      "shard index",
		"99999999999999999999/3":   "shard index",
		"$UNSET/3":                 "$UNSET is not set",
		"$EMPTY/3":                 "$EMPTY is not set",
		"$SECRET_TOKEN/3":          "$SECRET_TOKEN is not a whole number",
		"$(JOB_COMPLETION_INDEX/3": "shard index",
		"$lower/3":                 "shard index",
		"auto/2":                   "not below the count 2",
	} {
		_, err := ParseShard(spec, getenv)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", spec, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: the variable's value is in the error: %v", spec, err)
		}
	}
	if _, err := ParseShard("auto/3", nil); err == nil {
		t.Error("auto without an environment")
	}
}

func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"0/1", "2/3", "auto/7", "$X/2", "${X}/2", "$(X)/2", "3/3", "/", "0/10000"} {
		f.Add(s, "1")
	}
	f.Fuzz(func(t *testing.T, spec, val string) {
		s, err := ParseShard(spec, func(string) (string, bool) { return val, true })
		if err != nil {
			if strings.Contains(err.Error(), val) && len(val) > 3 && !strings.Contains(spec, val) {
				t.Fatalf("%q: the variable's value %q is in the error: %v", spec, val, err)
			}
			return
		}
		// A valid shard is in range and reads back as itself.
		if s.Count < 1 || s.Count > MaxShards || s.Index < 0 || s.Index >= s.Count {
			t.Fatalf("%q: %+v out of range", spec, s)
		}
		if back, err := ParseShard(s.String(), nil); err != nil || back != s {
			t.Fatalf("%q: %v does not read back: %v %v", spec, s, back, err)
		}
	})
}
