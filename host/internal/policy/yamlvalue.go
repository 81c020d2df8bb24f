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
	maxDepth      = 64
	maxExpansions = 10000
)

type converter struct {
	pos        positions
	expansions int
}

func (c *converter) value(n *yaml.Node, path []string) (any, error) {
	if len(path) > maxDepth {
		return nil, &Error{Pos: Position{n.Line, n.Column}, Path: path, Msg: fmt.Sprintf("nesting deeper than %d levels", maxDepth)}
	}
	c.expansions++
	if c.expansions > maxExpansions {
		return nil, &Error{Pos: Position{n.Line, n.Column}, Path: path, Msg: "document expands to too many values (recursive or repeated aliases)"}
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
			return nil, &Error{Pos: Position{n.Line, n.Column}, Path: path, Msg: err.Error()}
		}
		return b, nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			return nil, &Error{Pos: Position{n.Line, n.Column}, Path: path, Msg: err.Error()}
		}
		return json.Number(strconv.FormatInt(i, 10)), nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, &Error{Pos: Position{n.Line, n.Column}, Path: path, Msg: "invalid number " + strconv.Quote(n.Value)}
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	case "!!str":
		return n.Value, nil
	}
	return nil, &Error{Pos: Position{n.Line, n.Column}, Path: path, Msg: fmt.Sprintf("unsupported YAML tag %s", n.ShortTag())}
}
