// Package rotate holds the judgment of `harden rotate`: when a stored
// certificate is due, and the verify gate that decides whether a renewed
// certificate is really what every listener of a target serves. The CLI
// (host/internal/cli/rotate.go) drives plugins; this package only judges
// what they observed, so every rule is unit-tested without a server.
package rotate
