package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/harden-dev/harden/shared/sdk"
)

// Property is one key of a Java properties file, with where it stands.
type Property struct {
	Key, Value string
	// Line and End are the first and last physical lines (1-based) of the
	// logical line (continuations included).
	Line, End int
}

// parseProperties reads Java properties syntax (server.properties is
// untrusted input): "key=value", "key: value" or "key value", comments with
// # or !, logical lines continued by a trailing backslash, and \-escapes.
func parseProperties(text string) ([]Property, error) {
	var out []Property
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := strings.TrimLeft(lines[i], " \t\f")
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		// Join continuation lines: an odd number of trailing backslashes.
		for trailingBackslashes(line)%2 == 1 {
			line = line[:len(line)-1]
			i++
			if i >= len(lines) {
				break
			}
			line += strings.TrimLeft(lines[i], " \t\f")
		}
		key, value, err := splitProperty(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", start, err)
		}
		out = append(out, Property{Key: key, Value: value, Line: start, End: min(i+1, len(lines))})
	}
	return out, nil
}

func trailingBackslashes(s string) int {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n
}

// splitProperty splits a logical line at the first unescaped =, : or
// whitespace and unescapes both sides.
func splitProperty(line string) (string, string, error) {
	var key strings.Builder
	i := 0
	for i < len(line) {
		c := line[i]
		if c == '\\' && i+1 < len(line) {
			key.WriteByte(unescape(line[i+1]))
			i += 2
			continue
		}
		if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
			break
		}
		key.WriteByte(c)
		i++
	}
	rest := strings.TrimLeft(line[i:], " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	var val strings.Builder
	for j := 0; j < len(rest); j++ {
		if rest[j] == '\\' && j+1 < len(rest) {
			val.WriteByte(unescape(rest[j+1]))
			j++
			continue
		}
		val.WriteByte(rest[j])
	}
	if key.Len() == 0 {
		return "", "", fmt.Errorf("empty key")
	}
	return key.String(), val.String(), nil
}

func unescape(c byte) byte {
	switch c {
	case 't':
		return '\t'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 'f':
		return '\f'
	}
	return c
}

// propertyMap: the last occurrence of a key wins, as in java.util.Properties.
func propertyMap(ps []Property) map[string]string {
	m := make(map[string]string, len(ps))
	for _, p := range ps {
		m[p.Key] = p.Value
	}
	return m
}

// readBrokerProperties reads and parses the broker's server.properties,
// reporting failures as target diagnostics (plan and verify).
func readBrokerProperties(file string, d *sdk.Diagnostics) ([]byte, map[string]string, bool) {
	text, err := os.ReadFile(file)
	if err != nil {
		d.AddTargetError("kafka.config.read", "cannot read the broker's server.properties", err)
		return nil, nil, false
	}
	props, err := parseProperties(string(text))
	if err != nil {
		d.AddTargetError("kafka.config.parse", file, err)
		return nil, nil, false
	}
	return text, propertyMap(props), true
}
