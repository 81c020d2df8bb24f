// Command harden-plugin-proxy is harden's plugin for TLS-terminating
// reverse proxies: nginx and HAProxy. One target is one proxied route: a
// TLS front the clients connect to and the backend the proxy forwards to.
//
// It renders the front's TLS (the profile's versions, suites and groups,
// the certificate, client verification for the mTLS scope, HSTS) and the
// upstream TLS (nginx: proxy_ssl on/verify/trusted_certificate/name/
// server_name/protocols/ciphers; HAProxy: `server … ssl verify required
// ca-file … sni`) into one file harden owns (an nginx include inside
// http {}, or an extra HAProxy -f file), applies it through the apply kit
// (backup, `nginx -t` / `haproxy -c`, reload, the new front serial seen
// live, rollback on failure), and verifies every hop live:
//
//   - the front like any endpoint (the probe's tls.* checks, HSTS);
//   - the backend port refuses plaintext (a plaintext request gets no
//     application answer);
//   - the backend's own TLS (the probe against the backend address);
//   - proof that the proxy verifies the backend: the rendered file has a
//     second, harden-owned canary route (a loopback front whose upstream is
//     a loopback decoy port, with the same upstream TLS settings as the
//     real route). Verify starts a decoy TLS server there with a
//     certificate for the backend's name from a throwaway CA, sends a
//     request through the canary front, and requires the request never
//     to reach the decoy — HAProxy aborts the handshake with an alert;
//     nginx completes it and closes before sending anything (it checks
//     the certificate after the handshake) — and the client to get the
//     proxy's error instead of the decoy's content (decoy.go).
//
// Configuration read from `nginx -T` / HAProxy's files may support a
// finding (e.g. the real route forwarding over plain HTTP), never pass one
// alone: it counts for the hop checks only with live evidence that the
// running proxy loaded harden's file — the files hold what harden renders,
// the front serves harden's certificate, the canary refused the decoy, and
// no file was written after the newest worker started (verify.go
// notLoaded, loaded.go) — and only when the front's route has no other
// way through it (another nginx location, if, return; a conditional
// HAProxy use_backend): such facts are open.
//
// Files: plugin.go (metadata, schemas, checks), flavor.go (what differs
// between nginx and HAProxy), nginx.go and nginxconf.go (the nginx flavor,
// nginx -T parsed into route facts), haproxy*.go, render.go (cert_dir and
// the profile in OpenSSL's words), plan.go and apply.go (applykit steps:
// files, the proxy's own test, reload, the new certificate served),
// verify.go, loaded.go, decoy.go, inventory.go (the front's served
// certificate, the rotate gate).
package main
