package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	vault "github.com/hashicorp/vault/api"

	"github.com/harden-dev/harden/shared/sdk"
)

// binarySuffix names the key a binary file (not valid UTF-8, e.g. a
// PKCS#12 keystore) is stored under, base64-encoded: KV v2 values are
// JSON, and JSON strings are text.
const binarySuffix = ".base64"

// DeliverSecret writes a client's bundle to its KV v2 path as one new
// version, then the bundle's custom_metadata (the host's entries and
// kv_version, the version they describe), then reads that version back
// and requires it to be what was sent. Only a client of the policy, at its
// own deliver.vault_kv path, is accepted: nothing else may be written with
// harden's token. The writes use the target's token (apply's rights); a
// token that cannot write both the data and the metadata, or read the
// version back, is refused before anything is written. The bundle holds a
// private key: no value is logged, put in an error or returned.
func (vaultPKI) DeliverSecret(ctx context.Context, q sdk.DeliverSecretRequest, r *sdk.DeliverSecretResponse) {
	st, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	k, err := st.deliveryFor(q.Client, q.Path)
	if err != nil {
		r.Diagnostics.AddError("delivery refused: nothing was written", err.Error())
		return
	}
	data, err := encodeBundle(q.Data)
	if err != nil {
		r.Diagnostics.AddError("delivery refused: nothing was written", fmt.Sprintf("client %s's bundle for %s: %v", k.name, k.dataPath(), err))
		return
	}
	if _, ok := q.Metadata[kvVersionKey]; ok {
		r.Diagnostics.AddError("delivery refused: nothing was written", fmt.Sprintf("client %s's metadata for %s: the entry %s is the plugin's own (the version the metadata describes)", k.name, k.dataPath(), kvVersionKey))
		return
	}
	cl, err := client(ctx, q.RequestContext, st.conn)
	if err != nil {
		r.Diagnostics.AddTargetError("vaultpki.login", "cannot log in to Vault to deliver client "+k.name+"'s bundle; nothing was written", err)
		return
	}
	if err := deliverable(ctx, cl, k); err != nil {
		r.Diagnostics.AddTargetError("vaultpki.deliver", "client "+k.name+"'s bundle not delivered; nothing was written", err)
		return
	}
	version, err := writeBundle(ctx, cl, k, data, q.Metadata)
	r.Version = version
	if err != nil {
		r.Diagnostics.AddTargetError("vaultpki.deliver", "client "+k.name+"'s bundle not delivered as sent", err)
	}
}

// deliveryFor is the policy's client name, delivered to path: refused
// unless the policy declares it with that deliver.vault_kv.
func (st *settings) deliveryFor(name, path string) (kvClient, error) {
	c, ok := sdk.Policy{Clients: st.clientRefs}.Client(name)
	switch {
	case !ok:
		return kvClient{}, fmt.Errorf("client %q is not one of the policy's clients: harden delivers bundles of declared clients only", name)
	case c.VaultKV == "":
		return kvClient{}, fmt.Errorf("client %s is delivered to a directory (deliver.dir), not to Vault KV", name)
	case c.VaultKV != path:
		return kvClient{}, fmt.Errorf("path %q is not client %s's deliver.vault_kv (%s): a bundle goes to its own client's path only", path, name, c.VaultKV)
	}
	for _, k := range st.kv {
		if k.name == name {
			return k, nil
		}
	}
	// loadClients refused the client's path already; kept total.
	return kvClient{}, fmt.Errorf("client %s's deliver.vault_kv %s was refused", name, c.VaultKV)
}

// encodeBundle is the KV v2 data of a bundle: each file's text as a string,
// a file that is not valid UTF-8 (a PKCS#12 store) base64-encoded under
// "<name>.base64". A text file's name may not end in ".base64", so every
// key says how to read it back and no two files share one. A bundle
// without tls.crt, or with a file name that is empty or not UTF-8 (a JSON
// key could not hold it), is refused.
func encodeBundle(files map[string][]byte) (map[string]any, error) {
	if len(files) == 0 {
		return nil, errors.New("the bundle is empty")
	}
	out := make(map[string]any, len(files))
	for name, v := range files {
		switch {
		case name == "":
			return nil, errors.New("a file of the bundle has no name")
		case !utf8.ValidString(name):
			return nil, fmt.Errorf("file name %q is not UTF-8 text (KV v2 keys are JSON strings)", name)
		case !utf8.Valid(v):
			out[name+binarySuffix] = base64.StdEncoding.EncodeToString(v)
		case strings.HasSuffix(name, binarySuffix):
			return nil, fmt.Errorf("text file %s: a name ending in %s marks a base64-encoded binary file", name, binarySuffix)
		default:
			out[name] = string(v)
		}
	}
	if _, ok := out["tls.crt"]; !ok {
		return nil, errors.New("the bundle has no tls.crt (PEM text)")
	}
	return out, nil
}

