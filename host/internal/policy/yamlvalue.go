package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Position of a value in the policy file (1-based).
type Position struct {
	Line, Column int
}

// positions maps a JSON-pointer-like path ("targets/0/spec") to where its
// value starts; for mapping keys, "path#key" holds the key's own position so
// an unknown key is reported where it is written.
type positions map[string]Position

func joinPath(path []string) string { return strings.Join(path, "/") }

// toValue converts a YAML node to plain Go values (map[string]any, []any,
// string, bool, json.Number, nil) as JSON Schema validation expects, recording
// positions. Duplicate keys and merge keys are errors: both hide what the
// operator meant.
//
// Aliases are expanded with limits on depth and expansions, so a recursive
// alias or a "billion laughs" document fails fast instead of eating memory.
func toValue(n *yaml.Node, path []string, pos positions) (any, error) {
	return (&converter{pos: pos}).value(n, path)
}

const (
	maxDepth = 64
	// maxNodes caps the values of a document, aliases expanded: a fleet of
	// thousands of targets fits; parsing stays within tens of MB.
	maxNodes = 200000
)

// yamlNodeBound estimates from the bytes alone how many nodes yaml.v3 would
// build, so a huge document is refused before it is parsed (the parser's
// memory grows ~200 bytes per node): each flow separator (, [ {), each block
// indicator (- or : before a space or line end) and each line can start a
// node. It over-counts a ':' inside a plain scalar or a multi-line string,
// and never under-counts by more than a factor of two (FuzzYAMLNodeBound).
func yamlNodeBound(data []byte) int {
	n := 1
	for i, b := range data {
		switch b {
		case ',', '[', '{', '\n':
			n++
		case '-', ':':
			if i+1 == len(data) || data[i+1] == ' ' || data[i+1] == '\n' || data[i+1] == '\r' || data[i+1] == '\t' {
				n++
			}
		}
	}
	return n
}

type converter struct {
	pos        positions
	expansions int
	aliases    int
}

func (c *converter) value(n *yaml.Node, path []string) (any, error) {
	if len(path) > maxDepth {
		return nil, &Error{Pos: Position{n.Line, n.Column}, Path: path, Msg: fmt.Sprintf("nesting deeper than %d levels", maxDepth)}
	}
	c.expansions++
	if c.expansions > maxNodes {
		if c.aliases > 0 {
			return nil, &Error{Pos: Position{n.Line, n.Column}, Path: path, Msg: fmt.Sprintf("document expands to more than %d values through its aliases (recursive or repeated aliases)", maxNodes)}
		}
		return nil, &Error{Pos: Position{n.Line, n.Column}, Path: path, Msg: fmt.Sprintf("document has more than %d values; split the fleet into several policies", maxNodes)}
	}
	pos := c.pos
	pos[joinPath(path)] = Position{n.Line, n.Column}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.value(n.Content[0], path)
	case yaml.AliasNode:
		c.aliases++
		return c.value(n.Alias, path)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, &Error{Pos: Position{k.Line, k.Column}, Path: path, Msg: "mapping keys must be plain strings"}
			}
			if k.Tag == "!!merge" || k.Value == "<<" {
				return nil, &Error{Pos: Position{k.Line, k.Column}, Path: path, Msg: "YAML merge keys (<<) are not supported; write the keys out"}
			}
			if _, dup := m[k.Value]; dup {
				if secretKind(k.Value) != "" {
					// Never quote a key that looks like a secret.
					return nil, &Error{Pos: Position{k.Line, k.Column}, Path: path, Msg: "duplicate key (one that looks like a secret: never write secrets in the policy)"}
				}
				return nil, &Error{Pos: Position{k.Line, k.Column}, Path: append(path, k.Value), Msg: fmt.Sprintf("duplicate key %q", k.Value)}
			}
			child := append(append([]string(nil), path...), k.Value)
			pos[joinPath(path)+"#"+k.Value] = Position{k.Line, k.Column}
			val, err := c.value(v, child)
			if err != nil {
				return nil, err
			}
			m[k.Value] = val
		}
		return m, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			val, err := c.value(item, append(append([]string(nil), path...), strconv.Itoa(i)))
			if err != nil {
				return nil, err
			}
			out = append(out, val)
		}
		return out, nil
	case yaml.ScalarNode:
		return scalar(n, path)
	}
	return nil, &Error{Pos: Position{n.Line, n.Column}, Path: path, Msg: "unsupported YAML node"}
}

func scalar(n *yaml.Node, path []string) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			// yaml.v3's message quotes the value, which may be a secret.
			return nil, &Error{Pos: Position{n.Line, n.Column}, Path: path, Msg: "invalid boolean (want true or false)"}
		}
		return b, nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			return nil, &Error{Pos: Position{n.Line, n.Column}, Path: path, Msg: "invalid integer (or out of range)"}
		}
		return json.Number(strconv.FormatInt(i, 10)), nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, &Error{Pos: Position{n.Line, n.Column}, Path: path, Msg: "invalid number (NaN, infinity or not a number)"}
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	case "!!str":
		return n.Value, nil
	}
	return nil, &Error{Pos: Position{n.Line, n.Column}, Path: path, Msg: fmt.Sprintf("unsupported YAML tag %s", n.ShortTag())}
}
