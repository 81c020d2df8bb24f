package envelope

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	vault "github.com/hashicorp/vault/api"
)

// DataKey is a fresh DEK: Plaintext is used once, in memory, for one
// object's body; Wrapped is what is stored.
type DataKey struct {
	Plaintext []byte
	Wrapped   string
	// KEKVersion is the KEK version that wrapped it.
	KEKVersion int
}

// KEK wraps and unwraps data keys.
type KEK interface {
	// ID names the KEK in records: "vault:<mount>/<key>" or "local:<id>".
	ID() string
	NewDataKey(ctx context.Context) (DataKey, error)
	Unwrap(ctx context.Context, wrapped string) ([]byte, error)
}

// Commitment binds a record to its DEK without revealing it: an HMAC of a
// fixed label under the DEK. Transit ciphertexts are randomised, so equal
// wrapped DEKs prove nothing; equal commitments prove a reused DEK, and a
// commitment that does not match after unwrapping proves a swapped record.
func Commitment(dek []byte) string {
	m := hmac.New(sha256.New, dek)
	m.Write([]byte("harden envelope DEK commitment v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// LocalKEK is a 32-byte key in a 0600 file, for users without a KMS. The
// DEK is wrapped with AES-256-GCM under it.
type LocalKEK struct {
	key []byte
	id  string
}

// NewLocalKEKFile writes a new random KEK to path (0600; refuses to
// overwrite).
func NewLocalKEKFile(path string) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write([]byte(base64.StdEncoding.EncodeToString(key) + "\n")); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// LoadLocalKEK reads a KEK file; it refuses files others can read.
func LoadLocalKEK(path string) (*LocalKEK, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("KEK file %s is readable by others (mode %04o): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("KEK file %s: not a base64 32-byte key", path)
	}
	sum := sha256.Sum256(append([]byte("harden local KEK id"), key...))
	return &LocalKEK{key: key, id: "local:" + hex.EncodeToString(sum[:8])}, nil
}

// ID implements KEK.
func (k *LocalKEK) ID() string { return k.id }

func (k *LocalKEK) aead() cipher.AEAD {
	b, _ := aes.NewCipher(k.key)
	a, _ := cipher.NewGCM(b)
	return a
}

// NewDataKey implements KEK.
func (k *LocalKEK) NewDataKey(context.Context) (DataKey, error) {
	dek := make([]byte, 32)
	nonce := make([]byte, 12)
	if _, err := rand.Read(dek); err != nil {
		return DataKey{}, err
	}
	if _, err := rand.Read(nonce); err != nil {
		return DataKey{}, err
	}
	sealed := k.aead().Seal(nonce, nonce, dek, []byte(k.id))
	return DataKey{Plaintext: dek, Wrapped: "local:v1:" + base64.StdEncoding.EncodeToString(sealed), KEKVersion: 1}, nil
}

// Unwrap implements KEK.
func (k *LocalKEK) Unwrap(_ context.Context, wrapped string) ([]byte, error) {
	b64, ok := strings.CutPrefix(wrapped, "local:v1:")
	if !ok {
		return nil, errors.New("not a local KEK wrapping")
	}
	sealed, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(sealed) < 12+16 {
		return nil, errors.New("malformed wrapped data key")
	}
	dek, err := k.aead().Open(nil, sealed[:12], sealed[12:], []byte(k.id))
	if err != nil {
		return nil, errors.New("the data key does not unwrap under this KEK (wrong KEK?)")
	}
	return dek, nil
}

// TransitKEK is a Vault transit key: datakey/plaintext makes a DEK and its
// wrapped copy, decrypt unwraps, and batch rewrap moves records to the
// latest key version without exposing a plaintext.
type TransitKEK struct {
	Client *vault.Client
	Mount  string
	Key    string
}

// ID implements KEK.
func (k *TransitKEK) ID() string { return "vault:" + k.Mount + "/" + k.Key }

// NewDataKey implements KEK.
func (k *TransitKEK) NewDataKey(ctx context.Context) (DataKey, error) {
	s, err := k.Client.Logical().WriteWithContext(ctx, k.Mount+"/datakey/plaintext/"+k.Key, map[string]any{"bits": 256})
	if err != nil {
		return DataKey{}, fmt.Errorf("transit datakey %s: %w", k.ID(), err)
	}
	pt, err := base64.StdEncoding.DecodeString(fmt.Sprint(s.Data["plaintext"]))
	if err != nil || len(pt) != 32 {
		return DataKey{}, fmt.Errorf("transit datakey %s: unexpected plaintext", k.ID())
	}
	ct := fmt.Sprint(s.Data["ciphertext"])
	return DataKey{Plaintext: pt, Wrapped: ct, KEKVersion: WrappedVersion(ct)}, nil
}

// Unwrap implements KEK.
func (k *TransitKEK) Unwrap(ctx context.Context, wrapped string) ([]byte, error) {
	s, err := k.Client.Logical().WriteWithContext(ctx, k.Mount+"/decrypt/"+k.Key, map[string]any{"ciphertext": wrapped})
	if err != nil {
		return nil, fmt.Errorf("transit decrypt with %s: %w", k.ID(), err)
	}
	return base64.StdEncoding.DecodeString(fmt.Sprint(s.Data["plaintext"]))
}

// Rewrap moves wrapped DEKs to the key's latest version in one batch call.
func (k *TransitKEK) Rewrap(ctx context.Context, wrapped []string) ([]string, error) {
	items := make([]map[string]any, len(wrapped))
	for i, w := range wrapped {
		items[i] = map[string]any{"ciphertext": w}
	}
	s, err := k.Client.Logical().WriteWithContext(ctx, k.Mount+"/rewrap/"+k.Key, map[string]any{"batch_input": items})
	if err != nil {
		return nil, fmt.Errorf("transit rewrap with %s: %w", k.ID(), err)
	}
	results, _ := s.Data["batch_results"].([]any)
	if len(results) != len(wrapped) {
		return nil, fmt.Errorf("transit rewrap: %d results for %d inputs", len(results), len(wrapped))
	}
	out := make([]string, len(results))
	for i, r := range results {
		m, _ := r.(map[string]any)
		if e, _ := m["error"].(string); e != "" {
			return nil, fmt.Errorf("transit rewrap item %d: %s", i, e)
		}
		out[i] = fmt.Sprint(m["ciphertext"])
	}
	return out, nil
}

// LatestVersion is the KEK's latest version.
func (k *TransitKEK) LatestVersion(ctx context.Context) (int, error) {
	s, err := k.Client.Logical().ReadWithContext(ctx, k.Mount+"/keys/"+k.Key)
	if err != nil || s == nil {
		return 0, fmt.Errorf("read %s: %v", k.ID(), err)
	}
	return strconv.Atoi(fmt.Sprint(s.Data["latest_version"]))
}

// WrappedVersion is the KEK version in a wrapped DEK ("vault:v3:..." → 3,
// "local:v1:..." → 1; 0 when unknown).
func WrappedVersion(wrapped string) int {
	parts := strings.SplitN(wrapped, ":", 3)
	if len(parts) < 3 || !strings.HasPrefix(parts[1], "v") {
		return 0
	}
	v, _ := strconv.Atoi(parts[1][1:])
	return v
}
