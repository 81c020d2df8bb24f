package main

import (
	"fmt"
	"maps"
	"strings"
)

// mergeProperties sets the managed keys in a server.properties text and
// keeps everything else — unrelated keys, comments, blank lines, their
// order. A managed key is written where it first stands (a later duplicate,
// which would win in java.util.Properties, is removed); keys the file lacks
// are appended under a harden comment. Merging twice changes nothing.
func mergeProperties(text string, settings [][2]string) (string, error) {
	props, err := parseProperties(text)
	if err != nil {
		return "", err
	}
	want := map[string]string{}
	for _, kv := range settings {
		want[kv[0]] = kv[1]
	}
	lines := physicalLines(text)
	replace := map[int]string{} // first line -> new line
	drop := map[int]bool{}
	seen := map[string]bool{}
	for _, p := range props {
		v, managed := want[p.Key]
		if !managed {
			continue
		}
		for l := p.Line; l <= p.End; l++ {
			drop[l] = true
		}
		if !seen[p.Key] {
			seen[p.Key] = true
			delete(drop, p.Line)
			replace[p.Line] = propertyLine(p.Key, v)
		}
	}
	var out []string
	for i, line := range lines {
		n := i + 1
		if r, ok := replace[n]; ok {
			out = append(out, r)
			continue
		}
		if !drop[n] {
			out = append(out, line)
		}
	}
	// The file's last newline leaves an empty last element: append before it.
	trailing := len(out) > 0 && out[len(out)-1] == ""
	if trailing {
		out = out[:len(out)-1]
	}
	var missing []string
	for _, kv := range settings {
		if !seen[kv[0]] {
			missing = append(missing, propertyLine(kv[0], kv[1]))
		}
	}
	if len(missing) > 0 {
		out = append(out, "", "# TLS settings managed by harden (harden apply)")
		out = append(out, missing...)
	}
	merged := strings.Join(out, "\n") + "\n"
	// The broker must read exactly the file's keys with the managed ones
	// set: a last line that ends in a continuation, for one, would swallow
	// what follows it. Refuse rather than write a file that means more.
	expect := propertyMap(props)
	maps.Copy(expect, want)
	got, err := parseProperties(merged)
	if err != nil || !maps.Equal(propertyMap(got), expect) {
		return "", fmt.Errorf("merging the TLS settings would change keys harden does not manage (does the file end in a line continuation?): fix the file by hand first")
	}
	return merged, nil
}
