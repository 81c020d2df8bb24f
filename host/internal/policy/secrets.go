package policy

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Inline-secret detection covers the whole document — every block, every
// plugin's connection and spec, lists, and mapping keys — and runs before
// anything else looks at the values: once it finds something, only its own
// errors are reported, so no later message (a schema error quoting a value,
// a missing file named by its "path") can echo the secret. Its errors name
// the field and the kind of secret, never the value.

// secretKey matches keys that hold secrets when written inline.
var secretKey = regexp.MustCompile(`(?i)(^|_)(password|passwd|passphrase|secret|token|private_key|secret_key|access_key|api_key|unseal_key|credentials?|role_id|secret_id)$`)

var (
	// A JSON Web Token: base64url header (always {"... -> eyJ), payload, signature.
	jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`)
	// Vault service, batch and recovery tokens (hvs./hvb./hvr.), and the
	// pre-1.10 forms s./b./r. followed by 24 characters.
	vaultTokenRE = regexp.MustCompile(`(^|[^A-Za-z0-9])(hv[sbr]\.[A-Za-z0-9_-]{20,}|[sbr]\.[A-Za-z0-9]{24})($|[^A-Za-z0-9])`)
	// AWS access key IDs.
	awsKeyRE = regexp.MustCompile(`(^|[^A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}($|[^A-Z0-9])`)
	// Base64 of a DER SEQUENCE long enough to be a key (MII…, MIG…, MIH…).
	// Also the short ones: a P-256 SEC1 key (MHcCAQEE…) and an Ed25519 or
	// X25519 PKCS#8 key (MC4CAQAwBQYDK2V…).
	derRE = regexp.MustCompile(`(^|[^A-Za-z0-9+/])(MI[GHIJ][A-Za-z0-9+/]{60,}|MHcCAQEE[A-Za-z0-9+/]{40,}|MC4CAQAwBQYDK2V[A-Za-z0-9+/]{20,})`)
	// A password in a libpq key/value connection string or a URL query.
	kvPasswordRE = regexp.MustCompile(`(?i)(^|[\s?&;])(password|passwd|pwd|sslpassword|passphrase|secret|secret_key|token|access_token|api_key|apikey|x-amz-signature|x-amz-credential|sig)\s*=`)
)

// secretKind says what secret material s holds ("" when none is seen).
func secretKind(s string) string {
	switch {
	case strings.Contains(s, "-----BEGIN"):
		return "a PEM block (-----BEGIN …)"
	case strings.Contains(s, "PuTTY-User-Key-File-"):
		return "a PuTTY private key"
	case jwtRE.MatchString(s):
		return "a JSON Web Token"
	case vaultTokenRE.MatchString(s):
		return "a Vault token"
	case awsKeyRE.MatchString(s):
		return "an AWS access key ID"
	case derRE.MatchString(s):
		return "base64 DER key material"
	case urlHasPassword(s):
		return "credentials in a URL (user:password@)"
	case kvPasswordRE.MatchString(s):
		return "a password in a connection string or URL query (password=…)"
	}
	return ""
}

// urlHasPassword: some scheme://user:password@ in s. The userinfo ends at
// the first '@' before any '/', '?' or '#' (RFC 3986) — and, as people
// paste them, a password may hold an unescaped '/' or '#'
// (https://ops:pa/ss@h/): scheme://user:X@host where X is not a port.
func urlHasPassword(s string) bool {
	return urlHasStrictPassword(s) || urlHasLoosePassword(s)
}

func urlHasLoosePassword(s string) bool {
	for rest := s; ; {
		i := strings.Index(rest, "://")
		if i < 0 {
			return false
		}
		rest = rest[i+3:]
		word := rest
		if j := strings.IndexFunc(word, unicode.IsSpace); j >= 0 {
			word = word[:j]
		}
		colon := strings.IndexAny(word, ":/@")
		if colon <= 0 || word[colon] != ':' {
			continue // no user name before a ':'
		}
		at := strings.LastIndex(word, "@")
		if at <= colon+1 || at == len(word)-1 {
			continue
		}
		pw := word[colon+1 : at]
		port := strings.TrimLeft(pw, "0123456789")
		if len(port) < len(pw) && (port == "" || port[0] == '/' || port[0] == '?' || port[0] == '#') {
			continue // host:port/path@… — a port, then a path
		}
		return true
	}
}

func urlHasStrictPassword(s string) bool {
	for rest := s; ; {
		i := strings.Index(rest, "://")
		if i < 0 {
			return false
		}
		rest = rest[i+3:]
		auth := rest
		if j := strings.IndexAny(auth, "/?#"); j >= 0 {
			auth = auth[:j]
		}
		if at := strings.LastIndex(auth, "@"); at >= 0 && strings.Contains(auth[:at], ":") {
			return true
		}
	}
}

// hostKey: keys whose values are host names, host:port or URLs of a server.
// None of those has a legitimate '@': it starts user information, where
// passwords go.
func hostKey(k string) bool {
	k = strings.ToLower(k)
	switch k {
	case "host", "hosts", "hostname", "address", "addresses", "endpoint", "endpoints", "bootstrap",
		"bootstrap_servers", "brokers", "server", "servers", "url", "uri", "dsn":
		return true
	}
	for _, s := range []string{"_host", "_hosts", "_address", "_endpoint", "_url", "_uri", "_dsn"} {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

// fileKey: keys whose values are file paths; dirKey: directory paths.
func fileKey(k string) bool {
	k = strings.ToLower(k)
	return k == "file" || k == "path" || strings.HasSuffix(k, "_file") || strings.HasSuffix(k, "_path")
}

func dirKey(k string) bool {
	k = strings.ToLower(k)
	return k == "dir" || strings.HasSuffix(k, "_dir")
}

// notInPaths are characters an operator does not put in the name of a
// file harden reads, but that are common in passwords and tokens.
const notInPaths = "!\"#$&'()*;<>?@[\\]^`{|}"

// MaxPathLength is Linux's PATH_MAX.
const MaxPathLength = 4096

// pathProblem says why s does not look like a path ("" when it does).
//
// The rule, for every *_file, *_path, file and path value (and, without
// the bare-word part, *_dir and dir values):
//   - at most 4096 bytes, no control characters (a newline included);
//   - a value written as a path — starting with /, ./ or ../ — may hold any
//     other character (/srv/pg@15/main, "/mnt/backup (old)/ca.pem");
//   - any other value holds no whitespace and none of
//     ! " # $ & ' ( ) * ; < > ? @ [ \ ] ^ ` { | }, which are common in
//     passwords and tokens, and one without a '/' is a file name next to
//     the policy that must contain a '.', '-' or '_' (ca.pem, vault-token,
//     s3_secret): a bare word such as hunter2 or Tr0ub4dor is taken for a
//     pasted password. A file really named like that is written ./hunter2.
func pathProblem(s string, file bool) string {
	if len(s) > MaxPathLength {
		return "longer than a path can be"
	}
	explicit := strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../")
	for _, r := range s {
		if unicode.IsControl(r) {
			return "holds control characters"
		}
		if !explicit && (unicode.IsSpace(r) || strings.ContainsRune(notInPaths, r)) {
			return "holds characters a file name here does not (whitespace or one of " + notInPaths + "; a path starting with /, ./ or ../ may)"
		}
	}
	if file && s != "" && !strings.Contains(s, "/") && !strings.ContainsAny(s, ".-_") {
		return "is a bare word, not a file name (a file name next to the policy has a '.', '-' or '_'; write ./NAME for a file really named so)"
	}
	return ""
}

// scanSecrets walks every value of the document at path.
func (p *Policy) scanSecrets(path []string, v any) Errors {
	var errs Errors
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if kind := secretKind(k); kind != "" {
				// The key itself is never named: it is the secret.
				errs = append(errs, &Error{File: p.File, Pos: p.pos[joinPath(path)+"#"+k], Path: path,
					Msg: "a mapping key holds " + kind + "; never write secrets in the policy"})
				continue
			}
			kp := append(append([]string(nil), path...), k)
			val := x[k]
			if secretKey.MatchString(k) {
				if _, isObj := val.(map[string]any); !isObj && val != nil {
					errs = append(errs, p.keyErrorAt(kp, "inline secret: never write secrets in the policy; use %s_env (environment variable) or %s_file (file path)", k, k))
					continue
				}
			}
			errs = append(errs, p.scanField(kp, k, val)...)
		}
	case []any:
		for i, e := range x {
			errs = append(errs, p.scanSecrets(append(append([]string(nil), path...), strconv.Itoa(i)), e)...)
		}
	case string:
		if kind := secretKind(x); kind != "" {
			errs = append(errs, p.errorAt(path, "inline secret: the value holds %s; never write secrets in the policy: put it in a file (0600) or an environment variable and reference it (*_file, *_env)", kind))
		}
	}
	return errs
}

// scanField checks the value of key k (a string, or a list of strings) by
// what the key says it is, after the content checks every value gets.
func (p *Policy) scanField(kp []string, k string, val any) Errors {
	var items [][]string
	var values []string
	switch x := val.(type) {
	case string:
		items, values = append(items, kp), append(values, x)
	case []any:
		for i, e := range x {
			if s, ok := e.(string); ok {
				items = append(items, append(append([]string(nil), kp...), strconv.Itoa(i)))
				values = append(values, s)
			}
		}
	}
	errs := p.scanSecrets(kp, val)
	if len(errs) > 0 {
		return errs
	}
	for i, s := range values {
		switch {
		case hostKey(k) && strings.Contains(s, "@"):
			errs = append(errs, p.errorAt(items[i], "user information (user@ or user:password@) in a host value: credentials never go in the policy; reference them with *_env or *_file"))
		case fileKey(k) || dirKey(k):
			if why := pathProblem(s, fileKey(k)); why != "" {
				errs = append(errs, p.errorAt(items[i], "does not look like a file path: the value %s; if it is a secret, put it in a file (0600) and name that file here", why))
			}
		}
	}
	return errs
}
