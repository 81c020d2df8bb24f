package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf16"

	"github.com/harden-dev/harden/shared/sdk"
)

// Property is one key of a Java properties file, with where it stands.
type Property struct {
	Key, Value string
	// Line and End are the first and last physical lines (1-based) of the
	// logical line (continuations included).
	Line, End int
}

// physicalLines splits text at \r\n, \r or \n: java.util.Properties ends a
// line at each of them (a lone \r too). parseProperties and the merge
// number lines the same way.
func physicalLines(text string) []string {
	var out []string
	start := 0
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '\n':
			out = append(out, text[start:i])
			start = i + 1
		case '\r':
			out = append(out, text[start:i])
			if i+1 < len(text) && text[i+1] == '\n' {
				i++
			}
			start = i + 1
		}
	}
	return append(out, text[start:])
}

// parseProperties reads server.properties (untrusted input) exactly as the
// broker does: Kafka loads it with java.util.Properties.load(InputStream),
// so the bytes are ISO 8859-1; "key=value", "key: value" or "key value";
// comment lines start with # or ! after leading blanks; a logical line is
// continued by an odd number of trailing backslashes (the next line's
// leading blanks dropped, and there # is no comment unless nothing came
// before); \t \n \r \f and \uXXXX escapes, any other \c is c; a malformed
// \uXXXX stops the broker (IllegalArgumentException) and is an error here.
// An empty key is legal.
func parseProperties(text string) ([]Property, error) {
	var out []Property
	for _, l := range logicalLines(text) {
		key, value, err := splitProperty(l.text)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", l.first, err)
		}
		out = append(out, Property{Key: key, Value: value, Line: l.first, End: l.last})
	}
	return out, nil
}

type logicalLine struct {
	text        string
	first, last int // physical lines, 1-based
}

// logicalLines is Properties.LineReader.readLine, state for state (JDK 17
// and 25 agree); the differential test against the JDK holds it to that.
func logicalLines(s string) []logicalLine {
	var out []logicalLine
	off, lineNo := 0, 1
	// eol counts a consumed line terminator: \n, or \r not followed by \n.
	eol := func(c byte) {
		if c == '\n' || (c == '\r' && (off >= len(s) || s[off] != '\n')) {
			lineNo++
		}
	}
	for {
		var buf []byte
		first := 0
		skipWhite, appendedLineBegin, precedingBackslash := true, false, false
		done := func() logicalLine {
			n := len(buf)
			if precedingBackslash {
				n--
			}
			return logicalLine{string(buf[:n]), first, lineNo}
		}
	line:
		for {
			if off >= len(s) {
				if len(buf) > 0 {
					out = append(out, done())
				}
				return out
			}
			c := s[off]
			off++
			if skipWhite {
				if isBlank(c) {
					continue
				}
				if !appendedLineBegin && (c == '\r' || c == '\n') {
					eol(c)
					continue
				}
				skipWhite, appendedLineBegin = false, false
			}
			if len(buf) == 0 && (c == '#' || c == '!') {
				for off < len(s) && s[off] != '\r' && s[off] != '\n' {
					off++
				}
				if off >= len(s) {
					return out
				}
				off++
				eol(s[off-1])
				skipWhite = true
				continue
			}
			if c != '\n' && c != '\r' {
				if first == 0 {
					first = lineNo
				}
				buf = append(buf, c)
				precedingBackslash = c == '\\' && !precedingBackslash
				continue
			}
			if len(buf) == 0 {
				eol(c)
				skipWhite = true
				continue
			}
			if off >= len(s) { // the terminator was the last byte
				out = append(out, done())
				return out
			}
			if !precedingBackslash {
				out = append(out, done())
				eol(c)
				break line
			}
			// A continuation: the backslash is not part of the line.
			buf = buf[:len(buf)-1]
			skipWhite, appendedLineBegin, precedingBackslash = true, true, false
			eol(c)
			if c == '\r' && s[off] == '\n' {
				off++
				eol('\n')
			}
		}
	}
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

// splitProperty splits a logical line at the first unescaped =, : or blank
// (blanks, then one = or :, then blanks more) and unescapes both sides.
func splitProperty(line string) (string, string, error) {
	i := 0
	escaped := false
	for ; i < len(line); i++ {
		c := line[i]
		if !escaped && (c == '=' || c == ':' || isBlank(c)) {
			break
		}
		escaped = c == '\\' && !escaped
	}
	keyPart := line[:i]
	rest := line[i:]
	sep := false
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		sep, rest = true, rest[1:]
	}
	for rest != "" {
		if isBlank(rest[0]) {
			rest = rest[1:]
			continue
		}
		if !sep && (rest[0] == '=' || rest[0] == ':') {
			sep, rest = true, rest[1:]
			continue
		}
		break
	}
	key, err := unescapeJava(keyPart)
	if err != nil {
		return "", "", err
	}
	value, err := unescapeJava(rest)
	if err != nil {
		return "", "", err
	}
	return key, value, nil
}

var errMalformedU = errors.New(`malformed \uxxxx encoding (the broker refuses to start)`)

// unescapeJava is Properties.loadConvert: bytes are ISO 8859-1 characters,
// escapes yield UTF-16 units (a \u surrogate pair is one character).
func unescapeJava(s string) (string, error) {
	units := make([]uint16, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			units = append(units, uint16(c))
			continue
		}
		i++
		if i >= len(s) {
			break // a lone trailing backslash: Java drops it
		}
		switch c = s[i]; c {
		case 'u':
			if len(s)-i-1 < 4 {
				return "", errMalformedU
			}
			var v uint16
			for _, h := range []byte(s[i+1 : i+5]) {
				d, ok := hexDigit(h)
				if !ok {
					return "", errMalformedU
				}
				v = v<<4 | uint16(d)
			}
			units = append(units, v)
			i += 4
		case 't':
			units = append(units, '\t')
		case 'n':
			units = append(units, '\n')
		case 'r':
			units = append(units, '\r')
		case 'f':
			units = append(units, '\f')
		default:
			units = append(units, uint16(c))
		}
	}
	return string(utf16.Decode(units)), nil
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// propertyLine is the one writer of a server.properties line (render and
// apply): Properties.store's rules, so the broker reads back exactly key and
// value — \, control characters and everything outside printable ASCII
// escaped (\uXXXX: the broker reads the file as ISO 8859-1), blanks, =, :, #
// and ! escaped in the key, a leading blank and # or ! in the value too.
// Whatever a value holds, it stays one line and one key.
func propertyLine(key, value string) string {
	return escapeJava(key, true) + "=" + escapeJava(value, false)
}

func escapeJava(s string, key bool) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == ' ' && (key || i == 0):
			b.WriteString(`\ `)
		case (r == '=' || r == ':' || r == '#' || r == '!') && (key || i == 0):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r > 0x7e:
			for _, u := range utf16.Encode([]rune{r}) {
				fmt.Fprintf(&b, `\u%04X`, u)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
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
