package main

import (
	"path/filepath"
	"strings"

	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// settingKey is how a journal's Data records a value apply sets with ALTER
// SYSTEM: "set:<name>" = value.
const settingKey = "set:"

// autoConfOurs tells whether postgresql.auto.conf, as it is now, is what
// the journal's run made of it: PostgreSQL rewrites that file itself on
// every ALTER SYSTEM, so its new content cannot be recorded before the
// statement (and a kill right after it would leave it unknown). It is ours
// when every setting in it is as before or has the value that run set, and
// no setting of before is gone. Anything else — the DBA ran ALTER SYSTEM
// since, or edited the file — is not ours: Restore leaves it and asks for
// --force.
func autoConfOurs(s applykit.State) func(f applykit.FileBackup, old, cur []byte) bool {
	return func(f applykit.FileBackup, old, cur []byte) bool {
		if filepath.Base(f.Path) != "postgresql.auto.conf" || old == nil {
			return false
		}
		before, ok1 := parseAutoConf(string(old))
		now, ok2 := parseAutoConf(string(cur))
		if !ok1 || !ok2 {
			return false
		}
		for name, v := range now {
			if was, ok := before[name]; ok && was == v {
				continue
			}
			if set, ok := s.Data[settingKey+name]; ok && set == v {
				continue
			}
			return false
		}
		for name := range before {
			if _, ok := now[name]; !ok {
				return false
			}
		}
		return true
	}
}

// parseAutoConf reads a PostgreSQL configuration file of name = value
// lines (guc-file.l: '#' comments, an optional '=', a value quoted with
// '…' (a doubled quote and backslash escapes inside) or a bare word) into
// lower-case names and their values, the last one winning as in
// PostgreSQL. ok is false for anything else (include directives too): the
// caller then does not claim the file.
func parseAutoConf(text string) (map[string]string, bool) {
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' {
			continue
		}
		i := 0
		for i < len(line) && (isNameChar(line[i]) || line[i] == '.') {
			i++
		}
		name := strings.ToLower(line[:i])
		if name == "" || strings.HasPrefix(name, "include") {
			return nil, false
		}
		rest := strings.TrimLeft(line[i:], " \t")
		rest = strings.TrimLeft(strings.TrimPrefix(rest, "="), " \t")
		value, tail, ok := autoConfValue(rest)
		if !ok {
			return nil, false
		}
		if tail = strings.TrimLeft(tail, " \t"); tail != "" && tail[0] != '#' {
			return nil, false
		}
		out[name] = value
	}
	return out, true
}

func isNameChar(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// autoConfValue reads one value and returns what follows it.
func autoConfValue(s string) (value, tail string, ok bool) {
	if s == "" {
		return "", "", false
	}
	if s[0] != '\'' {
		i := 0
		for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '#' && s[i] != '\'' {
			i++
		}
		return s[:i], s[i:], i > 0
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'' && i+1 < len(s) && s[i+1] == '\'':
			b.WriteByte('\'')
			i++
		case c == '\'':
			return b.String(), s[i+1:], true
		case c == '\\' && i+1 < len(s):
			i++
			switch e := s[i]; e {
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '0', '1', '2', '3', '4', '5', '6', '7':
				return "", "", false // octal escapes: not claimed
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false // unterminated
}
