// Package certstore is the host's store of certificates it had issued for
// targets (certificates.source vault-pki): it makes each target's private
// key where it is used (only a CSR goes to the issuer), keeps the key (0600)
// and the issued chain in the store directory, and reuses them while they
// still chain to the issuer's current CA, cover the target's names and are
// valid beyond renew_before — so a second apply changes nothing. It also
// judges whether certificate material handed to a plugin is valid now
// (CheckValidity), for files and issued material alike.
//
// It knows nothing of plugins: the engine passes the issuing call in.
package certstore
