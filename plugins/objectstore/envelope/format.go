// Package envelope is harden's envelope encryption: every object gets its
// own data key (DEK), wrapped by a key-encryption key (KEK) in a KMS (Vault
// transit) or a local key file; the body is encrypted with the DEK in a
// streaming, chunked AES-256-GCM format, and the wrapped DEK travels in the
// object's metadata (Record), never in the body — so a KEK rotation rewraps
// the DEK record and never re-encrypts bodies.
//
// # Body format (version 1)
//
//	header  = magic "HRDN" | version 0x01 | algorithm 0x01 (AES-256-GCM)
//	          | chunk size (uint32, big endian) | nonce prefix (7 bytes)   = 17 bytes
//	chunk i = AES-256-GCM(DEK, nonce_i, plaintext_i, AD = header)      = len(plaintext_i) + 16
//	nonce_i = nonce prefix (7) | i (uint32, big endian) | final flag (0x00, or 0x01 on the last chunk)
//
// Every chunk but the last holds exactly chunk-size plaintext bytes; the
// last holds 0 to chunk-size bytes and is sealed with the final flag (an
// empty body is one empty final chunk). The header is authenticated by
// every chunk (AD), the chunk index in the nonce makes reordering and
// dropping chunks detectable, the final flag makes truncation at a chunk
// boundary and appended data detectable, and the per-object DEK makes
// swapping chunks between objects fail. The chunk size is checked against
// MaxChunkSize before anything is allocated. The KEK id and version live
// only in the Record: a body header would go stale on rewrap.
package envelope

import (
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	magic = "HRDN"
	// Version of the body format.
	Version = 1
	// AlgAES256GCM is the only algorithm of version 1.
	AlgAES256GCM = 1
	// HeaderSize is the size of the body header.
	HeaderSize = 17
	// TagSize is the AES-GCM tag appended to every chunk.
	TagSize = 16
	// DefaultChunkSize balances parallelism and memory (2 × workers chunks
	// in flight).
	DefaultChunkSize = 512 << 10
	// MinChunkSize and MaxChunkSize bound what a header may declare.
	MinChunkSize = 1 << 10
	MaxChunkSize = 16 << 20
	// maxChunks: the chunk index is 32 bits.
	maxChunks = 1<<32 - 1
)

// ErrFormat is returned for bodies that are not in this format.
var ErrFormat = errors.New("envelope: not an envelope body")

// ErrAuth is returned when a chunk does not authenticate: wrong key,
// tampered, truncated, reordered or appended data.
var ErrAuth = errors.New("envelope: authentication failed (wrong key, or tampered, truncated or reordered data)")

type header struct {
	chunkSize   int
	noncePrefix [7]byte
	raw         [HeaderSize]byte
}

func newHeader(chunkSize int, prefix [7]byte) header {
	h := header{chunkSize: chunkSize, noncePrefix: prefix}
	copy(h.raw[:4], magic)
	h.raw[4], h.raw[5] = Version, AlgAES256GCM
	binary.BigEndian.PutUint32(h.raw[6:10], uint32(chunkSize))
	copy(h.raw[10:], prefix[:])
	return h
}

// parseHeader validates a header before anything is allocated from it.
func parseHeader(b []byte) (header, error) {
	var h header
	if len(b) < HeaderSize || string(b[:4]) != magic {
		return h, ErrFormat
	}
	if b[4] != Version {
		return h, fmt.Errorf("envelope: body format version %d not supported (this build reads %d)", b[4], Version)
	}
	if b[5] != AlgAES256GCM {
		return h, fmt.Errorf("envelope: algorithm %d not supported", b[5])
	}
	cs := binary.BigEndian.Uint32(b[6:10])
	if cs < MinChunkSize || cs > MaxChunkSize {
		return h, fmt.Errorf("envelope: chunk size %d outside %d..%d", cs, MinChunkSize, MaxChunkSize)
	}
	h.chunkSize = int(cs)
	copy(h.noncePrefix[:], b[10:17])
	copy(h.raw[:], b[:HeaderSize])
	return h, nil
}

func (h header) nonce(i uint64, final bool) []byte {
	n := make([]byte, 12)
	copy(n, h.noncePrefix[:])
	binary.BigEndian.PutUint32(n[7:11], uint32(i))
	if final {
		n[11] = 1
	}
	return n
}

// EncryptedSize is the body size for a plaintext of n bytes.
func EncryptedSize(n int64, chunkSize int) int64 {
	chunks := n / int64(chunkSize)
	if n%int64(chunkSize) != 0 || n == 0 {
		chunks++
	}
	return HeaderSize + n + chunks*TagSize
}
