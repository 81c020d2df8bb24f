package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
)

// Client identities (the policy's clients:). Every client's CN is a name
// the client role may issue. A client delivered to Vault (deliver.vault_kv)
// gets its KV v2 mount and an ACL policy harden-client-<name> that grants
// read on its bundle's data path and nothing else: whoever logs in with it
// reads that one client's key and nothing of any other client's.

// The names and paths go into role names, policy names and policy paths, so
// they are held to what the policy schema allows: a glob character (* or +)
// in a path would widen a policy beyond the one secret, and a "." or ".."
// segment would name another path than the one shown.
var (
	clientNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	kvMountRE    = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	kvSegmentRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// kvClient is a client whose bundle goes to Vault KV v2.
type kvClient struct {
	name  string
	mount string // the KV v2 mount (one path segment)
	rest  string // the secret's path inside the mount
}

func (k kvClient) dataPath() string     { return k.mount + "/data/" + k.rest }
func (k kvClient) metadataPath() string { return k.mount + "/metadata/" + k.rest }
func (k kvClient) policyName() string   { return "harden-client-" + k.name }

// clientPolicy is the whole ACL policy of a client: read on its bundle's
// data path. A KV v2 read of the data path returns the version's
// custom_metadata too, so the client needs nothing on metadata/; it can
// neither write its bundle, nor list the mount, nor read another client's.
func clientPolicy(k kvClient) string {
	return fmt.Sprintf("# harden: client %s reads its certificate bundle, nothing else\npath %q {\n  capabilities = [\"read\"]\n}\n", k.name, k.dataPath())
}

// parseKVPath splits a KV v2 path as the API names it (mount/data/path).
func parseKVPath(p string) (mount, rest string, err error) {
	mount, rest, ok := strings.Cut(p, "/data/")
	if !ok || !kvMountRE.MatchString(mount) {
		return "", "", fmt.Errorf("%q is not a KV v2 path as the API names it (mount/data/path, the mount one segment of letters, digits, _ and -)", p)
	}
	segs := strings.Split(rest, "/")
	for _, s := range segs {
		if !kvSegmentRE.MatchString(s) || s == "." || s == ".." {
			return "", "", fmt.Errorf("%q: the path after %s/data/ must be segments of letters, digits, '.', '_' and '-' (no empty, '.' or '..' segment, no glob character)", p, mount)
		}
	}
	return mount, rest, nil
}

// loadClients reads the policy's clients into st: every name joins the
// client role's names after spec.pki.client_names (which keep harden's own
// identity), and the vault_kv ones become st.kv. A bad name or path, two
// clients sharing one secret, or a KV mount that is one of the PKI or
// transit mounts is a config error: nothing is asked of Vault.
func (st *settings) loadClients(p sdk.Policy, d *sdk.Diagnostics) bool {
	ok := true
	st.clientRefs = p.Clients
	st.clientNames = slices.Clone(st.clientNames)
	seenPath := map[string]string{}
	for i, c := range p.Clients {
		at := func(what, detail string) {
			d.AddError(fmt.Sprintf("policy clients[%d] (%s): %s", i, c.Name, what), detail)
			ok = false
		}
		if !clientNameRE.MatchString(c.Name) {
			at("name refused", fmt.Sprintf("client name %q must match %s: it is a certificate CN and part of the Vault policy name harden-client-<name>", c.Name, clientNameRE))
			continue
		}
		if !slices.Contains(st.clientNames, c.Name) {
			st.clientNames = append(st.clientNames, c.Name)
		}
		if c.VaultKV == "" {
			continue
		}
		mount, rest, err := parseKVPath(c.VaultKV)
		if err != nil {
			at("deliver.vault_kv refused", err.Error())
			continue
		}
		if slices.Contains([]string{st.rootMount, st.intMount, st.transitMount}, mount) {
			at("deliver.vault_kv refused", fmt.Sprintf("%s: mount %s is one of the PKI or transit mounts this target manages", c.VaultKV, mount))
			continue
		}
		if other, dup := seenPath[c.VaultKV]; dup {
			at("deliver.vault_kv refused", fmt.Sprintf("clients %s and %s both deliver to %s: each would read the other's private key", other, c.Name, c.VaultKV))
			continue
		}
		seenPath[c.VaultKV] = c.Name
		st.kv = append(st.kv, kvClient{name: c.Name, mount: mount, rest: rest})
	}
	return ok
}

// clientSteps: each KV mount the clients name exists as KV version 2 (made
// with kv-v2 when missing; any other engine or a version 1 mount there is
// an error naming it, and nothing changes), and each client's ACL policy
// is harden's text (created or rewritten).
func clientSteps(ctx context.Context, cl *vault.Client, st *settings, mounts map[string]*vault.MountOutput) ([]step, error) {
	var steps []step
	made := map[string]bool{}
	for _, k := range st.kv {
		cur, ok := mounts[k.mount+"/"]
		switch {
		case made[k.mount]:
		case !ok:
			made[k.mount] = true
			steps = append(steps, kvMountStep(cl, st, k.mount))
		case cur.Type != "kv":
			return nil, fmt.Errorf("mount %s (client %s delivers to %s) is a %s engine, not KV version 2: choose another mount in clients[].deliver.vault_kv", k.mount, k.name, k.dataPath(), cur.Type)
		case cur.Options["version"] != "2":
			return nil, fmt.Errorf("mount %s (client %s delivers to %s) is KV version %s, not 2: harden writes client bundles as KV v2 versions; upgrade the mount (vault kv enable-versioning %s) or choose another mount", k.mount, k.name, k.dataPath(), orStr(cur.Options["version"], "1"), k.mount)
		}
	}
	for _, k := range st.kv {
		name, hcl := k.policyName(), clientPolicy(k)
		cur, err := cl.Sys().GetPolicyWithContext(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("read policy %s: %w", name, err)
		}
		if strings.TrimSpace(cur) == strings.TrimSpace(hcl) {
			continue
		}
		action, before := sdk.Create, ""
		if cur != "" {
			action, before = sdk.Update, oneLine(cur)
		}
		steps = append(steps, step{
			change: sdk.Change{Resource: "ACL policy " + name, Action: action, Before: before, After: "read on " + k.dataPath() + ", nothing else (client " + k.name + "'s bundle)"},
			needs:  map[string]string{"sys/policies/acl/" + name: "update"},
			apply:  func(ctx context.Context) error { return cl.Sys().PutPolicyWithContext(ctx, name, hcl) },
			undo: func(ctx context.Context) error {
				if cur == "" {
					return cl.Sys().DeletePolicyWithContext(ctx, name)
				}
				return cl.Sys().PutPolicyWithContext(ctx, name, cur)
			},
		})
	}
	return steps, nil
}

// kvMountStep makes a KV v2 mount and waits until it serves: a fresh KV v2
// mount finishes setting itself up in the background, and answers
// "upgrading" until then, so the next delivery could fail right after an
// apply that said it was done.
func kvMountStep(cl *vault.Client, st *settings, mount string) step {
	var names []string
	for _, k := range st.kv {
		if k.mount == mount {
			names = append(names, k.name)
		}
	}
	return step{
		change: sdk.Change{Resource: "mount " + mount, Action: sdk.Create, After: "kv-v2 (bundles of client " + strings.Join(names, ", ") + ")"},
		needs:  map[string]string{"sys/mounts/" + mount: "create"},
		apply: func(ctx context.Context) error {
			if err := cl.Sys().MountWithContext(ctx, mount, &vault.MountInput{Type: "kv-v2", Description: "harden: client certificate bundles"}); err != nil {
				return err
			}
			return waitKV(ctx, cl, mount, 15*time.Second)
		},
		undo: func(ctx context.Context) error { return cl.Sys().UnmountWithContext(ctx, mount) },
	}
}

// waitKV polls <mount>/config until the KV v2 mount answers it.
func waitKV(ctx context.Context, cl *vault.Client, mount string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		_, err := cl.Logical().ReadWithContext(ctx, mount+"/config")
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("KV v2 mount %s does not serve yet (%s after it was made): %w", mount, limit, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// verifierClientPaths are the reads harden-verify needs for the clients:
// each client's policy text (vaultpki.clients.policy) and its bundle's KV
// v2 metadata (inventory: current version, serial, not_after). Nothing on
// the data paths: they hold the clients' private keys. A metadata read
// shows no secret value; it does not let the token list the mount, write
// or delete anything.
func verifierClientPaths(st *settings) string {
	var b strings.Builder
	for _, k := range st.kv {
		fmt.Fprintf(&b, "path %q { capabilities = [\"read\"] }\n", "sys/policy/"+k.policyName())
		fmt.Fprintf(&b, "path %q { capabilities = [\"read\"] }\n", k.metadataPath())
	}
	return b.String()
}

// clientPolicyArtifacts are the clients' ACL policies as Render shows them.
func clientPolicyArtifacts(st *settings) []sdk.Artifact {
	var out []sdk.Artifact
	for _, k := range st.kv {
		out = append(out, sdk.Artifact{Path: "vault/policies/" + k.policyName() + ".hcl", Content: []byte(clientPolicy(k)), Mode: 0o644,
			Description: "Vault ACL policy of client " + k.name + ": read on its bundle " + k.dataPath() + ", nothing else"})
	}
	return out
}

// clientPolicies (vaultpki.clients.policy): each KV client's policy as
// Vault stores it (sys/policy/<name>) is harden's text, which grants read
// on the client's data path and nothing else. It is Vault's configuration,
// not a token seen being refused (that would need a token with the policy,
// which harden-verify may not make): the evidence says so.
func (v *verifier) clientPolicies() {
	const id = "vaultpki.clients.policy"
	for _, k := range v.st.kv {
		name := k.policyName()
		subject := "ACL policy " + name
		s, err := v.cl.Logical().ReadWithContext(v.ctx, "sys/policy/"+name)
		if err != nil {
			v.unknown(id, subject, "read sys/policy/"+name, err)
			continue
		}
		if s == nil {
			v.out = append(v.out, checks.Configured(id, subject, "Vault has no policy "+name+" (sys/policy/"+name+" answered 404): client "+k.name+" has no policy that reads its bundle "+k.dataPath()+"; run harden apply", false))
			continue
		}
		rules, ok := s.Data["rules"].(string)
		if !ok {
			v.reduce(id, subject, checks.Unknown("read sys/policy/"+name, "Vault's answer has no rules text"))
			continue
		}
		if strings.TrimSpace(rules) == strings.TrimSpace(clientPolicy(k)) {
			v.out = append(v.out, checks.Configured(id, subject, "Vault's sys/policy/"+name+" grants read on "+k.dataPath()+" and nothing else (harden's text)", true))
			continue
		}
		v.out = append(v.out, checks.Configured(id, subject, fmt.Sprintf("Vault's sys/policy/%s is not harden's least-privilege policy (read on %s, nothing else); it holds: %s; run harden apply",
			name, k.dataPath(), clip(oneLine(rules), 400)), false))
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// clientItems are the stored bundles of the KV clients, each known from its
// KV v2 metadata alone (clientItem).
func clientItems(ctx context.Context, cl *vault.Client, st *settings) []sdk.StoredItem {
	out := make([]sdk.StoredItem, 0, len(st.kv))
	for _, k := range st.kv {
		out = append(out, clientItem(ctx, cl, k, time.Now()))
	}
	return out
}

func unreadClients(st *settings, why string) []sdk.StoredItem {
	out := make([]sdk.StoredItem, 0, len(st.kv))
	for _, k := range st.kv {
		out = append(out, sdk.StoredItem{Kind: sdk.StoredCertificate, Name: "client/" + k.name, Location: k.dataPath(), Error: why})
	}
	return out
}

// clientItem reads one client's bundle from <mount>/metadata/<path> only:
// the current version and its state, and the custom_metadata DeliverSecret
// wrote beside it (serial, not_after). The data path is never read: it
// holds the client's private key, so harden-verify has no right on it,
// and a token that has one would pass the key through the plugin for
// nothing. The item names the data path (where the client reads its
// bundle) and carries no ChainPEM.
func clientItem(ctx context.Context, cl *vault.Client, k kvClient, now time.Time) sdk.StoredItem {
	path := k.metadataPath()
	it := sdk.StoredItem{Kind: sdk.StoredCertificate, Name: "client/" + k.name, Location: k.dataPath()}
	s, err := cl.Logical().ReadWithContext(ctx, path)
	switch {
	case err != nil:
		it.Error = itemError("read "+path, err)
	case s == nil:
		it.Error = "not found: Vault answered 404 for " + path + " (no bundle delivered yet)"
	default:
		f, err := bundleFacts(s.Data, k.name, now)
		if err != nil {
			it.Error = "read " + path + ": " + err.Error()
		} else {
			it.Serial, it.NotAfter = f.serial, f.notAfter
		}
	}
	return it
}

// kvVersionKey is the custom_metadata entry DeliverSecret adds to the
// host's: the KV v2 version the metadata describes. KV v2 keeps one
// custom_metadata per secret, not per version, and DeliverSecret writes it
// after the version, so a metadata write that failed leaves the previous
// delivery's serial beside a new version; this entry is what shows it.
const kvVersionKey = "kv_version"

// errDeleted: the current version of a bundle is deleted or destroyed.
var errDeleted = errors.New("the current version is deleted")

// colonHexRE is a serial as DeliverSecret's metadata holds it (Vault's
// colon-separated hex, one or more octets).
var colonHexRE = regexp.MustCompile(`^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){0,63}$`)

type bundleMeta struct {
	version  int
	serial   string
	notAfter time.Time
}

// bundleFacts reads a KV v2 metadata answer for client's bundle. Vault's
// answer is input: it must name a current version that is neither deleted
// (a deletion_time not in the future: delete_version_after sets one ahead
// at every write) nor destroyed, and custom_metadata with a colon-hex
// serial and an RFC 3339 not_after; anything else is an error, never a
// plausible certificate. custom_metadata naming another kv_version than the
// current one, or another subject than the client, is from another
// delivery: an error too. A kv_version that is absent is accepted (bundles
// delivered before DeliverSecret wrote it).
func bundleFacts(d map[string]any, client string, now time.Time) (bundleMeta, error) {
	var f bundleMeta
	cur, err := wholeNumber(d["current_version"])
	if err != nil || cur < 1 || cur > 1<<31-1 {
		return f, fmt.Errorf("no current version in Vault's answer (current_version %v): nothing delivered, or every version removed", d["current_version"])
	}
	f.version = int(cur)
	v := strconv.Itoa(f.version)
	versions, _ := d["versions"].(map[string]any)
	state, ok := versions[v].(map[string]any)
	if !ok {
		return bundleMeta{}, fmt.Errorf("the answer lists no state of the current version %s", v)
	}
	destroyed, ok := state["destroyed"].(bool)
	if !ok {
		return bundleMeta{}, fmt.Errorf("the answer does not say whether the current version %s is destroyed", v)
	}
	if destroyed {
		return bundleMeta{}, fmt.Errorf("%w: version %s is destroyed (the client has no bundle to read)", errDeleted, v)
	}
	switch dt, ok := state["deletion_time"].(string); {
	case !ok:
		return bundleMeta{}, fmt.Errorf("the answer has no deletion_time text for the current version %s", v)
	case dt != "":
		when, err := time.Parse(time.RFC3339Nano, dt)
		if err != nil {
			return bundleMeta{}, fmt.Errorf("the current version %s has a deletion_time that is not RFC 3339 (%q)", v, clip(dt, 64))
		}
		if !when.After(now) {
			return bundleMeta{}, fmt.Errorf("%w: version %s was deleted at %s (the client has no bundle to read)", errDeleted, v, when.UTC().Format(time.RFC3339))
		}
	}
	custom, _ := d["custom_metadata"].(map[string]any)
	if len(custom) == 0 {
		return bundleMeta{}, errors.New("no custom_metadata: the bundle's serial and not_after are unknown (not delivered by harden, or its metadata write failed)")
	}
	serial, _ := custom["serial"].(string)
	if !colonHexRE.MatchString(serial) {
		return bundleMeta{}, fmt.Errorf("custom_metadata serial %q is not a colon-hex serial", clip(serial, 64))
	}
	na, _ := custom["not_after"].(string)
	f.notAfter, err = time.Parse(time.RFC3339, na)
	if err != nil || f.notAfter.Unix() <= 0 {
		return bundleMeta{}, fmt.Errorf("custom_metadata not_after %q is not an RFC 3339 time after 1970", clip(na, 64))
	}
	f.notAfter = f.notAfter.UTC()
	if kv, ok := custom[kvVersionKey]; ok && kv != v {
		return bundleMeta{}, fmt.Errorf("custom_metadata describes version %v, but the current version is %s: the metadata is from another delivery (its write failed after the version was written)", clip(fmt.Sprint(kv), 16), v)
	}
	if sub, ok := custom["subject"]; ok && sub != client {
		return bundleMeta{}, fmt.Errorf("custom_metadata subject %q is not client %s", clip(fmt.Sprint(sub), 64), client)
	}
	f.serial = serial
	return f, nil
}