// deliverable: the client's mount is KV version 2 (asked through
// sys/internal/ui/mounts, which any token with a right under the path may
// read: the CLI's own check) and the token may write the version and its
// metadata and read the version back (sys/capabilities-self). A version 1
// mount would store "data/<path>" as a secret of its own.
func deliverable(ctx context.Context, cl *vault.Client, k kvClient) error {
	s, err := cl.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts/"+k.dataPath())
	var re *vault.ResponseError
	switch {
	case errors.As(err, &re) && re.StatusCode == 403:
		return fmt.Errorf("which mount serves %s: refused (the mount %s does not exist, or the token has no right under it; harden apply creates the mount): %w", k.dataPath(), k.mount, err)
	case err != nil:
		return fmt.Errorf("ask Vault which mount serves %s: %w", k.dataPath(), err)
	case s == nil:
		return fmt.Errorf("ask Vault which mount serves %s: empty answer", k.dataPath())
	}
	path, _ := s.Data["path"].(string)
	typ, _ := s.Data["type"].(string)
	opts, _ := s.Data["options"].(map[string]any)
	version, _ := opts["version"].(string)
	switch {
	case path != k.mount+"/":
		return fmt.Errorf("%s is served by mount %q, not by mount %s: run harden apply (it creates %s as KV v2)", k.dataPath(), path, k.mount, k.mount)
	case typ != "kv" || version != "2":
		return fmt.Errorf("mount %s is %s version %q, not KV version 2: client %s's bundle is not written there", k.mount, typ, version, k.name)
	}
	var missing []string
	for _, need := range []struct {
		path string
		any  []string
		what string
	}{
		{k.dataPath(), []string{"create", "update"}, "create or update"},
		{k.dataPath(), []string{"read"}, "read"},
		{k.metadataPath(), []string{"update"}, "update"},
	} {
		caps, err := cl.Sys().CapabilitiesSelfWithContext(ctx, need.path)
		if err != nil {
			return fmt.Errorf("sys/capabilities-self for %s: %w", need.path, err)
		}
		if !slices.Contains(caps, "root") && !slices.ContainsFunc(need.any, func(c string) bool { return slices.Contains(caps, c) }) {
			missing = append(missing, fmt.Sprintf("%s needs %s (token has %v)", need.path, need.what, caps))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the Vault token lacks capabilities: %s", strings.Join(missing, "; "))
	}
	return nil
}

// writeBundle writes data as a new version, then custom_metadata (always,
// replacing the previous delivery's: the host's entries and kv_version,
// the version just written, which Inventory requires to be the current
// one), and reads the version back. It returns the version once the data
// write succeeded, even when a later step failed: the error says what was
// and was not done.
func writeBundle(ctx context.Context, cl *vault.Client, k kvClient, data map[string]any, hostMetadata map[string]string) (int, error) {
	s, err := cl.Logical().WriteWithContext(ctx, k.dataPath(), map[string]any{"data": data})
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", k.dataPath(), err)
	}
	var version int64 = -1
	if s != nil {
		version, err = wholeNumber(s.Data["version"])
	}
	if err != nil || version < 1 || version > 1<<31-1 {
		return 0, fmt.Errorf("write %s: Vault's answer names no version (%v): whether and which version was written is unknown", k.dataPath(), orNil(s))
	}
	v := int(version)
	metadata := maps.Clone(hostMetadata)
	if metadata == nil {
		metadata = map[string]string{}
	}
	metadata[kvVersionKey] = strconv.Itoa(v)
	custom := map[string]any{}
	for key, val := range metadata {
		custom[key] = val
	}
	if _, err := cl.Logical().WriteWithContext(ctx, k.metadataPath(), map[string]any{"custom_metadata": custom}); err != nil {
		return v, fmt.Errorf("version %d of %s was written, but its custom_metadata was not (%s still holds the previous delivery's): %w", v, k.dataPath(), k.metadataPath(), err)
	}
	back, err := cl.Logical().ReadWithDataWithContext(ctx, k.dataPath(), map[string][]string{"version": {strconv.Itoa(v)}})
	if err != nil || back == nil {
		if err == nil {
			err = errors.New("not found (404)")
		}
		return v, fmt.Errorf("version %d of %s was written but could not be read back: %w", v, k.dataPath(), err)
	}
	if diff := bundleDiff(back.Data, data, metadata); len(diff) > 0 {
		return v, fmt.Errorf("version %d of %s read back differs from what was sent: %s", v, k.dataPath(), strings.Join(diff, "; "))
	}
	return v, nil
}

func orNil(s *vault.Secret) any {
	if s == nil {
		return "no data"
	}
	return s.Data["version"]
}

// bundleDiff names (never shows) what differs between a KV v2 read of a
// version and what was sent: keys missing, extra or with another value,
// and custom_metadata entries likewise.
func bundleDiff(read map[string]any, sent map[string]any, metadata map[string]string) []string {
	var diff []string
	got, _ := read["data"].(map[string]any)
	for _, key := range slices.Sorted(maps.Keys(sent)) {
		g, ok := got[key]
		switch {
		case !ok:
			diff = append(diff, key+" missing")
		case g != sent[key]:
			diff = append(diff, key+" differs")
		}
	}
	for _, key := range slices.Sorted(maps.Keys(got)) {
		if _, ok := sent[key]; !ok {
			diff = append(diff, key+" not sent")
		}
	}
	meta, _ := read["metadata"].(map[string]any)
	custom, _ := meta["custom_metadata"].(map[string]any)
	for _, key := range slices.Sorted(maps.Keys(metadata)) {
		if g, _ := custom[key].(string); g != metadata[key] || custom[key] == nil {
			diff = append(diff, "custom_metadata "+key+" differs")
		}
	}
	for _, key := range slices.Sorted(maps.Keys(custom)) {
		if _, ok := metadata[key]; !ok {
			diff = append(diff, "custom_metadata "+key+" not sent")
		}
	}
	return diff
}
