package envelope

import (
	"fmt"
	"strconv"
	"strings"
)

// Record is what an envelope-encrypted object carries in its metadata.
//
// Design call: the record lives in the object's own user metadata, not in
// a sidecar object. One PUT writes body and record atomically (no window
// where one exists without the other, no orphan to garbage-collect), a
// HEAD reads it without the body, and a rewrap replaces it with a
// metadata-only copy in place conditional on the ETag (If-Match), so a
// concurrent writer is never overwritten. S3 user metadata is limited to
// 2 KB; a record is ~300 bytes.
type Record struct {
	Version    int    // body format version
	KEK        string // KEK id: vault:<mount>/<key> or local:<id>
	KEKVersion int    // KEK version that wrapped the DEK
	WrappedDEK string
	Commitment string // HMAC of a fixed label under the DEK
	ChunkSize  int
	Size       int64 // plaintext size
}

// Metadata keys (without the x-amz-meta- prefix S3 adds on the wire).
const (
	MetaVersion    = "harden-envelope"
	MetaKEK        = "harden-kek"
	MetaKEKVersion = "harden-kek-version"
	MetaWrappedDEK = "harden-wrapped-dek"
	MetaCommitment = "harden-dek-commitment"
	MetaChunkSize  = "harden-chunk-size"
	MetaSize       = "harden-plaintext-size"
)

// Metadata renders the record as user metadata.
func (r Record) Metadata() map[string]string {
	return map[string]string{
		MetaVersion: strconv.Itoa(r.Version), MetaKEK: r.KEK, MetaKEKVersion: strconv.Itoa(r.KEKVersion),
		MetaWrappedDEK: r.WrappedDEK, MetaCommitment: r.Commitment, MetaChunkSize: strconv.Itoa(r.ChunkSize),
		MetaSize: strconv.FormatInt(r.Size, 10),
	}
}

// ParseRecord reads a record from user metadata (keys compared without
// case; S3 servers normalise them differently). Missing or malformed
// fields are an error naming the field.
func ParseRecord(meta map[string]string) (Record, error) {
	get := func(k string) string {
		for mk, v := range meta {
			mk = strings.ToLower(strings.TrimPrefix(strings.ToLower(mk), "x-amz-meta-"))
			if mk == k {
				return v
			}
		}
		return ""
	}
	var r Record
	var err error
	num := func(k string) int64 {
		if err != nil {
			return 0
		}
		v, perr := strconv.ParseInt(get(k), 10, 64)
		if perr != nil {
			err = fmt.Errorf("envelope record: %s missing or not a number", k)
		}
		return v
	}
	r.Version = int(num(MetaVersion))
	r.KEKVersion = int(num(MetaKEKVersion))
	r.ChunkSize = int(num(MetaChunkSize))
	r.Size = num(MetaSize)
	if err != nil {
		return r, err
	}
	r.KEK, r.WrappedDEK, r.Commitment = get(MetaKEK), get(MetaWrappedDEK), get(MetaCommitment)
	switch {
	case r.Version != Version:
		return r, fmt.Errorf("envelope record: version %d not supported", r.Version)
	case r.KEK == "" || r.WrappedDEK == "" || len(r.Commitment) != 64:
		return r, fmt.Errorf("envelope record: KEK, wrapped DEK or commitment missing")
	case r.ChunkSize < MinChunkSize || r.ChunkSize > MaxChunkSize || r.Size < 0:
		return r, fmt.Errorf("envelope record: chunk size or size out of range")
	}
	return r, nil
}
