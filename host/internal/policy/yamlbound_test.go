package policy

import (
	"bytes"
	"testing"

	"go.yaml.in/yaml/v3"
)

func countNodes(n *yaml.Node) int {
	c := 1
	for _, k := range n.Content {
		c += countNodes(k)
	}
	return c
}

// Property: the lexical estimate that refuses huge documents before parsing
// never under-counts what yaml.v3 builds by more than a factor of two, so
// the node cap cannot be slipped past with a dense document.
func FuzzYAMLNodeBound(f *testing.F) {
	for _, s := range []string{good, "a: b", "[a,b,c]", "{a: 1, b: [x, y]}", "- a\n- b\n", "a: |\n  x\n  y\n", "? a\n: b\n", "a: &x [1]\nb: *x\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		var doc yaml.Node
		if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
			return
		}
		// The document node itself is not counted.
		nodes, bound := countNodes(&doc)-1, yamlNodeBound(data)
		if nodes > 2*bound+2 {
			t.Fatalf("%d nodes, estimated %d: %q", nodes, bound, data)
		}
	})
}
