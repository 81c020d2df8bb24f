package report

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sharding (verify --shard I/N) splits a policy's work into N stable
// shares so that N machines (a Kubernetes Indexed Job, a Nomad batch job
// with count N) verify a fleet together and `harden report` merges them.
//
// What is split: units of work, each a (target, endpoint) pair, and a
// shard takes a unit whole. Today every unit is a whole target
// (Endpoint ""): a plugin chooses what it probes from its own connection
// block (postgres host/port, kafka brokers/bootstrap and the listeners
// their server.properties declare, objectstore and vaultpki endpoint
// URLs, redis address), and the request carries no endpoint list of the
// target itself (sdk.RequestContext.Target has none; Policy.Targets[].
// Endpoints describes every target to every plugin, e.g. to the vaultpki
// plugin that probes what the others serve). Narrowing a target's
// endpoints would therefore change nothing the plugin does, and cutting
// a target's checks across machines would split checks that read several
// endpoints at once (kafka's canary, vaultpki's served certificates).
// A plugin that one day probes exactly the endpoints it is given can be
// split per endpoint with the same hash: units then carry the endpoint.
//
// How: the unit's key is the first 8 bytes (big-endian) of
// SHA-256(target name, NUL, endpoint), mapped to a shard by jump
// consistent hashing (Lamping and Veach, 2014). So
//   - every unit is in exactly one shard of N, on every machine and in
//     every run (nothing depends on the order, the count of targets, the
//     --target selection or the host);
//   - adding or removing a target moves no other target;
//   - going from N to N+1 shards moves about 1/(N+1) of the units, all of
//     them into the new shard N; going down moves only the last shard's;
//   - renaming a target may move it (the name is the key).

// MaxShards bounds N: more shards than targets only yields empty shards,
// and a fleet of this many machines merges in seconds.
const MaxShards = 10000

// Shard is share Index (0-based) of Count.
type Shard struct{ Index, Count int }

// String is "I/N", the form of Run.Shard.
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Unit is a piece of work a shard takes whole: a target (Endpoint "") or,
// for a plugin that probes exactly the endpoints it is given, one of its
// endpoints.
type Unit struct{ Target, Endpoint string }

// TargetUnit is a whole target.
func TargetUnit(name string) Unit { return Unit{Target: name} }

// key is the unit's stable 64-bit hash.
func (u Unit) key() uint64 {
	h := sha256.New()
	h.Write([]byte(u.Target))
	h.Write([]byte{0})
	h.Write([]byte(u.Endpoint))
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])
}

// ShardOf is the shard (0..n-1) that takes u out of n.
func ShardOf(u Unit, n int) int { return jump(u.key(), n) }

// Has: u belongs to this shard.
func (s Shard) Has(u Unit) bool { return ShardOf(u, s.Count) == s.Index }

// jump is Lamping and Veach's jump consistent hash ("A Fast, Minimal
// Memory, Consistent Hash Algorithm", 2014): key to a bucket in [0, n).
func jump(key uint64, n int) int {
	var b, j int64 = -1, 0
	for j < int64(n) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}

// ParseShard reads a --shard value: "I/N" with 0 <= I < N <= MaxShards.
// I may also be "auto" ($JOB_COMPLETION_INDEX, which a Kubernetes Indexed
// Job sets in every pod) or a variable written $NAME, ${NAME} or $(NAME)
// that no shell expanded (a Kubernetes command without a shell, a quoted
// argument): its value is read from getenv. A value read from the
// environment is never repeated in an error (the name might be a
// secret's). On Nomad, pass "${NOMAD_ALLOC_INDEX}/N" (Nomad interpolates
// it); "auto" does not read it, because a job dispatched once per shard
// has NOMAD_ALLOC_INDEX 0 in every shard.
func ParseShard(spec string, getenv func(string) (string, bool)) (Shard, error) {
	is, ns, ok := strings.Cut(spec, "/")
	if !ok {
		return Shard{}, errors.New(`want I/N: shard I (0-based) of N, e.g. 0/3, or auto/N ($JOB_COMPLETION_INDEX)`)
	}
	n, err := shardNumber(ns)
	if err != nil || n < 1 || n > MaxShards {
		return Shard{}, fmt.Errorf("the shard count %q: want a whole number from 1 to %d", ns, MaxShards)
	}
	i, err := shardNumber(is)
	if err != nil {
		name, isVar := shardVariable(is)
		if !isVar {
			return Shard{}, fmt.Errorf("the shard index %q: want a whole number from 0 to %d, auto or $JOB_COMPLETION_INDEX", is, n-1)
		}
		if getenv == nil {
			return Shard{}, fmt.Errorf("the shard index: $%s is not set", name)
		}
		v, set := getenv(name)
		if !set || v == "" {
			return Shard{}, fmt.Errorf("the shard index: $%s is not set (a Kubernetes Indexed Job sets JOB_COMPLETION_INDEX; elsewhere give the index, e.g. 0/%d)", name, n)
		}
		if i, err = shardNumber(v); err != nil {
			return Shard{}, fmt.Errorf("the shard index: $%s is not a whole number", name)
		}
	}
	if i >= n {
		return Shard{}, fmt.Errorf("the shard index %d is not below the count %d (indexes are 0-based: 0 to %d)", i, n, n-1)
	}
	return Shard{Index: i, Count: n}, nil
}

// shardNumber: decimal digits only (no sign, no spaces), at most 9 of
// them (no overflow).
func shardNumber(s string) (int, error) {
	if s == "" || len(s) > 9 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("not a whole number")
	}
	return strconv.Atoi(s)
}

// shardVariable: "auto" or $NAME, ${NAME}, $(NAME) with a conventional
// environment variable name.
func shardVariable(s string) (string, bool) {
	if s == "auto" {
		return "JOB_COMPLETION_INDEX", true
	}
	name, ok := strings.CutPrefix(s, "$")
	if !ok {
		return "", false
	}
	switch {
	case strings.HasPrefix(name, "{") && strings.HasSuffix(name, "}"),
		strings.HasPrefix(name, "(") && strings.HasSuffix(name, ")"):
		name = name[1 : len(name)-1]
	}
	if name == "" {
		return "", false
	}
	for i, r := range name {
		if !(r >= 'A' && r <= 'Z' || r == '_' || i > 0 && r >= '0' && r <= '9') {
			return "", false
		}
	}
	return name, true
}
