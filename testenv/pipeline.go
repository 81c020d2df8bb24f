package testenv

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"

	yaml "go.yaml.in/yaml/v3"
)

// LocalizePolicy puts a running env's addresses and files into a policy
// written for a real deployment (examples/pipeline/policy.yaml), so the
// demo runs the shipped example itself rather than a look-alike. From the
// generated policy (testenv's policy.yaml or policy-full.yaml) it takes,
// per target of the same name, the connection and certificate_names
// (testenv's servers have certificates for 127.0.0.1 and localhost) and
// every spec value it sets (addresses, paths: they win; lists of names are
// joined); and certificates.vault. Everything else — profile, rotation and
// alert tiers, the mTLS scope, the example's own spec choices (transit
// keys, sensitive prefixes, envelope), clients — stays the example's. A
// client's delivery directory moves into stateDir. Comments are kept.
// Every example target must exist in the generated policy.
func LocalizePolicy(example, generated []byte, stateDir string) ([]byte, error) {
	var ex, gen yaml.Node
	if err := yaml.Unmarshal(example, &ex); err != nil {
		return nil, fmt.Errorf("example policy: %w", err)
	}
	if err := yaml.Unmarshal(generated, &gen); err != nil {
		return nil, fmt.Errorf("generated policy: %w", err)
	}
	if len(ex.Content) != 1 || len(gen.Content) != 1 {
		return nil, fmt.Errorf("a policy is one YAML document")
	}
	exRoot, genRoot := ex.Content[0], gen.Content[0]
	genTargets := map[string]*yaml.Node{}
	for _, t := range seq(get(genRoot, "targets")) {
		genTargets[scalar(get(t, "name"))] = t
	}
	for _, t := range seq(get(exRoot, "targets")) {
		name := scalar(get(t, "name"))
		g, ok := genTargets[name]
		if !ok {
			return nil, fmt.Errorf("target %s of the example is not running here (start its service)", name)
		}
		if ep, gp := scalar(get(t, "plugin")), scalar(get(g, "plugin")); ep != gp {
			return nil, fmt.Errorf("target %s is plugin %s in the example but %s here: not the same server", name, ep, gp)
		}
		for _, key := range []string{"connection", "certificate_names", "certificate"} {
			if v := get(g, key); v != nil {
				set(t, key, flow(v))
			} else {
				del(t, key)
			}
		}
		if gs := get(g, "spec"); gs != nil {
			es := get(t, "spec")
			if es == nil {
				set(t, "spec", gs)
			} else {
				merge(es, gs)
			}
		}
	}
	if gv := get(get(genRoot, "certificates"), "vault"); gv != nil {
		if ec := get(exRoot, "certificates"); ec != nil {
			set(ec, "vault", flow(gv))
		}
	}
	if gs := get(get(genRoot, "certificates"), "source"); gs != nil {
		if ec := get(exRoot, "certificates"); ec != nil && scalar(gs) != scalar(get(ec, "source")) {
			return nil, fmt.Errorf("the example's certificate source %q is not the env's %q", scalar(get(ec, "source")), scalar(gs))
		}
	}
	for _, c := range seq(get(exRoot, "clients")) {
		if d := get(get(c, "deliver"), "dir"); d != nil {
			d.Value = filepath.Join(stateDir, "clients", scalar(get(c, "name")))
		}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&ex); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// joinLists are the lists of names both sides add to (the example's
// client identities and testenv's probe identity); every other list — a
// restart command, listener addresses — is the env's.
var joinLists = map[string]bool{"client_names": true, "keys": true, "sensitive_prefixes": true}

// merge sets every key of src into dst: maps recursively, the joinLists
// joined (dst's first), everything else replaced by src's.
func merge(dst, src *yaml.Node) {
	if dst.Kind != yaml.MappingNode || src.Kind != yaml.MappingNode {
		*dst = *src
		return
	}
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := src.Content[i].Value, src.Content[i+1]
		d := get(dst, k)
		switch {
		case d == nil:
			set(dst, k, v)
		case d.Kind == yaml.MappingNode && v.Kind == yaml.MappingNode:
			merge(d, v)
		case joinLists[k] && d.Kind == yaml.SequenceNode && v.Kind == yaml.SequenceNode && scalars(d) && scalars(v):
			for _, n := range v.Content {
				if !slices.ContainsFunc(d.Content, func(x *yaml.Node) bool { return x.Value == n.Value }) {
					d.Content = append(d.Content, n)
				}
			}
		default:
			set(dst, k, v)
		}
	}
}

func scalars(n *yaml.Node) bool {
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			return false
		}
	}
	return true
}

// flow renders a generated block on one line, as testenv writes it.
func flow(n *yaml.Node) *yaml.Node {
	c := *n
	if c.Kind == yaml.MappingNode || c.Kind == yaml.SequenceNode {
		c.Style = yaml.FlowStyle
	}
	return &c
}

func get(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func set(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

func del(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

func seq(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

func scalar(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	return n.Value
}
